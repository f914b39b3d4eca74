"""Speech encoders as a feature family: tiny random encoders of each architecture, saved with
save_pretrained, run through the real loading, batching, pooling and storage paths (Ray Data
on the session's local instance). Nothing is downloaded."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from featurize.embedding import Embedder, EncoderInputError
from featurize.encoder_store import encoder_location, load_encoder_set, saved_settings
from featurize.encoders import EncoderError, parse_encoders, resolve_encoder
from featurize.pipeline import run_featurize
from featurize.store import REJECTS_FILE, FeatureStoreError, content_fingerprint, load_features
from tests.tiny_encoders import KINDS, WHISPER_WINDOW_S, save_tiny_encoder
from workflows.cli import app

QUIET = {"progress": lambda _: None}
TOLERANCE = 1e-4  # of the embeddings' largest magnitude: batched vs one clip at a time, fp32
LENGTHS = (400, 1500, 5000, 8000, 12000)  # samples at 16 kHz, 400: the receptive field


def clips(seed: int = 0) -> list[np.ndarray]:
    """Noise with an offset and a different level per clip: normalization matters."""
    rng = np.random.default_rng(seed)
    return [
        (0.05 * (i + 1) * rng.normal(size=n) + 0.02 * i).astype(np.float32)
        for i, n in enumerate(LENGTHS)
    ]


@pytest.fixture(scope="module")
def embedders(tiny_encoders) -> dict[str, Embedder]:
    return {kind: Embedder(resolve_encoder(kind, str(tiny_encoders[kind]))) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_batched_embeddings_equal_one_clip_at_a_time(embedders, kind):
    embedder = embedders[kind]
    signals = clips()
    inputs = [embedder.prepare(x) for x in signals]
    samples = [len(x) for x in signals]
    alone = np.concatenate([embedder.embed([x], [n]) for x, n in zip(inputs, samples, strict=True)])
    together = embedder.embed(inputs, samples)
    assert together.shape == (len(signals), 3, 32) and together.dtype == np.float32
    assert np.abs(together - alone).max() <= TOLERANCE * np.abs(alone).max()
    embedder.budget = 2 * 8000  # several forward passes of neighbours in length
    try:
        passes = embedder.embed(inputs, samples)
    finally:
        embedder.budget = int(160 * 16000)
    assert np.abs(passes - alone).max() <= TOLERANCE * np.abs(alone).max()


@pytest.mark.parametrize("kind", ["wav2vec2", "data2vec-audio", "whisper"])
def test_the_mean_is_over_the_clips_own_frames(embedders, kind):
    """One clip alone: the mean over exactly the frames the clip covers of the model's own
    hidden states (Whisper's window holds padding frames past them)."""
    embedder = embedders[kind]
    signal = clips()[3]
    x = torch.from_numpy(embedder.prepare(signal))[None]
    with torch.inference_mode():
        if kind == "whisper":
            hidden = embedder.model(input_features=x, output_hidden_states=True).hidden_states
        else:
            hidden = embedder.model(input_values=x, output_hidden_states=True).hidden_states
    frames = embedder.frames(len(signal))
    expected = np.stack([h[0, :frames].mean(0).numpy() for h in hidden])
    if kind == "whisper":
        assert frames == 8000 // 320 < hidden[0].shape[1]  # 20 ms a frame, 100 in the window
        everything = np.stack([h[0].mean(0).numpy() for h in hidden])
        assert np.abs(everything - expected).max() > 1e-2  # the padding would count
    else:
        assert frames == hidden[0].shape[1] == 8000 // 320 - 1
    np.testing.assert_allclose(
        embedder.embed([x[0].numpy()], [len(signal)])[0], expected, atol=1e-5
    )


def test_a_padded_batch_without_these_precautions_differs(tiny_encoders):
    """What the equality above guards against: wav2vec2-base's way, the feature extractor
    normalizing over the padded batch and the group norm over time seeing the padding."""
    from transformers import AutoFeatureExtractor, AutoModel

    folder = tiny_encoders["wav2vec2"]
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    signals = clips()[2:4]
    with torch.inference_mode():
        alone = model(
            torch.from_numpy(extractor(signals[0], sampling_rate=16000)["input_values"][0])[None]
        )
        batch = extractor(signals, sampling_rate=16000, padding=True, return_attention_mask=False,
                          return_tensors="pt")  # fmt: skip
        padded = model(batch["input_values"])
    frames = alone.last_hidden_state.shape[1]
    first = padded.last_hidden_state[0, :frames].mean(0) - alone.last_hidden_state[0].mean(0)
    assert first.abs().max() > 1e-2


def test_a_clip_outside_the_encoders_reach_is_refused_with_the_reason(embedders):
    with pytest.raises(
        EncoderInputError, match=r"399 samples .* receptive field .*\(400 samples\)"
    ):
        embedders["wavlm"].prepare(np.zeros(399, np.float32))
    with pytest.raises(EncoderInputError, match=rf"longer than whisper's {WHISPER_WINDOW_S} s"):
        embedders["whisper"].prepare(np.zeros(16000 * WHISPER_WINDOW_S + 1, np.float32))


def test_encoders_are_named_and_resolved_before_any_work(tiny_encoders, tmp_path, monkeypatch):
    assert parse_encoders(["a=org/x,org/y", "org/y"]) == [("a", "org/x"), ("y", "org/y")]
    with pytest.raises(EncoderError, match="two encoders named"):
        parse_encoders(["a=org/x", "a=org/z"])
    with pytest.raises(EncoderError, match="set name 'egemaps'"):
        parse_encoders(["egemaps=org/x"])
    source = resolve_encoder("w", str(tiny_encoders["wavlm"]))
    assert (source.model_type, source.sample_rate) == ("wavlm", 16000)
    assert source.revision.startswith("sha1:")
    with pytest.raises(EncoderError, match="no such folder"):
        resolve_encoder("w", str(tmp_path / "nowhere" / "model"))
    bert = tmp_path / "bert"
    shutil.copytree(tiny_encoders["wavlm"], bert)
    config = json.loads((bert / "config.json").read_text())
    (bert / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(EncoderError, match="is a bert; speech encoders read here"):
        resolve_encoder("b", str(bert))
    (bert / "model.safetensors").unlink()
    with pytest.raises(EncoderError, match="lacks weights"):
        resolve_encoder("b", str(bert))


def test_a_hub_id_comes_from_the_cache_offline_or_is_refused_saying_how(
    tiny_encoders, tmp_path, monkeypatch
):
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--attres--tiny-hubert"
    shutil.copytree(tiny_encoders["hubert"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    source = resolve_encoder("tiny-hubert", "attres/tiny-hubert")
    assert (source.revision, source.model_type) == (commit, "hubert")
    assert source.path == str(repo / "snapshots" / commit)
    with pytest.raises(EncoderError) as err:
        resolve_encoder("absent", "attres/absent-model")
    assert "attres/absent-model" in str(err.value) and "HF_HUB_OFFLINE" in str(err.value)
    assert "hf download attres/absent-model" in str(err.value)


@pytest.fixture(scope="module")
def embedded(encoded_features, synth_corpus, tiny_encoders):
    """The session's features that gained a WavLM set, then a Whisper set beside it."""
    out, first, before, fingerprint = encoded_features
    wavlm = resolve_encoder("wavlm", str(tiny_encoders["wavlm"]))
    whisper = resolve_encoder("whisper", str(tiny_encoders["whisper"]))
    config = load_features(out, spectrograms=False).config
    second = run_featurize(synth_corpus, out, config, encoders=(wavlm, whisper), **QUIET)
    return out, before, fingerprint, first, second


def test_a_featurized_corpus_gains_an_encoder_set_and_nothing_else_changes(
    embedded, synth_corpus, embedders
):
    out, before, fingerprint, first, _ = embedded
    after = {p.name: p.stat().st_mtime_ns for p in Path(out).glob("part-*.parquet")}
    assert after == before and content_fingerprint(out) == fingerprint
    assert (first.featurized, first.skipped) == (0, 36)
    assert [(e.name, e.embedded, e.skipped, e.rejected) for e in first.encoders] == [
        ("wavlm", 36, 0, [])
    ]
    ids = load_features(out).utterance_ids
    stored = load_encoder_set(out, "wavlm", ids)
    assert stored.values.shape == (36, 3, 32) and np.isfinite(stored.values).all()
    uid = ids[7]
    path = next(p for p in synth_corpus.rglob("*.wav") if str(p.with_suffix("")).endswith(uid))
    signal, rate = sf.read(path, dtype="float32")
    alone = embedders["wavlm"].embed([embedders["wavlm"].prepare(signal)], [len(signal)])[0]
    np.testing.assert_allclose(stored.values[7], alone, atol=TOLERANCE * np.abs(alone).max())


def test_the_set_records_what_made_it(embedded, tiny_encoders):
    out, *_ = embedded
    settings = saved_settings(out, "wavlm")
    source = resolve_encoder("wavlm", str(tiny_encoders["wavlm"]))
    assert settings["model"] == str(tiny_encoders["wavlm"])
    assert settings["revision"] == source.revision and settings["model_type"] == "wavlm"
    assert (settings["layers"], settings["dim"]) == (3, 32)
    assert "own frames" in settings["pooling"] and settings["transformers"]


def test_a_rerun_resumes_and_a_second_encoder_goes_beside_the_first(embedded):
    out, *_, second = embedded
    assert [(e.name, e.embedded, e.skipped) for e in second.encoders] == [
        ("wavlm", 0, 36), ("whisper", 36, 0)
    ]  # fmt: skip
    ids = load_features(out).utterance_ids
    assert load_encoder_set(out, "whisper", ids).values.shape == (36, 3, 32)
    lines = "\n".join(second.lines())
    assert "encoder whisper" in lines and "36 clips embedded" in lines


def test_another_revision_under_the_same_name_is_refused(embedded, synth_corpus, tmp_path):
    out, *_ = embedded
    other = save_tiny_encoder("wavlm", tmp_path / "retrained", seed=1)
    source = resolve_encoder("wavlm", str(other))
    with pytest.raises(FeatureStoreError, match="made differently.*revision"):
        run_featurize(synth_corpus, out, load_features(out).config, encoders=(source,), **QUIET)


def test_a_clip_the_encoder_cannot_take_is_rejected_with_its_reason(
    ray_local, synth_corpus, synth_features, tiny_encoders, tmp_path
):
    """Through the command line, into a copy of the session's features: a clip cut to 250
    samples, shorter than the encoder's 400-sample receptive field, is rejected by the
    encoder and named (its spectrogram was made before it was cut; one at 10 ms frames
    would take it)."""
    corpus, out = tmp_path / "corpus", tmp_path / "features"
    shutil.copytree(synth_corpus, corpus)
    shutil.copytree(synth_features, out)
    short = sorted(corpus.rglob("*.wav"))[0]
    sf.write(short, np.random.default_rng(0).normal(size=250).astype(np.float32) * 0.1, 16000)
    result = CliRunner().invoke(app, [
        "featurize", str(corpus), "--out", str(out), "--image-size", "32",
        "--encoder", f"tiny={tiny_encoders['hubert']}",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "0 featurized, 36 skipped" in result.output
    assert "encoder tiny" in result.output
    assert "35 clips embedded, 0 already, 1 rejected" in result.output
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["encoders"][0]["rejected"] == 1 and summary["rejected"] == 0
    with open(out / REJECTS_FILE, newline="") as f:
        ((path, reason),) = [(row["path"], row["reason"]) for row in csv.DictReader(f)]
    assert path.endswith(short.name) and "250 samples" in reason and "receptive field" in reason
    assert saved_settings(str(out), "tiny")["model_type"] == "hubert"
    assert encoder_location(str(out), "tiny").endswith("_encoders/tiny")
    with pytest.raises(FeatureStoreError, match=r"1 utterance\(s\) .* no tiny embedding"):
        load_encoder_set(str(out), "tiny", load_features(str(out)).utterance_ids)


def test_the_cli_refuses_a_missing_model_before_any_work(synth_corpus, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "features"
    result = CliRunner().invoke(
        app,
        [
            "featurize",
            str(synth_corpus),
            "--out",
            str(out),
            "--encoder",
            "microsoft/wavlm-base-plus",
        ],
    )
    assert result.exit_code == 2
    assert "microsoft/wavlm-base-plus" in result.output and "hf download" in result.output
    assert not out.exists()
