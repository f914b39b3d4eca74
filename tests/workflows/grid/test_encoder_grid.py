"""Heads over encoder layers in the grid and in use, end to end: the session's synthetic
features with a tiny random WavLM's set (tests/conftest.py), a real local Ray instance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featurize.encoder_store import load_encoder_set, saved_settings
from featurize.store import load_features
from workflows.cli import app
from workflows.grid.config import TrainConfig
from workflows.grid.plan import GridError
from workflows.grid.train_all import train_all
from workflows.results.tables import table_rows
from workflows.runs import load_model, load_records
from workflows.use.load import Speakers
from workflows.use.predict import predict_files

QUIET = {"progress": lambda _: None}
HEADS = ["wavlm-LR", "wavlm-MLP", "wavlm-WS"]
# the paper's random split (both speakers train), each speaker scaled by their own statistics
CONFIG = TrainConfig(epochs=1, protocol="paper", normalize="speaker")


@pytest.fixture(scope="module")
def runs(encoded_features, tmp_path_factory) -> str:
    features, *_ = encoded_features
    out = str(tmp_path_factory.mktemp("encoder-grid") / "runs")
    summary = train_all(features, out, HEADS, [0], CONFIG, **QUIET)
    assert summary.failed == [] and summary.finished == 3
    return out


def test_a_head_over_a_set_the_features_lack_is_refused_before_any_trial(synth_features, tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(GridError, match=r"reads the encoder set wavlm: .*--encoder wavlm=MODEL"):
        train_all(synth_features, str(runs), ["wavlm-LR"], [0], CONFIG, **QUIET)
    assert not (runs / "trials").exists()


def test_the_layer_is_chosen_on_held_out_training_speakers(runs, encoded_features):
    features, *_ = encoded_features
    records = {r.model: r for r in load_records(runs)}
    assert sorted(records) == sorted(HEADS)
    for name in ("wavlm-LR", "wavlm-MLP"):
        selection = records[name].selection
        assert selection is not None and len(selection) == 3 * 3  # 3 hidden states x 3 C
        assert {row["validated_by"] for row in selection} == {"speaker"}
        assert {len(row["per_group"]) for row in selection} == {2}  # each training speaker
        assert sum(row["chosen"] for row in selection) == 1
    ws = records["wavlm-WS"]
    assert ws.selection is None and ws.epochs is None
    settings = saved_settings(features, "wavlm")
    for record in records.values():
        assert record.provenance["encoder"]["revision"] == settings["revision"]
        assert record.provenance["train_config"]["normalize"] == "speaker"
        assert np.asarray(record.test_probabilities).shape == (record.n_test, 6)
    assert {row["model"] for row in table_rows(load_records(runs))} >= set(HEADS)


def test_a_saved_head_gives_its_trials_probabilities_from_the_stored_embeddings(
    runs, encoded_features
):
    features, *_ = encoded_features
    split = json.loads((Path(runs) / "splits" / "paper-s0-f0.json").read_text())
    index = load_features(features, spectrograms=False)
    row = {uid: i for i, uid in enumerate(index.utterance_ids)}
    ids = np.asarray(split["train"] + split["test"])
    raw = load_encoder_set(features, "wavlm", ids).values[..., None]  # (N, 3, 32, 1)
    speakers = index.speakers[[row[uid] for uid in ids]]
    for record in load_records(runs):
        saved = load_model(runs, record.trial)
        assert saved.meta.encoder["revision"] == saved_settings(features, "wavlm")["revision"]
        assert saved.input_shape == (3, 32, 1) and saved.per_speaker
        tested = saved.probabilities(raw, speakers)[len(split["train"]) :]
        np.testing.assert_allclose(tested, record.test_probabilities, atol=2e-5)


def test_predict_embeds_new_recordings_with_the_same_encoder(runs, encoded_features, synth_corpus):
    """The files the features were made of, predicted from their audio: the embeddings
    predict computes are those featurize stored, so the probabilities are too."""
    features, *_ = encoded_features
    files = sorted((synth_corpus / "spk01").rglob("*.wav"))[:6]
    result = predict_files(runs, "wavlm-LR", files, Speakers(name="spk01"))
    assert result.failed == [] and not [n for n in result.notes if "encoder" in n]
    saved = load_model(runs, result.trials[0])
    ids = np.asarray([str(f.relative_to(synth_corpus).with_suffix("")) for f in files])
    raw = load_encoder_set(features, "wavlm", ids).values[..., None]
    expected = saved.probabilities(raw, np.asarray(["spk01"] * len(files)))
    got = np.asarray([[f.probabilities[n] for n in result.label_names] for f in result.files])
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_predict_warns_when_the_encoder_is_another_revision(runs, synth_corpus, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    meta = next((copy / "models").glob("wavlm-lr-*.json"))
    saved = json.loads(meta.read_text())
    saved["encoder"]["revision"] = "sha1:0000000000000000"
    meta.write_text(json.dumps(saved))
    wav = next(synth_corpus.rglob("*.wav"))
    result = CliRunner().invoke(
        app, ["predict", str(copy), str(wav), "--model", "wavlm-LR", "--speaker", "spk01"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: encoder wavlm" in result.output and "sha1:0000000000000000" in result.output
    assert "revision sha1:" in result.output and "may differ" in result.output


def test_cross_corpus_heads_need_the_same_encoder_on_both_corpora(encoded_features, tmp_path):
    from featurize.encoder_store import encoder_location
    from workflows.grid.plan import require_same_encoders

    features, *_ = encoded_features
    other = tmp_path / "other"
    shutil.copytree(features, other)
    require_same_encoders(["wavlm-LR"], features, str(other))  # the same set: fine
    meta = Path(encoder_location(str(other), "wavlm")) / "_set.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "revision": "sha1:1"}))
    with pytest.raises(GridError, match="encoder set wavlm of .* differ in revision"):
        require_same_encoders(["wavlm-LR", "att-Res"], features, str(other))
