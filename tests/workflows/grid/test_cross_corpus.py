"""Cross-corpus: train on one FEATURES, test on another, on the classes both have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featurize.config import FeatureConfig
from featurize.pipeline import run_featurize
from workflows.cli import app
from workflows.demo.synth import SynthConfig, synthesize_corpus
from workflows.runs import load_records


@pytest.fixture(scope="module")
def other_corpus(ray_local, tmp_path_factory) -> tuple[str, Path]:
    """Another synthetic corpus (other voices), with three of the six emotions only."""
    root = tmp_path_factory.mktemp("other")
    config = SynthConfig(speakers=2, utterances_per_emotion=2, min_duration_s=0.5,
                         max_duration_s=0.8, seed=11)  # fmt: skip
    synthesize_corpus(root / "corpus", config)
    kept = sorted(p for e in ("angry", "happy", "sad") for p in root.glob(f"corpus/*/{e}/*.wav"))
    manifest = root / "three.csv"
    manifest.write_text(
        "path,speaker,emotion\n"
        + "".join(f"{p.relative_to(root)},{p.parts[-3]},{p.parts[-2]}\n" for p in kept)
    )
    features = str(root / "features")
    run_featurize(root, features, FeatureConfig(image_size=32), manifest=manifest,
                  progress=lambda _: None)  # fmt: skip
    return features, root


def test_trains_on_one_corpus_and_tests_on_the_other_on_shared_classes(
    synth_features, other_corpus, tmp_path
):
    other, _ = other_corpus
    runs = tmp_path / "runs"
    args = ["train-all", synth_features, "--test-features", other, "--out", str(runs),
            "--models", "CNN", "--epochs", "1", "--batch-size", "8", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "on the 3 classes both have: angry, happy, sad" in result.stdout
    (record,) = load_records(str(runs))
    assert record.protocol == "cross-corpus-3cls"  # tabled with its class count
    assert record.label_names == ["angry", "happy", "sad"]
    assert record.n_test == 12  # every clip of the other corpus: 2 speakers x 3 x 2
    assert record.n_train == 18  # the training corpus's clips of those three emotions
    split = json.loads((runs / "splits" / "cross-s0-f0.json").read_text())
    assert split["classes"] == ["angry", "happy", "sad"] and split["test_features"] == other
    used = json.loads((runs / "features_used.json").read_text())
    assert used["classes"] == ["angry", "happy", "sad"]
    tables = CliRunner().invoke(app, ["tables", str(runs), "--no-plots"])
    assert "protocol cross-corpus-3cls" in tables.stdout


def test_what_cross_corpus_cannot_do_is_refused(synth_features, other_corpus, tmp_path):
    other, root = other_corpus
    args = ["train-all", synth_features, "--out", str(tmp_path / "r"), "--models", "CNN"]
    loso = CliRunner().invoke(app, [*args, "--test-features", other, "--protocol", "loso"])
    assert loso.exit_code == 2 and "cross-corpus is --test-features OTHER" in loso.output
    bare = CliRunner().invoke(app, [*args, "--protocol", "cross-corpus"])
    assert bare.exit_code == 2 and "cross-corpus is --test-features OTHER" in bare.output
    small = str(tmp_path / "small")
    run_featurize(root, small, FeatureConfig(image_size=16), manifest=root / "three.csv",
                  progress=lambda _: None)  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--test-features", small])
    assert result.exit_code == 2 and "featurized with other settings" in result.output


def test_a_partial_overlap_is_refused_unless_the_classes_are_named(
    synth_features, other_corpus, tmp_path
):
    """The other corpus's sad clips filed as calm: 2 of its 3 classes shared, not a 3-class
    experiment; run on 2 only when asked for by name, and tabled as such."""
    _, root = other_corpus
    manifest = root / "calm.csv"
    manifest.write_text((root / "three.csv").read_text().replace(",sad\n", ",calm\n"))
    calm = str(tmp_path / "calm")
    run_featurize(root, calm, FeatureConfig(image_size=32), manifest=manifest,
                  progress=lambda _: None)  # fmt: skip
    runs = tmp_path / "runs"
    args = ["train-all", synth_features, "--test-features", calm, "--out", str(runs),
            "--models", "CNN", "--epochs", "1", "--batch-size", "8", "--quiet"]  # fmt: skip
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "share 2 class(es) (angry, happy)" in refused.output
    assert "--classes angry,happy" in refused.output and not runs.exists()
    wrong = CliRunner().invoke(app, [*args, "--classes", "angry,calm"])
    assert wrong.exit_code == 2 and "--classes calm: not in both" in wrong.output
    named = CliRunner().invoke(app, [*args, "--classes", "happy,angry"])
    assert named.exit_code == 0, named.output
    (record,) = load_records(str(runs))
    assert record.protocol == "cross-corpus-2cls" and record.label_names == ["angry", "happy"]


def test_test_features_with_other_speeds_are_the_same_features(
    synth_features, other_corpus, tmp_path
):
    """Speed copies are training rows: they change no tested clip, so they may differ."""
    _, root = other_corpus
    sped = str(tmp_path / "sped")
    run_featurize(root, sped, FeatureConfig(image_size=32, speeds=(0.9,)),
                  manifest=root / "three.csv", progress=lambda _: None)  # fmt: skip
    runs = tmp_path / "runs"
    args = ["train-all", sped, "--test-features", synth_features, "--out", str(runs),
            "--models", "CNN", "--epochs", "1", "--batch-size", "8",
            "--quiet"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (record,) = load_records(str(runs))
    assert record.n_train == 24 and record.n_test == 18  # 12 recordings + 12 copies; no copy tested
