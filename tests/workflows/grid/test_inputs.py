"""The options against speaker variation: per-speaker scaling, delta channels, log-mel input,
speed perturbation, and nested leave-one-speaker-out validation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from attres.inputs import InputSettings, Standardizer, add_deltas, speaker_standardize
from attres.splits import Protocol, make_split, validation_speaker_split
from featurize.config import FeatureConfig
from featurize.pipeline import perturb_speed, run_featurize
from featurize.spectrogram import log_power_spectrogram, mel_filterbank
from featurize.store import load_features
from workflows.cli import app
from workflows.grid.config import TrainConfig
from workflows.grid.plan import plan_grid
from workflows.grid.train_all import train_all
from workflows.runs import load_model, load_records

QUIET = {"progress": lambda _: None}
RATE = 16000


def tone(hz: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return np.sin(2 * np.pi * hz * t).astype(np.float32)


def test_deltas_of_a_ramp_are_its_slope_and_then_zero() -> None:
    ramp = np.broadcast_to(3.0 * np.arange(20, dtype=np.float32), (2, 1, 4, 20))
    x = add_deltas(np.ascontiguousarray(ramp), 2)
    assert x.shape == (2, 3, 4, 20)
    np.testing.assert_allclose(x[:, 1, :, 2:-2], 3.0, rtol=1e-6)  # away from the edges
    np.testing.assert_allclose(x[:, 2, :, 4:-4], 0.0, atol=1e-5)


def test_each_speaker_is_scaled_by_their_own_statistics_only() -> None:
    rng = np.random.default_rng(0)
    speakers = np.array(["a"] * 5 + ["b"] * 7)
    x = rng.normal(size=(12, 1, 6, 10)).astype(np.float32)
    x[speakers == "b"] = 4 * x[speakers == "b"] + np.arange(6)[:, None]  # louder, tilted
    z = speaker_standardize(x, speakers)
    for name in "ab":
        mine = z[speakers == name]
        np.testing.assert_allclose(mine.mean(axis=(0, 3)), 0, atol=1e-5)
        np.testing.assert_allclose(mine.std(axis=(0, 3)), 1, atol=1e-3)
    changed = x.copy()
    changed[speakers == "b"] *= 10
    np.testing.assert_array_equal(speaker_standardize(changed, speakers)[:5], z[:5])


def test_input_settings_refuse_unknown_values() -> None:
    assert InputSettings(deltas=2).channels == 3
    with pytest.raises(ValueError, match="normalize"):
        InputSettings(normalize="utterance")
    with pytest.raises(ValueError, match="deltas"):
        InputSettings(deltas=3)
    with pytest.raises(ValueError, match="loso"):
        TrainConfig(validation_speaker=True)  # the paper protocol has one speaker set
    with pytest.raises(ValueError, match="loso"):
        TrainConfig(protocol="loso", validation_speaker=True, validation=0.2)


def test_a_tone_lights_the_mel_band_around_its_frequency() -> None:
    config = FeatureConfig(frequency_scale="mel", n_mels=40)
    bank = mel_filterbank(40, config.n_fft, RATE)
    assert bank.shape == (40, 257) and bank.max() <= 1.0
    hz = np.linspace(0, RATE / 2, 257)
    centres = hz[bank.argmax(axis=1)]
    assert np.all(np.diff(centres) >= 0)  # ordered low to high
    spec = log_power_spectrogram(tone(1000.0), config)
    assert spec.shape[0] == 40
    assert abs(centres[spec.mean(axis=1).argmax()] - 1000.0) < 100.0


def test_speed_perturbation_moves_the_pitch_and_the_length() -> None:
    signal = tone(1000.0)
    faster = perturb_speed(signal, 1.1)
    assert abs(len(faster) - len(signal) / 1.1) <= 1
    spectrum = np.abs(np.fft.rfft(faster))
    peak_hz = spectrum.argmax() * RATE / len(faster)
    assert abs(peak_hz - 1100.0) < 5.0


def test_new_feature_keys_leave_older_configs_and_fingerprints_alone() -> None:
    paper = FeatureConfig()
    assert set(paper.to_dict()) == {
        "sample_rate", "frame_ms", "hop_ms", "n_fft", "window", "log_floor", "image_size",
        "interpolation",
    }  # fmt: skip
    mel = FeatureConfig(frequency_scale="mel", n_mels=64, speeds=(0.9, 1.1))
    assert FeatureConfig.from_dict(json.loads(json.dumps(mel.to_dict()))) == mel
    assert mel.fingerprint() != paper.fingerprint()
    with pytest.raises(ValueError, match="speeds"):
        FeatureConfig(speeds=(1.0,))
    with pytest.raises(ValueError, match="n_mels applies to frequency_scale 'mel' only"):
        FeatureConfig(n_mels=64)  # would change the fingerprint of identical features
    assert FeatureConfig(speeds=(1.1, 0.9, 1.1)) == FeatureConfig(speeds=(0.9, 1.1))


def test_validation_speaker_is_the_next_training_speaker_and_the_test_is_unread() -> None:
    speakers = np.repeat(np.array(["s1", "s2", "s3", "s4"]), 6)
    labels = np.tile(np.arange(6), 4)
    for fold, (test_speaker, val_speaker) in enumerate(
        [("s1", "s2"), ("s2", "s3"), ("s3", "s4"), ("s4", "s1")]
    ):
        split = make_split(Protocol.loso, labels, speakers, 0, fold)
        nested = validation_speaker_split(split, speakers)
        assert set(speakers[nested.test]) == {val_speaker}
        assert test_speaker not in set(speakers[nested.train])
        assert set(nested.train) | set(nested.test) == set(split.train)
        assert not set(nested.test) & set(split.test)
        assert nested.name == f"loso-s0-f{fold}-valspk"


def test_nested_loso_grid_plans_on_training_speakers_only(synth_features, tmp_path) -> None:
    data = load_features(synth_features)
    speakers = np.array([f"{s}-{i % 2}" for i, s in enumerate(data.speakers)])  # 4 speakers
    data = dataclasses.replace(data, speakers=speakers)
    cfg = TrainConfig(protocol="loso", validation_speaker=True)
    specs = plan_grid(data, synth_features, "fp", str(tmp_path), ["CNN"], [0], cfg)
    assert len(specs) == 4
    for spec in specs:
        saved = json.loads((tmp_path / "splits" / f"{spec.split}.json").read_text())
        assert saved["evaluated_on"] == "validation"
        outer = make_split(Protocol.loso, data.labels, speakers, 0, spec.fold)
        assert not set(spec.train_rows) & set(outer.test.tolist())
        assert not set(spec.test_rows) & set(outer.test.tolist())
        assert set(speakers[list(spec.test_rows)]) == set(saved["held_out_speakers"])


@pytest.fixture(scope="module")
def perturbed_features(ray_local, synth_corpus, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("perturbed") / "features")
    config = FeatureConfig(image_size=16, frequency_scale="mel", n_mels=32, speeds=(0.9, 1.1))
    run_featurize(synth_corpus, out, config, progress=lambda _: None)
    return out


def test_perturbed_copies_train_beside_their_recording_and_are_never_tested(
    perturbed_features, tmp_path
) -> None:
    data = load_features(perturbed_features)
    assert len(data) == 3 * data.recorded.sum()
    assert set(data.origins[~data.recorded]) == set(data.utterance_ids[data.recorded])
    for protocol in ("paper", "loso"):
        cfg = TrainConfig(protocol=protocol)
        for spec in plan_grid(data, perturbed_features, "fp", str(tmp_path), ["CNN"], [0], cfg):
            train, test = list(spec.train_rows), list(spec.test_rows)
            assert data.recorded[test].all()
            tested = set(data.utterance_ids[test])
            assert not tested & set(data.origins[train])  # no copy of a test clip trains
            trained_recordings = set(data.utterance_ids[train][data.recorded[train]])
            assert set(data.origins[train]) == trained_recordings
            assert len(train) == 3 * len(trained_recordings)


def test_delta_channels_are_standardized_each_by_its_own_statistics() -> None:
    x = add_deltas(np.random.default_rng(0).normal(5.0, 3.0, size=(6, 1, 8, 16)), 2)
    scale = Standardizer.fit(x)
    for c in range(3):
        assert scale.mean[c] == pytest.approx(x[:, c].mean())  # type: ignore[index]
        assert scale.std[c] == pytest.approx(x[:, c].std(), rel=1e-4)  # type: ignore[index]
    z = scale(x)
    assert np.allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert np.allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-3)
    single = Standardizer.fit(x[:, :1])
    assert isinstance(single.mean, float)  # the paper's input: one scalar, as before
    with pytest.raises(ValueError, match="3 channels, the input 1"):
        scale(x[:, :1])


def test_speaker_scaled_delta_model_trains_predicts_and_saves_its_inputs(
    ray_local, synth_features, synth_corpus, tmp_path
) -> None:
    runs = str(tmp_path / "runs")
    cfg = TrainConfig(epochs=1, batch_size=8, normalize="speaker", deltas=1)
    summary = train_all(synth_features, runs, ["att-Res", "SVM"], [0], cfg, **QUIET)
    assert (summary.finished, summary.failed) == (2, [])
    records = {r.model: r for r in load_records(runs)}
    assert records["att-Res"].provenance["train_config"]["normalize"] == "speaker"
    saved = load_model(runs, records["att-Res"].trial)
    meta = saved.meta
    assert meta.inputs == InputSettings("speaker", 1)
    assert isinstance(meta.mean, tuple) and len(meta.mean) == 2  # one per channel
    assert records["att-Res"].scale_mean == list(meta.mean)  # the record says so too
    out = tmp_path / "delta.onnx"
    args = ["export", runs, "--model", "att-Res", "--seed", "0", "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert tuple(sidecar["mean"]) == meta.mean and tuple(sidecar["std"]) == meta.std
    assert sidecar["input"]["shape"] == [1, 2, 32, 32]
    assert "(x - mean) / std per channel" in sidecar["input"]["meaning"]
    first_conv = next(m for m in saved.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 2
    one_speaker = sorted(Path(synth_corpus, "spk01").rglob("*.wav"))[:6]
    images = np.stack([np.zeros((32, 32), np.float32)] * 2)[:, None]
    assert saved.standardize(images).shape == (2, 2, 32, 32)
    args = ["predict", runs, *map(str, one_speaker), "--model", "att-Res", "--format", "json"]
    refused = CliRunner().invoke(app, args)  # who speaks? the scaling depends on it
    assert refused.exit_code == 2 and "--speaker NAME" in refused.output
    assert "--manifest CSV" in refused.output
    result = CliRunner().invoke(app, [*args, "--speaker", "spk01"])
    assert result.exit_code == 0, result.output
    predicted = json.loads(result.stdout)
    assert len(predicted["files"]) == 6
    assert all(f["emotion"] in meta.label_names for f in predicted["files"])
    # six short clips are thin statistics for a speaker; the warning says how thin
    assert "speaker spk01: statistics from 6 recording(s)" in result.stderr

    # A file's result depends on its speaker's recordings, not on the others in the call.
    other = sorted(Path(synth_corpus, "spk02").rglob("*.wav"))[:6]
    manifest = tmp_path / "who.csv"
    manifest.write_text(
        "path,speaker\n"
        + "".join(f"{p},spk01\n" for p in one_speaker)
        + "".join(f"{p},spk02\n" for p in other)
    )
    both = CliRunner().invoke(
        app,
        ["predict", runs, *map(str, one_speaker + other), "--model", "att-Res", "--format",
         "json", "--manifest", str(manifest)],
    )  # fmt: skip
    assert both.exit_code == 0, both.output
    mixed = {f["file"]: f["probabilities"] for f in json.loads(both.stdout)["files"]}
    for alone in predicted["files"]:
        assert mixed[alone["file"]] == pytest.approx(alone["probabilities"])
    manifest.write_text("path,speaker\n" + f"{one_speaker[0]},spk01\n")
    missing = CliRunner().invoke(
        app, ["predict", runs, *map(str, one_speaker[:2]), "--model", "att-Res",
              "--manifest", str(manifest)],
    )  # fmt: skip
    assert missing.exit_code == 2 and "not in the manifest" in missing.output


def test_seed_ensembles_average_the_probabilities_of_one_folds_seeds(
    ray_local, synth_features, tmp_path
) -> None:
    from workflows.results.tables import ensemble_rows, render_ensembles

    runs = str(tmp_path / "runs")
    cfg = TrainConfig(epochs=1, batch_size=8, protocol="loso")
    train_all(synth_features, runs, ["CNN"], [0, 1], cfg, **QUIET)
    records = load_records(runs)
    (row,) = ensemble_rows(records)
    assert (row["model"], row["n_seeds"], row["n_folds"]) == ("CNN", 2, 2)
    accuracies = []
    for fold in (0, 1):
        seeds = [r for r in records if r.fold == fold]
        assert len({r.test_ids_sha1 for r in seeds}) == 1
        mean = np.mean([r.test_probabilities for r in seeds], axis=0)
        accuracies.append(np.mean(mean.argmax(1) == np.asarray(seeds[0].test_labels)))
    assert row["wa"] == pytest.approx(100 * np.mean(accuracies))
    assert "Seed ensembles" in render_ensembles([row])
    paper = str(tmp_path / "paper")  # each seed its own split: no ensemble
    train_all(synth_features, paper, ["CNN"], [0, 1], TrainConfig(epochs=1, batch_size=8), **QUIET)
    assert ensemble_rows(load_records(paper)) == []


def test_speed_copies_are_scaled_as_voices_of_their_own(perturbed_features, tmp_path) -> None:
    from featurize.store import content_fingerprint
    from workflows.grid.data import trial_data

    data = load_features(perturbed_features)
    cfg = TrainConfig(normalize="speaker")
    fingerprint = content_fingerprint(perturbed_features)
    spec = plan_grid(data, perturbed_features, fingerprint, str(tmp_path), ["CNN"], [0], cfg)[0]
    split = trial_data(spec).split
    train = np.asarray(spec.train_rows)
    for speaker in np.unique(data.speakers[train]):
        for suffix in ("", "~speed0.9", "~speed1.1"):
            mine = [
                i for i, row in enumerate(train)
                if data.speakers[row] == speaker
                and data.utterance_ids[row] == data.origins[row] + suffix
            ]  # fmt: skip
            rows = split.x_train.take(mine)  # scaled with the test rows of the same voice
            test_rows = [
                j for j, row in enumerate(spec.test_rows)
                if data.speakers[row] == speaker and not suffix
            ]  # fmt: skip
            both = np.concatenate([rows, split.x_test.take(test_rows)])
            np.testing.assert_allclose(both.mean(axis=(0, 3)), 0, atol=1e-4)


def test_validation_speaker_on_two_speakers_is_refused(synth_features, tmp_path) -> None:
    from workflows.grid.plan import GridError

    data = load_features(synth_features)
    cfg = TrainConfig(protocol="loso", validation_speaker=True)
    with pytest.raises(GridError, match="at least 3 speakers"):
        plan_grid(data, synth_features, "fp", str(tmp_path), ["CNN"], [0], cfg)
