"""Training steps as plain functions; the Ray wiring in ``workflows`` only calls them.

Tensors live on the training device for the whole run (the corpora are small: 1,200
spectrograms of 128x128 are 79 MB), so an epoch is a loop over index slices with no loader.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from attres.recipe import Recipe


def prepare_for_training(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Move ``model`` to ``device`` in the fastest memory layout (channels_last for convs)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = model.to(device)
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def precision_for(requested: str, device_type: str, capability: tuple[int, int] = (0, 0)) -> str:
    """The arithmetic a run uses: fp32 on the CPU; on CUDA what was asked, "auto" being bf16
    where the GPU runs it natively (compute capability 8.0 and up) and fp16 (with a
    gradient scaler) below. bf16 asked of an older GPU is refused: it would run emulated.

    >>> precision_for("auto", "cpu"), precision_for("auto", "cuda", (7, 5))
    ('fp32', 'fp16')
    """
    if device_type != "cuda" or requested == "fp32":
        return "fp32"
    native_bf16 = capability >= (8, 0)
    if requested == "auto":
        return "bf16" if native_bf16 else "fp16"
    if requested == "bf16" and not native_bf16:
        raise ValueError(
            f"--precision bf16 on a GPU of compute capability {capability[0]}.{capability[1]}: "
            "it has no bf16 arithmetic and would emulate it; use auto (fp16 here) or fp32"
        )
    return requested


def device_precision(requested: str, device: torch.device) -> str:
    """``precision_for`` this device (its compute capability read from CUDA)."""
    if device.type != "cuda":
        return precision_for(requested, device.type)
    return precision_for(requested, "cuda", torch.cuda.get_device_capability(device))


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 or fp16 autocast on CUDA when that is the precision; a no-op otherwise."""
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if device.type == "cuda" and precision in dtypes:
        return torch.autocast("cuda", dtype=dtypes[precision])
    return contextlib.nullcontext()


def spec_augment(
    x: torch.Tensor, masks: int, max_fraction: float, generator: torch.Generator
) -> torch.Tensor:
    """SpecAugment-style masking (Park et al., 2019) of a standardized (B, C, F, T) batch.

    Each example gets ``masks`` frequency bands and ``masks`` time spans, each of a random
    width up to ``max_fraction`` of its axis, set to 0 (the training mean after
    standardization). No time warping. The masks are drawn where ``generator`` lives, which
    must be x's device: no copy between host and device.
    """
    out, device = x.clone(), x.device
    for axis in (2, 3):
        size = x.shape[axis]
        width = torch.randint(
            0, int(max_fraction * size) + 1, (len(x), masks), generator=generator, device=device
        )
        start = torch.rand(len(x), masks, generator=generator, device=device)
        start = (start * (size - width + 1)).long()
        position = torch.arange(size, device=device)
        inside = (position >= start[..., None]) & (position < (start + width)[..., None])
        hit = inside.any(1)  # (B, size)
        shape = (len(x), 1, size, 1) if axis == 2 else (len(x), 1, 1, size)
        out = out.masked_fill(hit.view(shape), 0.0)
    return out


def mixup_weight(alpha: float, generator: torch.Generator) -> float:
    """A Beta(alpha, alpha) draw, seeded from ``generator`` so a resumed run draws the same."""
    seed = int(torch.randint(2**31, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the optimizer's rate, then cosine decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    precision: str = "fp32",
    memory_format: torch.memory_format = torch.contiguous_format,
    recipe: Recipe = Recipe(),
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    shard: tuple[int, int] = (0, 1),
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[float, float]:
    """One pass over (x, y) in shuffled mini-batches; returns (mean loss, accuracy).

    ``shard`` = (rank, world size): each of ``world`` data-parallel ranks, all drawing the
    same order from identically seeded generators, trains on its slice of every global
    batch; the loss and accuracy returned are the rank's own. The rest is ``train_batches``.
    """
    rank, world = shard
    order = torch.randperm(len(y), generator=generator).to(x.device)
    draws = device_generator(generator, x.device)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size][rank::world]
            if len(order[start : start + batch_size]) >= 2 * world:  # BatchNorm: 2 per rank
                yield x[idx], y[idx]  # (B, 1, H, W)

    return train_batches(
        model, optimizer, batches(), generator, draws, precision, memory_format, recipe,
        scheduler, scaler,
    )  # fmt: skip


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """Where an epoch's masks and mixup partners are drawn: ``generator`` itself on the CPU,
    else a generator on ``device`` seeded from it."""
    if device.type == "cpu":
        return generator
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.Generator(device).manual_seed(seed)


def train_batches(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    generator: torch.Generator,
    draws: torch.Generator,
    precision: str = "fp32",
    memory_format: torch.memory_format = torch.contiguous_format,
    recipe: Recipe = Recipe(),
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[float, float]:
    """One training step per (images, labels) batch, on ``draws``' device; returns (mean
    loss, accuracy).

    ``recipe`` adds masking, mixup and label smoothing; ``scheduler`` steps once per batch;
    ``scaler`` scales the fp16 loss. Masks and mixup partners are drawn from ``draws``
    (``device_generator``), mixup weights from ``generator``. The accuracy is that of the
    (augmented) training batches against their own labels.
    """
    device = draws.device
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for xb, yb in batches:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        if recipe.spec_masks:
            xb = spec_augment(xb, recipe.spec_masks, recipe.mask_fraction, draws)
        lam, partner = 1.0, yb
        if recipe.mixup > 0:
            lam = mixup_weight(recipe.mixup, generator)  # a host scalar: no copy
            perm = torch.randperm(len(yb), generator=draws, device=device)
            xb, partner = lam * xb + (1 - lam) * xb[perm], yb[perm]
        xb = xb.contiguous(memory_format=memory_format)
        with autocast(device, precision):
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb, label_smoothing=recipe.label_smoothing)
            if lam < 1.0:  # mixup: the loss against both labels, weighted as the inputs were
                partner_loss = nn.functional.cross_entropy(
                    logits, partner, label_smoothing=recipe.label_smoothing
                )
                loss = lam * loss + (1 - lam) * partner_loss
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.detach() * len(yb)
        correct += (logits.argmax(1) == yb).sum()
        seen += len(yb)
    return float(total_loss) / max(seen, 1), float(correct) / max(seen, 1)


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 256,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """(N, classes) float32 logits of the rows of x, in eval mode and in fp32 whatever the
    training precision, so they match predict and export."""
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].contiguous(memory_format=memory_format)
        out.append(model(xb).float())
    return torch.cat(out)


def predict(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 256,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> np.ndarray:
    """Predicted class per row of x."""
    return predict_logits(model, x, batch_size, memory_format).argmax(1).cpu().numpy()
