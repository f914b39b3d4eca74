"""The att-Res family (paper sections 2.2 / 3.1): three stages, attention where the tuple says.

Each stage is a Block (conv 3x3-BN-ReLU, 2x2 max-pool, residual block) or a Block-A
(the same with a Res-A block). The input stage has 32 kernels and stride 1, the next
two 64 and 128 kernels and stride 2; then global average pooling and a linear
classifier (the model returns logits, the softmax lives in the loss). Maps shrink
by 2, 4 and 4: a 128x128 spectrogram leaves the stages as 64, 16 and 4 pixels square,
a 32x32 one as 16, 4 and 1 (where attention over a single position is the identity).

The six networks differ only in which stages are Block-A (``VARIANTS`` in
``attres.models._catalog``); att-Res0+att adds one SpatialAttention before the global
average pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from attres.layers import ConvBNReLU, ResidualBlock, SpatialAttention


class Block(nn.Sequential):
    """Block, or Block-A when ``attention`` names a gate: conv-BN-ReLU, max-pool, (Res-A) block."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, attention: str | None = None
    ) -> None:
        super().__init__(
            ConvBNReLU(in_channels, out_channels, stride=stride),
            nn.MaxPool2d(2),
            ResidualBlock(out_channels, attention=attention),
        )


class AttRes(nn.Module):
    """att-Res network; ``attention_stages[i]`` makes stage i a Block-A.

    >>> AttRes(6, attention_stages=(False, True, True))(torch.randn(2, 1, 64, 64)).shape
    torch.Size([2, 6])
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        attention_stages: tuple[bool, bool, bool] = (False, True, True),
        final_attention: bool = False,
        widths: tuple[int, ...] = (32, 64, 128),
        strides: tuple[int, ...] = (1, 2, 2),
        gate: str = "softmax",
    ) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        channels = in_chans
        for width, stride, attention in zip(widths, strides, attention_stages, strict=True):
            stages.append(Block(channels, width, stride, gate if attention else None))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.attention = SpatialAttention(gate) if final_attention else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, F, T) -> (B, num_classes)
        x = self.attention(self.stages(x))  # (B, 128, F / 32, T / 32)
        return self.fc(torch.flatten(self.pool(x), 1))
