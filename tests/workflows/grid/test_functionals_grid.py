"""Models over openSMILE functionals in the grid, their fusion with a network, and their use,
end to end on a real local Ray instance with real openSMILE."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featurize.config import FeatureConfig
from featurize.pipeline import run_featurize
from workflows.cli import app
from workflows.grid.config import TrainConfig
from workflows.grid.plan import GridError
from workflows.grid.train_all import train_all
from workflows.results.claims import claim_rows
from workflows.results.fusion import FusionError, fuse_runs
from workflows.runs import load_records

QUIET = {"progress": lambda _: None}
LOSO = TrainConfig(epochs=2, protocol="loso")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """4 speakers (a validation speaker held out too, two still train) x 6 emotions x 2."""
    from workflows.demo.synth import SynthConfig, synthesize_corpus

    root = tmp_path_factory.mktemp("corpus3")
    config = SynthConfig(
        speakers=4, utterances_per_emotion=2, min_duration_s=0.5, max_duration_s=0.8, seed=3
    )
    synthesize_corpus(root, config)
    return root


@pytest.fixture(scope="module")
def features(ray_local, corpus, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("features3") / "features")
    config = FeatureConfig(image_size=32)
    run_featurize(corpus, out, config, functionals=("egemaps", "compare"), **QUIET)
    return out


@pytest.fixture(scope="module")
def grid(features, tmp_path_factory):
    """Test and validation-speaker runs of a network and the functionals models."""
    root = tmp_path_factory.mktemp("grids")
    test, val = str(root / "loso"), str(root / "val")
    models = [
        "att-Res",
        "att-Res+",
        "eGeMAPS-LR",
        "eGeMAPS-LR-ST",
        "eGeMAPS-MLP",
        "openSMILE-linear",
    ]
    assert train_all(features, test, models, [0], LOSO, **QUIET).failed == []
    validating = TrainConfig(epochs=2, protocol="loso", validation_speaker=True)
    summary = train_all(features, val, ["att-Res+", "openSMILE-linear"], [0], validating, **QUIET)
    assert summary.failed == []
    return test, val


def test_a_functionals_model_on_features_without_them_is_refused_before_any_trial(
    synth_features, tmp_path
):
    runs = tmp_path / "runs"
    with pytest.raises(GridError, match="--functionals egemaps"):
        train_all(synth_features, str(runs), ["eGeMAPS-LR"], [0], LOSO, **QUIET)
    assert not (runs / "trials").exists()


def test_functionals_trials_keep_predictions_and_what_they_read(grid):
    test, _ = grid
    records = {r.trial: r for r in load_records(test)}
    assert len(records) == 6 * 4
    lr = records["egemaps-lr-loso-s0-f1"]
    assert lr.provenance["functionals"]["egemaps"]["opensmile"]
    assert lr.provenance["train_config"]["normalize"] == "speaker"  # the models' recipe
    probabilities = np.asarray(lr.test_probabilities)
    assert probabilities.shape == (lr.n_test, 6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    mlp = records["egemaps-mlp-loso-s0-f0"]
    assert mlp.epochs == 2 and mlp.params and mlp.scale_mean is not None
    assert len(mlp.scale_mean) == 88  # one mean per functional


def test_selection_reads_only_the_training_speakers(grid):
    test, _ = grid
    record = next(r for r in load_records(test) if r.trial == "opensmile-linear-loso-s0-f0")
    split = json.loads((Path(test) / "splits" / "loso-s0-f0.json").read_text())
    assert record.selection is not None and len(record.selection) == 20
    assert sum(row["chosen"] for row in record.selection) == 1
    # leave-one-speaker-out over the three training speakers: three held-out groups per
    # option, never the test speaker
    assert {len(row["per_group"]) for row in record.selection} == {3}
    trained_on = {uid.split("/")[0] for uid in split["train"]}
    assert split["held_out_speakers"][0] not in trained_on and len(trained_on) == 3


def test_fusion_weights_come_from_validation_speakers(grid, tmp_path):
    test, val = grid
    fused = fuse_runs(test, val, "att-Res+", "openSMILE-linear").records
    assert [r.fold for r in fused] == [0, 1, 2, 3]
    records = {r.trial: r for r in load_records(test)}
    validation = {r.trial: r for r in load_records(val)}
    for r in fused:
        assert r.fusion is not None and records[r.trial] == r  # written beside the trials
        scores = {float(w): ua for w, ua in r.fusion["validation_ua"].items()}
        assert r.fusion["weight"] in scores and scores[r.fusion["weight"]] == max(scores.values())
        assert all(t in validation for t in r.fusion["validation_trials"])
        assert all(t.endswith("-valspk") for t in r.fusion["validation_trials"])
        a, b = (records[t] for t in r.fusion["trials"])
        w = r.fusion["weight"]
        mix = w * np.asarray(a.test_probabilities) + (1 - w) * np.asarray(b.test_probabilities)
        np.testing.assert_allclose(r.test_probabilities, mix, atol=1e-4)
        assert r.test_ids_sha1 == a.test_ids_sha1 == b.test_ids_sha1
    # a fusion of att-Res with the same partner would not take these trials' names
    assert fused[0].trial == "att-res-plus-and-opensmile-linear-loso-s0-f0"
    result = CliRunner().invoke(app, ["tables", test, "--claims", "--publish", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "att-Res+ & openSMILE-linear" in (tmp_path / "tables.md").read_text()


def test_fusion_without_validation_trials_is_refused(grid, tmp_path):
    test, _ = grid
    empty = tmp_path / "empty"
    (empty / "trials").mkdir(parents=True)
    with pytest.raises(FusionError, match="--validation-speaker"):
        fuse_runs(test, str(empty), "att-Res+", "openSMILE-linear")


def test_folds_without_validation_trials_are_left_out_and_named(grid, tmp_path):
    import shutil

    test, val = grid
    partial = tmp_path / "partial"
    (partial / "trials").mkdir(parents=True)
    for trial in Path(val, "trials").glob("*-f[01]-valspk.json"):
        shutil.copy(trial, partial / "trials")
    fused = fuse_runs(test, str(partial), "att-Res+", "openSMILE-linear")
    assert [r.fold for r in fused.records] == [0, 1]
    assert fused.unvalidated == ["att-res-plus-loso-s0-f2", "att-res-plus-loso-s0-f3"]


def test_validation_trials_of_another_recipe_are_refused(grid, tmp_path):
    test, val = grid
    other = tmp_path / "other"
    (other / "trials").mkdir(parents=True)
    for trial in Path(val, "trials").glob("*.json"):
        record = json.loads(trial.read_text())
        if record["model"] == "att-Res+":
            record["provenance"]["train_config"]["epochs"] = 3  # trained otherwise
        (other / "trials" / trial.name).write_text(json.dumps(record))
    with pytest.raises(FusionError, match="trained differently"):
        fuse_runs(test, str(other), "att-Res+", "openSMILE-linear")


def test_the_claim_beyond_the_paper_is_checked(grid):
    test, _ = grid
    rows = [r for r in claim_rows(load_records(test)) if r["paper_diff"] is None]
    assert [(r["model"], r["reference"]) for r in rows] == [("att-Res", "openSMILE-linear")]
    assert rows[0]["n_pairs"] == 4 and not rows[0]["size_tested"]


def test_predict_and_export_use_the_functionals_of_new_recordings(grid, corpus, tmp_path):
    test, _ = grid
    runner = CliRunner()
    manifest = corpus / "manifest.csv"
    files = sorted((corpus / "spk01").rglob("*.wav"))[:3]
    result = runner.invoke(
        app,
        ["predict", test, *map(str, files), "--model", "eGeMAPS-LR", "--manifest", str(manifest),
         "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["files"]
    assert len(predictions) == 3
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-6 for p in predictions)
    # the self-trained model adapts to the speaker of the files given, from its saved file
    result = runner.invoke(
        app, ["predict", test, *map(str, files), "--model", "eGeMAPS-LR-ST", "--speaker", "spk01"]
    )
    assert result.exit_code == 0, result.output
    assert all(f.name in result.output for f in files)
    out = tmp_path / "mlp.onnx"
    result = runner.invoke(
        app, ["export", test, "--model", "eGeMAPS-MLP", "--seed", "0", "--fold", "0",
              "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.with_suffix(".json").read_text())["input"]["shape"] == [1, 88, 1, 1]


def test_featurize_cli_names_a_wrong_set(tmp_path, corpus):
    result = CliRunner().invoke(
        app, ["featurize", str(corpus), "--out", str(tmp_path / "f"), "--functionals", "gemaps"]
    )
    assert result.exit_code != 0 and "unknown functionals ['gemaps']" in result.output


def test_predict_warns_when_another_opensmile_computes_the_input(grid, corpus, tmp_path):
    import shutil

    test, _ = grid
    runs = tmp_path / "runs"
    shutil.copytree(test, runs)
    saved = runs / "models" / "egemaps-lr-loso-s0-f0.json"
    meta = json.loads(saved.read_text())
    assert meta["functionals"]["egemaps"]["opensmile"]  # what trained it
    meta["functionals"]["egemaps"]["opensmile"] = "0.1"
    saved.write_text(json.dumps(meta))
    files = sorted((corpus / "spk01").rglob("*.wav"))[:2]
    result = CliRunner().invoke(
        app, ["predict", str(runs), *map(str, files), "--model", "eGeMAPS-LR", "--speaker", "spk01"]
    )
    assert result.exit_code == 0, result.output
    assert "computed by openSMILE 0.1 for training" in result.output


def test_a_class_only_one_speaker_has_keeps_its_column_under_loso(ray_local, corpus, tmp_path):
    """Surprise belongs to spk01 only: spk01's loso trial trains without it, yet records a
    column per class, each where its class is, and scores what it recorded."""
    from attres.metrics import classification_metrics

    manifest = tmp_path / "manifest.csv"
    rows = [
        f"{wav},{wav.parts[-3]},{wav.parts[-2]}"
        for wav in sorted(corpus.rglob("*.wav"))
        if wav.parts[-2] != "surprise" or wav.parts[-3] == "spk01"
    ]
    manifest.write_text("path,speaker,emotion\n" + "\n".join(rows) + "\n")
    features = str(tmp_path / "features")
    config = FeatureConfig(image_size=16)
    run_featurize(corpus, features, config, manifest=manifest, functionals=("egemaps",), **QUIET)
    runs = str(tmp_path / "runs")
    assert train_all(features, runs, ["eGeMAPS-LR"], [0], LOSO, **QUIET).failed == []
    (record,) = [r for r in load_records(runs) if r.fold == 0]  # spk01 held out
    assert len(record.label_names) == 6
    probabilities = np.asarray(record.test_probabilities)
    assert probabilities.shape == (record.n_test, 6)
    surprise = record.label_names.index("surprise")
    assert np.all(probabilities[:, surprise] == 0)  # never seen in training: never predicted
    rescored = classification_metrics(np.asarray(record.test_labels), probabilities.argmax(1), 6)
    assert rescored["ua"] == pytest.approx(record.ua)
    assert np.asarray(record.confusion)[:, surprise].sum() == 0


def test_a_grid_of_functionals_models_shares_their_sets_and_no_spectrogram(features, tmp_path):
    from featurize.store import content_fingerprint, load_features, load_functionals
    from workflows.grid import train_all as grid
    from workflows.grid.plan import plan_grid

    index = load_features(features, spectrograms=False)
    planned = content_fingerprint(features)
    specs = plan_grid(index, features, planned, str(tmp_path), ["eGeMAPS-LR"], [0], LOSO)
    (shared,) = grid.share_grid_features(specs, index, None, lambda _: None).values()
    assert shared.spectrograms == () and set(shared.functionals) == {"egemaps"}
    values = grid.ray.get(shared.functionals["egemaps"])
    expected = load_functionals(features, "egemaps", index.utterance_ids).values
    np.testing.assert_array_equal(values, expected)


def test_recipe_candidates_validate_on_the_next_folds_speakers_and_predict(
    features, corpus, tmp_path
):
    """speaker-kfold with --validation-speaker: each fold scores the speakers of the next
    fold, never its own test speakers; the candidates' saved models predict new files."""
    from attres.splits import Protocol, make_split
    from featurize.store import load_features

    with pytest.raises(ValueError, match="--k 3 or more"):
        TrainConfig(protocol="speaker-kfold", k=2, validation_speaker=True)
    runs = str(tmp_path / "val")
    cfg = TrainConfig(epochs=2, protocol="speaker-kfold", k=3, validation_speaker=True)
    models = ["eGeMAPS-MLP-ST", "ComParE-LR-FS", "Sets-LR", "Sets-LR-ST"]
    assert train_all(features, runs, models, [0], cfg, **QUIET).failed == []
    assert len(load_records(runs)) == 4 * 3
    index = load_features(features, spectrograms=False)
    tested = [
        set(index.speakers[make_split(Protocol.speaker_kfold, index.labels, index.speakers, 0,
                                      fold, 3).test])
        for fold in range(3)
    ]  # fmt: skip
    for fold in range(3):
        split = json.loads(
            (Path(runs) / "splits" / f"spk3fold-s0-f{fold}-valfold.json").read_text()
        )
        assert split["evaluated_on"] == "validation"
        assert set(split["held_out_speakers"]) == tested[(fold + 1) % 3]
        seen = {uid.split("/")[0] for uid in split["train"] + split["test"]}
        assert not seen & tested[fold]  # the fold's test speakers are never read
    files = sorted((corpus / "spk01").rglob("*.wav"))[:3]
    for model in ("Sets-LR-ST", "eGeMAPS-MLP-ST", "ComParE-LR-FS"):
        result = CliRunner().invoke(
            app, ["predict", runs, *map(str, files), "--model", model, "--speaker", "spk01"]
        )
        assert result.exit_code == 0, result.output
        assert all(f.name in result.output for f in files)
