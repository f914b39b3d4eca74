"""Training recipes (attres.train): SpecAugment masks, mixup, label smoothing, cosine schedule."""

from __future__ import annotations

import pytest
import torch

from attres.models import create_model, model_info
from attres.recipe import Recipe
from attres.train import cosine_schedule, mixup_weight, spec_augment, train_epoch
from workflows.grid.config import TrainConfig


def test_spec_augment_zeroes_whole_bands_and_spans_only() -> None:
    x = torch.randn(16, 1, 32, 40) + 10  # no zeros before masking
    original = x.clone()
    out = spec_augment(x, masks=2, max_fraction=0.25, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(x, original)  # the input is not modified
    zero = out == 0
    assert zero.any()
    for example in zero[:, 0]:  # every zero lies on a fully masked row or column
        rows, cols = example.all(1), example.all(0)
        assert torch.equal(example, rows[:, None] | cols[None, :])
        assert rows.sum() <= 2 * 8 and cols.sum() <= 2 * 10  # 2 masks of at most 25 %
    again = spec_augment(x, 2, 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_mixup_weight_is_a_seeded_beta_draw() -> None:
    draws = [mixup_weight(0.2, torch.Generator().manual_seed(s)) for s in range(200)]
    assert all(0.0 <= d <= 1.0 for d in draws)
    assert sum(d < 0.1 or d > 0.9 for d in draws) > 100  # Beta(0.2, 0.2) is U-shaped
    assert mixup_weight(0.2, torch.Generator().manual_seed(3)) == draws[3]


def test_cosine_schedule_warms_up_then_decays_to_zero() -> None:
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = cosine_schedule(opt, total_steps=100, warmup_steps=10)
    rates = []
    for _ in range(100):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:], strict=False))
    assert rates[-1] < 1e-3 and opt.param_groups[0]["lr"] == pytest.approx(0.0)


def test_train_epoch_with_the_full_recipe_learns() -> None:
    torch.manual_seed(0)
    x = torch.randn(48, 1, 32, 32)
    y = torch.arange(48) % 3
    x[y == 1, :, :8] += 3.0  # class cues in frequency bands, wider than one mask
    x[y == 2, :, -8:] += 3.0
    model = create_model("att-Res0", num_classes=3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = cosine_schedule(opt, total_steps=8 * 6)
    recipe = Recipe(label_smoothing=0.1, mixup=0.2, spec_masks=1)
    gen = torch.Generator().manual_seed(0)
    losses = [
        train_epoch(model, opt, x, y, 8, gen, recipe=recipe, scheduler=sched)[0] for _ in range(8)
    ]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_train_config_checks_recipe_values() -> None:
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="validation"):
        TrainConfig(validation=1.0)
    with pytest.raises(ValueError, match="unknown train config keys"):
        TrainConfig().for_model({"dropout": 0.5})
    assert TrainConfig().recipe() == Recipe()


def test_att_res_plus_is_att_res_with_its_own_recipe() -> None:
    plus, base = model_info("att-res-plus"), model_info("att-Res")
    assert plus.name == "att-Res+" and base.recipe == {}
    cfg = TrainConfig().for_model(plus.recipe)
    assert cfg.schedule == "cosine" and cfg.recipe() != Recipe()
    assert cfg.normalize == "speaker" and TrainConfig().normalize == "global"
    a, b = create_model("att-Res+", 6), create_model("att-Res", 6)
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
