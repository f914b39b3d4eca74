"""Shared building blocks: conv-BN-ReLU, spatial attention, residual block (Res-A).

Reading of the paper's sections 2.2 / 3.1 (its figures are not available):

* ``SpatialAttention``: the input F (B, C, H, W) is max-pooled and average-pooled
  across channels, the two (B, 1, H, W) maps are concatenated, a 1x1 convolution
  turns them into one map, a softmax over the H*W positions gives the attention
  weights, and the weights multiply F element-wise. Softmax weights sum to one, so
  they average 1/(H*W) and would shrink the branch by that factor; the paper does
  not say how it keeps the scale. We multiply the softmax map by H*W, so a uniform
  map is the identity and the branch keeps its scale at initialisation. The sigmoid
  gate of CBAM (Woo et al., 2018) is kept as an option (``gate="sigmoid"``) for the
  ablation of this choice.
* Res-A block: a residual block (3x3 conv, BN, ReLU, 3x3 conv, BN) whose residual
  branch passes through ``SpatialAttention`` before the addition; the plain residual
  block is the same class without attention.
"""

from __future__ import annotations

import torch
from torch import nn

GATES = ("softmax", "sigmoid")


class ConvBNReLU(nn.Sequential):
    """Convolution (no bias), batch norm and, unless ``act=False``, ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        act: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SpatialAttention(nn.Module):
    """Spatial attention: weights over the H*W positions from channel max and mean.

    >>> att = SpatialAttention("softmax")
    >>> att.attention_map(torch.randn(2, 8, 4, 5)).sum(dim=(2, 3)).allclose(torch.ones(2, 1))
    True
    >>> att(torch.randn(2, 8, 4, 5)).shape
    torch.Size([2, 8, 4, 5])
    """

    def __init__(self, gate: str = "softmax", kernel_size: int = 1) -> None:
        super().__init__()
        if gate not in GATES:
            raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
        self.gate = gate
        # A softmax is shift-invariant, so a bias would get no gradient there.
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=gate == "sigmoid")

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """Weights (B, 1, H, W): a softmax over positions (sums to one) or a sigmoid gate."""
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        logits = self.conv(pooled)  # (B, 1, H, W)
        if self.gate == "sigmoid":
            return torch.sigmoid(logits)
        return logits.reshape(logits.shape[0], -1).softmax(dim=1).reshape(logits.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.attention_map(x)
        if self.gate == "softmax":
            weights = weights * (x.shape[2] * x.shape[3])  # uniform map -> identity
        return x * weights


class ResidualBlock(nn.Module):
    """Residual block (3x3 conv, BN, ReLU, 3x3 conv, BN, add, ReLU); Res-A with ``attention``.

    ``attention`` is None (plain block) or a gate name, which puts ``SpatialAttention``
    on the residual branch before the addition. A stride or a change of width adds a
    1x1 conv-BN projection on the shortcut (ResNet's BasicBlock).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        stride: int = 1,
        attention: str | None = None,
    ) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        self.conv1 = ConvBNReLU(in_channels, out_channels, stride=stride)
        self.conv2 = ConvBNReLU(out_channels, out_channels, act=False)
        self.attention = SpatialAttention(attention) if attention else nn.Identity()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvBNReLU(in_channels, out_channels, 1, stride, act=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.attention(self.conv2(self.conv1(x))) + self.shortcut(x))
