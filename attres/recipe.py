"""The regularization of a training step, as settings: no torch here, so a grid's driver
(``workflows.grid.config``) plans with it; ``attres.train`` applies it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """Regularization of one training step; the defaults are the paper's plain recipe."""

    label_smoothing: float = 0.0  # cross-entropy label smoothing
    mixup: float = 0.0  # Beta(alpha, alpha) mixup of pairs within a batch; 0: off
    spec_masks: int = 0  # SpecAugment: this many frequency and this many time masks; 0: off
    mask_fraction: float = 0.15  # the widest mask, as a fraction of its axis
