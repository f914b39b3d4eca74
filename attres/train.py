"""Training steps as plain functions; the Ray wiring in ``workflows`` only calls them.

Tensors live on the training device for the whole run (the corpora are small: 1,200
spectrograms of 128x128 are 79 MB), so an epoch is a loop over index slices with no loader.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Standardizer:
    """Scalar mean/std of the training spectrograms (fitted on training data only)."""

    mean: float
    std: float

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        return cls(float(x.mean()), float(x.std() + 1e-6))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked; a no-op elsewhere (CPU training stays fp32)."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    bf16: bool = False,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> tuple[float, float]:
    """One pass over (x, y) in shuffled mini-batches; returns (mean loss, accuracy)."""
    model.train()
    order = torch.randperm(len(y), generator=generator).to(x.device)
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(y), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < 2:  # BatchNorm cannot train on a single sample
            continue
        xb = x[idx].contiguous(memory_format=memory_format)  # (B, 1, H, W)
        yb = y[idx]
        with autocast(x.device, bf16):
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach() * len(idx)
        correct += (logits.argmax(1) == yb).sum()
    return float(total_loss) / len(y), float(correct) / len(y)


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 256,
    bf16: bool = False,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> np.ndarray:
    """Predicted class per row of x."""
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].contiguous(memory_format=memory_format)
        with autocast(x.device, bf16):
            out.append(model(xb).argmax(1))
    return torch.cat(out).cpu().numpy()
