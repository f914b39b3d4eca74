"""--extra-train: other corpora's clips on every fold's training side, weighted."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from attres.models.functionals import FunctionalsLinear, OpenSmileLinear
from featurize.config import FeatureConfig
from featurize.pipeline import run_featurize
from workflows.cli import app
from workflows.grid.config import TrainConfig
from workflows.grid.plan import GridError
from workflows.grid.train_all import train_all
from workflows.runs import load_records

QUIET = {"progress": lambda _: None}


def _corpus(root, seed: int, speakers: int, emotions: tuple[str, ...] | None = None) -> str:
    """A synthetic corpus featurized with eGeMAPS (``emotions``: only these, by manifest)."""
    from workflows.demo.synth import SynthConfig, synthesize_corpus

    wavs = root / "wavs"
    config = SynthConfig(
        speakers=speakers,
        utterances_per_emotion=2,
        min_duration_s=0.5,
        max_duration_s=0.7,
        seed=seed,
    )
    synthesize_corpus(wavs, config)
    manifest = None
    if emotions:
        manifest = root / "manifest.csv"
        kept = [w for w in sorted(wavs.rglob("*.wav")) if w.parts[-2] in emotions]
        manifest.write_text("path,speaker,emotion\n" + "".join(
            f"{w},{w.parts[-3]},{w.parts[-2]}\n" for w in kept))  # fmt: skip
    out = str(root / "features")
    run_featurize(wavs, out, FeatureConfig(image_size=16), functionals=("egemaps",),
                  manifest=manifest, **QUIET)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def corpora(ray_local, tmp_path_factory):
    target = _corpus(tmp_path_factory.mktemp("target"), seed=11, speakers=3)
    other = _corpus(tmp_path_factory.mktemp("other"), seed=12, speakers=2,
                    emotions=("angry", "sad", "happy"))  # fmt: skip
    return target, other


def test_other_corpora_join_every_training_side_never_the_test(corpora, tmp_path):
    target, other = corpora
    cfg = TrainConfig(protocol="loso")
    alone, extra = str(tmp_path / "alone"), str(tmp_path / "extra")
    train_all(target, alone, ["eGeMAPS-LR"], [0], cfg, **QUIET)
    with_other = TrainConfig(protocol="loso", extra_train=(other,), extra_weight=0.3)
    said: list[str] = []
    train_all(target, extra, ["eGeMAPS-LR"], [0], with_other, progress=said.append)
    assert any("12 clips of" in line and "weighted 0.3" in line for line in said)
    by_fold = {r.fold: r for r in load_records(alone)}
    records = load_records(extra)
    assert len(records) == len(by_fold) == 3
    for record in records:
        mine = by_fold[record.fold]
        assert record.protocol == "loso+extra-train" and mine.protocol == "loso"
        assert record.n_train == mine.n_train + 12  # 2 speakers x 3 emotions x 2
        assert record.n_test == mine.n_test and record.test_labels == mine.test_labels
        assert record.extra_train[0]["features"] == other
        assert record.extra_train[0]["weight"] == 0.3


def test_extra_train_is_refused_where_it_cannot_apply(corpora, tmp_path):
    target, other = corpora
    cfg = TrainConfig(protocol="loso", extra_train=(other,))
    with pytest.raises(GridError, match="scikit-learn models of functionals"):
        train_all(target, str(tmp_path / "r1"), ["CNN"], [0], cfg, **QUIET)
    runs = str(tmp_path / "r2")
    train_all(target, runs, ["eGeMAPS-LR"], [0], TrainConfig(protocol="loso"), **QUIET)
    with pytest.raises(GridError, match="other training settings"):
        train_all(target, runs, ["eGeMAPS-LR"], [0], cfg, **QUIET)
    result = CliRunner().invoke(app, ["train-all", target, "--out", str(tmp_path / "r3"),
                                      "--models", "eGeMAPS-LR", "--protocol", "loso",
                                      "--extra-train", target + "-missing"])  # fmt: skip
    assert result.exit_code == 2 and "features-missing" in result.output


@pytest.mark.parametrize("model", [FunctionalsLinear, OpenSmileLinear])
def test_a_row_of_weight_zero_changes_nothing(model):
    """Weights reach the scaler and the classifier (inner folds too): rows of weight 0 fit
    what leaving them out fits."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5, 1, 1))
    y = np.arange(60) % 3
    x[np.arange(60) % 3 == 1] += 0.8
    groups = np.repeat(["a", "b", "c", "d"], 15)
    noise = rng.normal(size=(30, 5, 1, 1)) * 5
    labels = rng.integers(0, 3, 30)
    weights = np.concatenate([np.ones(60), np.zeros(30)])
    plain = model(3, in_chans=5).fit(x, y, groups=groups)
    weighted = model(3, in_chans=5).fit(
        np.concatenate([x, noise]), np.concatenate([y, labels]),
        groups=np.concatenate([groups, np.repeat(["e", "f"], 15)]), sample_weight=weights,
        **({"scored": weights > 0} if model is OpenSmileLinear else {}),
    )  # fmt: skip
    probe = rng.normal(size=(40, 5, 1, 1))
    np.testing.assert_array_equal(plain.predict(probe), weighted.predict(probe))
