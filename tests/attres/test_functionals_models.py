"""The models over openSMILE functionals: shapes, the registry's view, and nested selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attres.inputs import InputSettings
from attres.models import create_model, model_info, model_kind
from attres.models.functionals import (
    SEARCH_C,
    SELECT_K,
    OpenSmileLinear,
    class_probabilities,
    linear_pipeline,
)


def separable(n_per_group: int = 20, groups: int = 3, seed: int = 0):
    """Two sets side by side: columns 0-3 carry the class, columns 4-9 are noise; each group
    (speaker) shifted by its own offset."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(2), n_per_group * groups // 2)
    g = np.repeat(np.arange(groups), n_per_group)
    x = rng.normal(size=(len(y), 10)) + g[:, None] * 5.0
    x[:, :4] += 3.0 * y[:, None]
    return x[:, :, None, None].astype(np.float32), y, g.astype(str)


def test_the_registry_says_what_each_model_reads():
    assert model_info("eGeMAPS-LR").features == ("egemaps",)
    assert model_info("compare-mlp").features == ("compare",)
    assert model_kind("ComParE-MLP") == "torch" and model_kind("ComParE-SVM") == "sklearn"
    assert model_info("openSMILE-linear").features == ("egemaps", "compare")
    assert model_info("att-Res").features == () and model_info("att-Res").reads == "spectrogram"
    for name in ("eGeMAPS-LR", "eGeMAPS-SVM", "eGeMAPS-MLP", "openSMILE-linear"):
        assert model_info(name).recipe["normalize"] == "speaker"  # the field's standard


def test_the_mlp_takes_functionals_as_channels_of_one_pixel():
    model = create_model("eGeMAPS-MLP", num_classes=6, in_chans=88)
    assert model(torch.zeros(4, 88, 1, 1)).shape == (4, 6)


def test_per_speaker_scaling_zscores_each_functional_within_a_speaker():
    x, _, g = separable()
    z = InputSettings(normalize="speaker").apply(x, g)
    mine = z[g == "1"][:, :, 0, 0]
    np.testing.assert_allclose(mine.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(mine.std(axis=0), 1, atol=1e-3)


@pytest.mark.parametrize("name", ["eGeMAPS-LR", "eGeMAPS-SVM"])
def test_the_linear_models_learn_a_separable_set(name):
    x, y, g = separable()
    z = InputSettings(normalize="speaker").apply(x, g)
    model = create_model(name, num_classes=2, in_chans=10).fit(z, y)
    assert (model.predict(z) == y).mean() > 0.9


def test_selection_validates_on_held_out_speakers_and_keeps_every_option():
    x, y, g = separable()
    z = InputSettings(normalize="speaker").apply(x, g)
    model = OpenSmileLinear(2, 10, parts=(("noise", 6), ("signal", 4)))
    # the second set's columns are 6-9: put the class there, the noise first
    z = np.concatenate([z[:, 4:], z[:, :4]], axis=1)
    model.fit(z, y, groups=g)
    rows = model.selection_
    assert len(rows) == 2 * 2 * len(SEARCH_C)  # sets x classifiers x C
    assert all(len(r["per_group"]) == 3 and r["validated_by"] == "speaker" for r in rows)
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["set"] == "signal"
    assert chosen[0]["validation_ua"] == max(r["validation_ua"] for r in rows)
    noise = max(r["validation_ua"] for r in rows if r["set"] == "noise")
    assert noise < 0.75 < chosen[0]["validation_ua"]
    assert (model.predict(z) == y).mean() > 0.9


def test_selection_without_speakers_falls_back_to_stratified_folds():
    x, y, _ = separable()
    model = OpenSmileLinear(2, 10, parts=(("all", 10),), C=(0.01,)).fit(x, y)
    assert {r["validated_by"] for r in model.selection_} == {"3-fold"}


def test_parts_must_cover_the_input():
    with pytest.raises(ValueError, match="do not add up"):
        OpenSmileLinear(2, 10, parts=(("egemaps", 88),))


def shifted_speaker(seed: int = 0):
    """Two classes along column 0; the new speaker's classes sit shifted and closer."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], 100)
    x_train = np.stack([2.0 * y - 1 + 0.4 * rng.normal(size=200), rng.normal(size=200)], 1)
    y_new = np.tile([0, 1], 50)
    x_new = np.stack([0.6 * (2.0 * y_new - 1) + 0.7 + 0.3 * rng.normal(size=100),
                      rng.normal(size=100)], 1)  # fmt: skip
    return x_train[:, :, None, None], y, x_new[:, :, None, None], y_new


def test_self_training_adapts_to_a_new_speaker_without_their_labels():
    x, y, x_new, y_new = shifted_speaker()
    model = create_model("eGeMAPS-LR-ST", num_classes=2, in_chans=2, C=1.0).fit(x, y)
    unadapted = (model.base.predict(x_new) == y_new).mean()
    adapted = (model.predict(x_new) == y_new).mean()
    assert unadapted < 0.8 and adapted > unadapted + 0.1
    # each speaker adapts on their own clips: a second copy of the speaker changes nothing
    both = np.concatenate([x_new, x_new])
    groups = np.repeat(["a", "b"], len(x_new))
    twice = model.adapted_probabilities(both, groups)
    np.testing.assert_allclose(twice[: len(x_new)], twice[len(x_new) :])
    np.testing.assert_allclose(twice[: len(x_new)], model.adapted_probabilities(x_new))


@pytest.mark.parametrize("name", ["eGeMAPS-LR", "eGeMAPS-LR-ST", "eGeMAPS-MLP-ST", "Sets-LR-ST"])
def test_probabilities_keep_their_class_when_training_lacks_one(name):
    """A fold whose training side has no clip of class 1 (of 3): each column is its class."""
    x, y, g = separable(groups=2)
    y = np.where(y == 1, 2, 0)  # classes 0 and 2 only
    x = InputSettings(normalize="speaker").apply(x, g)
    model = create_model(name, num_classes=3, in_chans=10).fit(x, y)
    if hasattr(model, "adapted_probabilities"):
        p = model.adapted_probabilities(x, g)
    else:
        p = class_probabilities(model.pipeline, x, 3)
    assert p.shape == (len(x), 3) and np.all(p[:, 1] == 0)
    assert (p.argmax(axis=1) == y).mean() > 0.9  # class 2 stays class 2, not 1


def test_selection_scores_a_held_out_speakers_recordings_not_their_speed_copies():
    from sklearn.metrics import balanced_accuracy_score

    from attres.models.functionals import linear_pipeline

    x, y, g = separable()
    copies = x.copy()  # copies whose functionals say nothing of the class
    copies[:, :4] = np.random.default_rng(1).normal(size=copies[:, :4].shape)
    X, Y, G = np.concatenate([x, copies]), np.concatenate([y, y]), np.concatenate([g, g])
    scored = np.arange(len(X)) < len(x)
    model = OpenSmileLinear(2, 10, C=(1.0,)).fit(X, Y, groups=G, scored=scored)
    (lr,) = [row for row in model.selection_ if row["classifier"] == "lr"]
    expected = []
    for held_out in np.unique(G):  # trained on every other row, copies too
        fitted = linear_pipeline("lr", 1.0).fit(X[G != held_out], Y[G != held_out])
        mine = (G == held_out) & scored
        expected.append(balanced_accuracy_score(Y[mine], fitted.predict(X[mine])))
    assert lr["per_group"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("eGeMAPS-MLP-ST", {}),
        ("Sets-LR-ST", {"parts": (("egemaps", 1), ("compare", 1))}),
    ],
)
def test_the_recipe_candidates_self_train_each_speaker_on_their_own_clips(name, kw):
    x, y, x_new, _ = shifted_speaker()
    model = create_model(name, num_classes=2, in_chans=2, **kw).fit(x, y)
    adapted = model.adapted_probabilities(x_new)
    assert np.abs(adapted - class_probabilities(model.base, x_new, 2)).max() > 0.01
    both = np.concatenate([x_new, x_new])
    twice = model.adapted_probabilities(both, np.repeat(["a", "b"], len(x_new)))
    np.testing.assert_allclose(twice[: len(x_new)], twice[len(x_new) :])
    np.testing.assert_allclose(twice[: len(x_new)], adapted)


def test_sets_lr_averages_one_regression_per_set():
    x, y, g = separable()
    x = np.concatenate([x, np.random.default_rng(1).normal(size=x.shape)], axis=1)
    model = create_model("Sets-LR", num_classes=3, in_chans=20, parts=(("a", 10), ("b", 10)))
    p = model.fit(x, y).pipeline.predict_proba(x)
    alone = [linear_pipeline("lr", 0.01, cols).fit(x, y) for cols in ((0, 10), (10, 20))]
    np.testing.assert_allclose(p, np.mean([m.predict_proba(x) for m in alone], axis=0))


def test_compare_lr_fs_keeps_the_informative_functionals_of_the_training_rows():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1, 2], 100)
    x = rng.normal(size=(300, SELECT_K + 500))
    informative = rng.choice(x.shape[1], 20, replace=False)
    x[:, informative] += 2.0 * y[:, None]
    model = create_model("ComParE-LR-FS", num_classes=3, in_chans=x.shape[1])
    kept = model.fit(x[:, :, None, None], y).pipeline.named_steps["selectkbest"].get_support()
    assert kept.sum() == SELECT_K and kept[informative].all()
    # fewer functionals than SELECT_K: all are kept
    small = create_model("ComParE-LR-FS", num_classes=3, in_chans=30)
    assert small.fit(x[:, :30, None, None], y).pipeline.named_steps["selectkbest"].k == 30
