"""The model zoo: every registered model trains a step; attention, SVM, registry, FLOPs."""

from __future__ import annotations

import doctest
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

import attres.flops
import attres.inputs
import attres.layers
import attres.models.attres
import attres.models.svm
import attres.train
from attres.flops import count_flops, count_parameters
from attres.layers import SpatialAttention
from attres.models import (
    _registry,
    create_model,
    encoder_heads,
    list_models,
    model_info,
    model_kind,
    register_model,
    resolve_name,
)
from attres.train import prepare_for_training

NUM_CLASSES = 6
PAPER_ORDER = [
    "att-Res0",
    "att-Res0+att",
    "att-Res1",
    "att-Res2",
    "att-Res",
    "att-Res3",
    "CNN",
    "LSTM+CNN",
    "SVM",
    "AlexNet",
    "ResNet-18",
]
TORCH_MODELS = [name for name in PAPER_ORDER if name != "SVM"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread avoids OpenMP barrier stalls when other jobs share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("name", TORCH_MODELS)
def test_forward_backward(name: str, size: int) -> None:
    model = create_model(name, NUM_CLASSES)
    logits = model(torch.randn(2, 1, size, size))
    assert logits.shape == (2, NUM_CLASSES)
    assert torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.tensor([0, 5])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        # At 32x32 the deepest maps are 1x1: attention over one position is constant.
        if size > 32:
            assert p.grad.abs().sum() > 0, f"{pname} got an all-zero gradient"


def test_lstm_runs_in_float32_under_autocast() -> None:
    """cuDNN's autocast RNN path is fp16 without a grad scaler: LSTM+CNN keeps its LSTM fp32."""
    model = create_model("LSTM+CNN", NUM_CLASSES)
    seen = []
    model.lstm.register_forward_hook(lambda _, args, out: seen.append((args[0], out[0])))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.randn(2, 1, 32, 32))
    ((lstm_in, lstm_out),) = seen
    assert lstm_in.dtype == torch.float32 and lstm_out.dtype == torch.float32
    assert torch.isfinite(lstm_out).all() and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_in_chans(name: str) -> None:
    model = create_model(name, 3, in_chans=2).eval()
    assert model(torch.randn(2, 2, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("att-Res0", 0),
        ("att-Res0+att", 1),
        ("att-Res1", 1),
        ("att-Res2", 2),
        ("att-Res", 2),
        ("att-Res3", 3),
        ("CNN", 0),
        ("ResNet-18", 0),
    ],
)
def test_attention_count(name: str, expected: int) -> None:
    modules = create_model(name, NUM_CLASSES).modules()
    assert sum(isinstance(m, SpatialAttention) for m in modules) == expected


def test_attention_stages_placement() -> None:
    """att-Res1 has its attention in the deepest stage, att-Res2 in the first two."""

    def stages_with_attention(name: str) -> list[int]:
        stages = create_model(name, NUM_CLASSES).stages
        return [
            i
            for i, stage in enumerate(stages)
            if any(isinstance(m, SpatialAttention) for m in stage.modules())
        ]

    assert stages_with_attention("att-Res1") == [2]
    assert stages_with_attention("att-Res2") == [0, 1]
    assert stages_with_attention("att-Res") == [1, 2]
    assert isinstance(create_model("att-Res0+att", NUM_CLASSES).attention, SpatialAttention)


def test_softmax_attention_sums_to_one() -> None:
    att = SpatialAttention("softmax")
    nn.init.normal_(att.conv.weight, std=3.0)
    weights = att.attention_map(torch.randn(3, 16, 8, 12))
    assert weights.shape == (3, 1, 8, 12)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=(2, 3)), torch.ones(3, 1))
    assert weights.std() > 1e-3  # not uniform: the conv shapes it


def test_softmax_attention_uniform_map_is_identity() -> None:
    att = SpatialAttention("softmax")
    nn.init.zeros_(att.conv.weight)
    x = torch.randn(2, 4, 6, 5)
    torch.testing.assert_close(att(x), x)


def test_sigmoid_gate() -> None:
    att = SpatialAttention("sigmoid")
    x = torch.randn(2, 4, 6, 5)
    weights = att.attention_map(x)
    assert ((weights > 0) & (weights < 1)).all()
    torch.testing.assert_close(att(x), x * weights)
    model = create_model("att-Res3", NUM_CLASSES, gate="sigmoid")
    gates = [m.gate for m in model.modules() if isinstance(m, SpatialAttention)]
    assert gates == ["sigmoid"] * 3
    with pytest.raises(ValueError, match="gate"):
        SpatialAttention("tanh")


def _toy_spectrograms(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise plus energy in the low (class 0) or high (class 1) frequency rows."""
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 1, size, size))
    rows = np.arange(size)
    x += 2.0 * ((rows < size // 2) == (y[:, None] == 0))[:, None, :, None]
    return x.astype(np.float32), y


def test_svm_fits_and_predicts() -> None:
    rng = np.random.default_rng(0)
    x_train, y_train = _toy_spectrograms(60, 32, rng)
    x_test, y_test = _toy_spectrograms(40, 32, rng)
    svm = create_model("svm", 2)
    assert svm.fit(x_train, y_train) is svm
    predicted = svm.predict(x_test)
    assert predicted.shape == (40,)
    assert np.issubdtype(predicted.dtype, np.integer)
    assert (predicted == y_test).mean() >= 0.9
    with pytest.raises(ValueError, match="shape"):
        svm.predict(x_test[:, 0])


def test_svm_pooling_is_an_average() -> None:
    x = np.arange(2 * 1 * 64 * 48, dtype=np.float64).reshape(2, 1, 64, 48)
    pooled = attres.models.svm.average_pool(x, size=16)
    assert pooled.shape == (2, 256)
    np.testing.assert_allclose(pooled[0, 0], x[0, 0, :4, :3].mean())
    np.testing.assert_allclose(pooled.mean(axis=1), x.reshape(2, -1).mean(axis=1))


def test_list_models_in_paper_order() -> None:
    functionals = [f"{s}-{m}" for s in ("eGeMAPS", "ComParE") for m in ("LR", "SVM", "MLP")]
    # later entries follow the paper's, in the order they were registered
    assert list_models() == [
        *PAPER_ORDER,
        "att-Res+",
        *functionals,
        "eGeMAPS-LR-ST",
        "openSMILE-linear",
        *("eGeMAPS-MLP-ST", "ComParE-LR-FS", "Sets-LR", "Sets-LR-ST", "SER-recipe"),
    ]
    assert [model_kind(name) for name in PAPER_ORDER].count("sklearn") == 1
    assert model_kind("SVM") == "sklearn" and model_kind("att-Res") == "torch"


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("att-Res0", "att-Res0"),
        ("att-res0", "att-Res0"),
        ("att-res0-att", "att-Res0+att"),
        ("ATT-RES0+ATT", "att-Res0+att"),
        ("att-res", "att-Res"),
        ("att-res3", "att-Res3"),
        ("lstm-cnn", "LSTM+CNN"),
        ("lstm_cnn", "LSTM+CNN"),
        ("resnet18", "ResNet-18"),
        ("ResNet-18", "ResNet-18"),
        ("alexnet", "AlexNet"),
        ("svm", "SVM"),
        ("cnn", "CNN"),
    ],
)
def test_resolve_name(alias: str, canonical: str) -> None:
    assert resolve_name(alias) == canonical


def test_unknown_name_lists_known_models() -> None:
    with pytest.raises(ValueError, match="unknown model 'vgg16'") as excinfo:
        create_model("vgg16", NUM_CLASSES)
    for name in PAPER_ORDER:
        assert name in str(excinfo.value)


def test_register_model_refuses_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_MODELS", dict(_registry._MODELS))
    monkeypatch.setattr(_registry, "_KEYS", dict(_registry._KEYS))
    with pytest.raises(ValueError, match="already registered"):
        register_model("att-Res")(attres.models.attres.AttRes)
    with pytest.raises(ValueError, match="already registered"):
        register_model("att-Res-")(attres.models.attres.AttRes)  # slug "att-res" is taken
    with pytest.raises(ValueError, match="already registered"):
        register_model("ResNet18-wide", aliases=("resnet18",))(attres.models.attres.AttRes)
    register_model("att-Res-wide", slug="att-res-wide")(attres.models.attres.AttRes)
    assert resolve_name("ATT-RES-WIDE") == "att-Res-wide"
    assert list_models()[-1] == "att-Res-wide" and list_models()[: len(PAPER_ORDER)] == list(
        PAPER_ORDER
    )
    assert isinstance(create_model("att_res_wide", NUM_CLASSES), attres.models.attres.AttRes)


def test_flops_of_one_conv_match_the_formula() -> None:
    conv = nn.Conv2d(1, 32, 3, padding=1, bias=False)
    assert count_flops(conv, (1, 128, 128)) == 2 * 32 * 9 * 128 * 128
    assert count_parameters(nn.Linear(10, 3)) == 33


def test_flops_of_att_res0_match_the_formula() -> None:
    macs = (
        9 * 1 * 32 * 128 * 128  # stage 1 conv, stride 1 -> pool to 64x64
        + 2 * 9 * 32 * 32 * 64 * 64  # its residual block
        + 9 * 32 * 64 * 32 * 32  # stage 2 conv, stride 2 -> pool to 16x16
        + 2 * 9 * 64 * 64 * 16 * 16
        + 9 * 64 * 128 * 8 * 8  # stage 3 conv, stride 2 -> pool to 4x4
        + 2 * 9 * 128 * 128 * 4 * 4
        + 128 * NUM_CLASSES  # classifier
    )
    assert count_flops(create_model("att-Res0", NUM_CLASSES)) == 2 * macs


def test_lstm_flops_are_counted() -> None:
    lstm = nn.LSTM(32, 16, batch_first=True)
    assert count_flops(lstm, (10, 32)) == 2 * 10 * 4 * 16 * (32 + 16)


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_flops_plausible(name: str) -> None:
    model = create_model(name, NUM_CLASSES)
    flops = count_flops(model, (1, 128, 128))
    assert 1e8 < flops < 5e9
    assert count_flops(model, (1, 64, 64)) < flops / 2
    assert model.training  # count_flops restores the mode
    assert 1e5 < count_parameters(model) < 2e7


def test_prepare_for_training() -> None:
    model = prepare_for_training(create_model("att-Res", NUM_CLASSES), "cpu")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    for conv in convs[1:]:  # the first has one input channel: NCHW and NHWC coincide
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        assert not conv.weight.is_contiguous()
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize(
    "module",
    [attres.layers, attres.flops, attres.inputs, attres.train, attres.models.attres,
     attres.models.svm, _registry],
)  # fmt: skip
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_every_registered_builder_is_found_where_the_catalog_says() -> None:
    """The catalog names builders by place: a renamed class or function fails here, not in a
    grid's trial."""
    for name in list_models():
        assert callable(model_info(name).build), name
    for head in encoder_heads():
        assert callable(model_info(f"wavlm-{head}").build), head
