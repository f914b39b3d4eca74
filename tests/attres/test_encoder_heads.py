"""The heads over encoder layers: the registry's family, the layer chosen on held-out training
speakers, SUPERB's weighted sum, seeds, and saving through skops."""

from __future__ import annotations

import numpy as np
import pytest

from attres.inputs import InputSettings
from attres.models import create_model, encoder_heads, model_info, resolve_name, slug_of
from attres.models._registry import register_encoder_head
from attres.models.encoders import SEARCH_C, EncoderLinear, SmallNetwork
from attres.saved import ModelMeta, load_sklearn, sklearn_bytes

LAYERS, DIM, CLASSES = 4, 6, 3


def layered(per_speaker: int = 30, speakers: int = 3, signal_layer: int = 2, seed: int = 0):
    """(N, layers, dim, 1) embeddings whose class shows in ``signal_layer`` alone; each
    speaker shifted by an offset of their own, as voices are."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(CLASSES), per_speaker * speakers // CLASSES)
    g = np.repeat(np.arange(speakers), per_speaker)
    x = rng.normal(size=(len(y), LAYERS, DIM)) + 2.0 * g[:, None, None]
    x[:, signal_layer, :2] += 2.5 * np.eye(CLASSES)[y][:, :2] - 1.2 * (y == 2)[:, None]
    return x[..., None].astype(np.float32), y, g.astype(str)


def test_the_family_names_a_head_over_any_encoder_set():
    assert encoder_heads() == ["LR", "MLP", "WS"]
    assert resolve_name("WavLM-Base-Plus-lr") == "wavlm-base-plus-LR"
    info = model_info("wavlm-base-plus_ws")
    assert (info.name, info.encoder, info.kind) == (
        "wavlm-base-plus-WS",
        "wavlm-base-plus",
        "sklearn",
    )
    assert info.reads == "wavlm-base-plus encoder layers" and info.features == ()
    assert slug_of("w2v.base-MLP") == "w2v-base-mlp"
    assert info.recipe == {"deltas": 0, "spec_masks": 0, "mixup": 0.0}  # scaling: the grid's
    # the registered models keep their names: eGeMAPS-LR is no head over a set "egemaps"
    assert model_info("eGeMAPS-LR").encoder == "" and resolve_name("egemaps-mlp") == "eGeMAPS-MLP"
    with pytest.raises(ValueError, match=r"<encoder set>-LR/-MLP/-WS"):
        resolve_name("wavlm-XYZ")
    with pytest.raises(ValueError, match="already registered"):
        register_encoder_head("lr")(EncoderLinear)


def test_the_linear_head_chooses_the_layer_on_held_out_training_speakers():
    x, y, g = layered()
    model = create_model("w-LR", num_classes=CLASSES, in_chans=LAYERS).fit(x, y, groups=g)
    assert len(model.selection_) == LAYERS * len(SEARCH_C)
    (chosen,) = [row for row in model.selection_ if row["chosen"]]
    assert chosen["layer"] == 2 and chosen["validated_by"] == "speaker"
    assert {len(row["per_group"]) for row in model.selection_} == {3}  # one per speaker
    noise = max(r["validation_ua"] for r in model.selection_ if r["layer"] != 2)
    assert chosen["validation_ua"] > noise + 0.2
    fresh, y_fresh, _ = layered(seed=1)
    assert (model.predict(fresh) == y_fresh).mean() > 0.6


def test_speed_copies_train_but_are_not_scored_and_one_speaker_falls_back_to_3_fold():
    x, y, g = layered()
    scored = np.arange(len(y)) % 2 == 0
    model = EncoderLinear(CLASSES, LAYERS, C=(0.1,)).fit(x, y, groups=g, scored=scored)
    assert {row["validated_by"] for row in model.selection_} == {"speaker"}
    mine = g == "0"
    alone = EncoderLinear(CLASSES, LAYERS, C=(0.1,)).fit(x[mine], y[mine], groups=g[mine])
    assert {row["validated_by"] for row in alone.selection_} == {"3-fold"}
    with pytest.raises(ValueError, match="held-out training speakers"):
        EncoderLinear(CLASSES, LAYERS).fit(x[:3], y[:3], groups=g[:3])


def test_the_mlp_reads_the_layer_the_probe_chooses_and_its_seed_matters():
    x, y, g = layered()
    z = InputSettings(normalize="speaker").apply(x, g)
    fast = {"num_classes": CLASSES, "in_chans": LAYERS, "C": (0.1,)}
    one = create_model("w-MLP", **fast, seed=0).fit(z, y, groups=g)
    (chosen,) = [row for row in one.selection_ if row["chosen"]]
    assert chosen["layer"] == 2
    columns = one.pipeline[0].kw_args
    assert (columns["start"], columns["stop"]) == (2 * DIM, 3 * DIM)
    assert (one.predict(z) == y).mean() > 0.8
    again = create_model("w-MLP", **fast, seed=0).fit(z, y, groups=g)
    other = create_model("w-MLP", **fast, seed=1).fit(z, y, groups=g)
    p = one.pipeline.predict_proba(z)
    np.testing.assert_array_equal(p, again.pipeline.predict_proba(z))
    assert np.abs(p - other.pipeline.predict_proba(z)).max() > 1e-4


def test_the_weighted_sum_learns_to_weigh_the_layer_that_carries_the_class():
    x, y, g = layered(per_speaker=60)
    z = InputSettings(normalize="speaker").apply(x, g)
    model = create_model("w-WS", num_classes=CLASSES, in_chans=LAYERS).fit(z, y)
    weights = model.layer_weights
    assert weights.shape == (LAYERS,) and abs(weights.sum() - 1) < 1e-6
    assert weights.argmax() == 2 and weights[2] > np.delete(weights, 2).max() + 0.05
    assert (model.predict(z) == y).mean() > 0.6  # chance: 1/3
    assert not hasattr(model, "selection_")  # nothing chosen on held-out rows


@pytest.mark.parametrize("head", ["LR", "MLP", "WS"])
def test_a_head_saves_as_data_and_loads_to_the_same_probabilities(head):
    x, y, g = layered()
    one_c = {} if head == "WS" else {"C": (0.1,)}
    model = create_model(f"w-{head}", num_classes=CLASSES, in_chans=LAYERS, **one_c)
    model.fit(x, y, groups=g)
    meta = ModelMeta(f"w-{head}", "t", ("a", "b", "c"), 0.0, 1.0, {})
    saved = load_sklearn(*sklearn_bytes(meta, model), source="test")
    assert saved.meta.model == f"w-{head}"
    np.testing.assert_allclose(
        saved.model.predict_proba(x), model.pipeline.predict_proba(x), rtol=1e-6
    )


def test_the_small_network_refuses_nothing_it_was_not_fitted_on():
    net = SmallNetwork(layers=1, epochs=2).fit(np.zeros((6, 4), np.float32), np.array([0, 1] * 3))
    assert net.predict_proba(np.zeros((2, 4), np.float32)).shape == (2, 2)
    assert list(net.classes_) == [0, 1]
