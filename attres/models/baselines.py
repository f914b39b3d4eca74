"""The paper's comparison networks, sized for small one-channel spectrograms.

* CNN: att-Res0 without its skip connections (same 9 conv layers, same widths and
  strides), so it isolates what the residuals add.
* LSTM+CNN: three conv-BN-ReLU + 2x2 max-pool stages, frequency pooled to 4 bins, an
  LSTM over the time frames, the mean of its outputs into a linear classifier.
* AlexNet: torchvision's layout with one input channel, ``padding=1`` on its 3x3
  max-pools (so a 32x32 input still reaches the classifier, 1x1), and 1024-wide
  instead of 4096-wide hidden layers (58 M -> 7.5 M parameters, for ~1000 clips).
* ResNet-18: torchvision's (BasicBlock [2, 2, 2, 2]) with one input channel; its
  stem (7x7 stride 2, max-pool) is kept: a 32x32 input ends as a 1x1 map.

All return logits of shape (B, num_classes) for inputs (B, in_chans, F, T).
"""

from __future__ import annotations

import torch
from torch import nn

from attres.layers import ConvBNReLU, ResidualBlock


def _head(channels: int, num_classes: int) -> nn.Sequential:
    """Global average pooling and a linear classifier."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


class CNN(nn.Sequential):
    """att-Res0's conv layers without residuals: per stage conv (stride), max-pool, conv, conv."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        widths: tuple[int, ...] = (32, 64, 128),
        strides: tuple[int, ...] = (1, 2, 2),
    ) -> None:
        layers: list[nn.Module] = []
        channels = in_chans
        for width, stride in zip(widths, strides, strict=True):
            layers += [ConvBNReLU(channels, width, stride=stride), nn.MaxPool2d(2)]
            layers += [ConvBNReLU(width, width), ConvBNReLU(width, width)]
            channels = width
        super().__init__(*layers, _head(channels, num_classes))


class LSTMCNN(nn.Module):
    """Conv front end, LSTM over time (the W axis), classifier on the time-averaged output."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        widths: tuple[int, ...] = (32, 64, 128),
        freq_bins: int = 4,
        hidden_size: int = 128,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for width in widths:
            layers += [ConvBNReLU(channels, width), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.freq_pool = nn.AdaptiveAvgPool2d((freq_bins, None))
        self.lstm = nn.LSTM(channels * freq_bins, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.freq_pool(self.features(x))  # (B, C, freq_bins, T / 8)
        x = x.flatten(1, 2).transpose(1, 2)  # (B, T / 8, C * freq_bins)
        # cuDNN's autocast RNN path runs fp16 without a grad scaler: keep the LSTM in fp32.
        with torch.autocast(device_type=x.device.type, enabled=False):
            out, _ = self.lstm(x.float())  # (B, T / 8, hidden_size)
        return self.fc(out.mean(dim=1))


class AlexNet(nn.Module):
    """AlexNet (torchvision layout) for one-channel spectrograms; see the module docstring."""

    def __init__(
        self, num_classes: int, in_chans: int = 1, hidden: int = 1024, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, 11, stride=4, padding=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),
        )  # 128x128 -> 4x4, 32x32 -> 1x1
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 4 * 4, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class ResNet18(nn.Sequential):
    """ResNet-18: 7x7 stride-2 stem, max-pool, four stages of two BasicBlocks, linear head."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        depths: tuple[int, ...] = (2, 2, 2, 2),
    ) -> None:
        layers: list[nn.Module] = [ConvBNReLU(in_chans, widths[0], 7, 2), nn.MaxPool2d(3, 2, 1)]
        channels = widths[0]
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for i in range(depth):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(ResidualBlock(channels, width, stride))
                channels = width
        super().__init__(*layers, _head(channels, num_classes))
