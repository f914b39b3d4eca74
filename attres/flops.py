"""Parameter and FLOP counts of torch models.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``: 2 per multiply-add of
convolutions and matrix products. It has no formula for the fused CPU LSTM kernel
(``aten.mkldnn_rnn_layer``), so one is added here: 2 * T * B * (4H * I + 4H * H) per
layer. Batch norm, activations, pooling and softmax are not counted (a few percent).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _rnn_layer_flops(
    input_shape: torch.Size, w_ih: torch.Size, w_hh: torch.Size, *args: Any, **kwargs: Any
) -> int:
    steps_times_batch = input_shape[0] * input_shape[1]  # (T, B, I) or (B, T, I)
    return 2 * steps_times_batch * (w_ih[0] * w_ih[1] + w_hh[0] * w_hh[1])


_CUSTOM = {torch.ops.aten.mkldnn_rnn_layer: _rnn_layer_flops}


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, input_size: tuple[int, ...] = (1, 128, 128)) -> int:
    """Forward FLOPs for one sample of shape ``input_size`` (C, H, W), in eval mode.

    >>> count_flops(nn.Conv2d(1, 4, 3, padding=1, bias=False), (1, 8, 8))  # 2*4*8*8*9
    4608
    """
    parameter = next(model.parameters(), None)
    x = torch.zeros(1, *input_size, device=parameter.device if parameter is not None else None)
    was_training = model.training
    model.eval()  # batch norm would refuse a batch of one 1x1 map in training mode
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_CUSTOM) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
