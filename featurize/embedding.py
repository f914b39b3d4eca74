"""A speech encoder at work: clips in, the mean of every layer's hidden states over each clip's
own frames out, (layers + 1, dim) per clip.

Batched output equals one-clip-at-a-time output (to float rounding: 1e-4 of the values'
scale in fp32, tests/featurize/test_encoders.py). Three things would break that, and are
undone here:

* feature extractors that normalize the waveform (wav2vec 2.0's ``do_normalize``) would,
  on a padded batch, take the padding into the mean and variance: each clip is prepared on
  its own (``prepare``), then padded;
* encoders whose first convolution has a group norm over time (``feat_extract_norm:
  "group"``, as wav2vec2-base, hubert-base and wavlm-base-plus) normalize over the padding
  too: their convolutional feature encoder runs clip by clip (``ClipWiseConvs``), the
  transformer batched under the attention mask;
* data2vec-audio's stack of positional convolutions carries padded frames into the clip's
  last frames from its second layer on: the padded frames are zeroed after each layer
  (what a clip alone sees: zero padding).

Whisper's encoder reads a fixed 30 s log-mel window (padding included, as it was trained);
only the encoder frames the clip covers are pooled.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from featurize.encoders import EncoderSource

BATCH_SECONDS = 160.0  # padded audio per forward pass: bounds the activations in memory


class EncoderInputError(ValueError):
    """The clip does not fit the encoder (shorter than its receptive field, longer than
    Whisper's window); the message is a one-line reason."""


def device_dtype(device: str) -> torch.dtype:
    """fp32 on the CPU; bf16 on a GPU that runs it natively, else fp16."""
    if not device.startswith("cuda"):
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class Embedder:
    """One encoder loaded on ``device`` (its weights in ``device_dtype``), in eval mode,
    run ``batch_seconds`` of padded audio at a time."""

    def __init__(
        self, source: EncoderSource, device: str = "cpu", batch_seconds: float = BATCH_SECONDS
    ) -> None:
        import os

        import transformers
        from transformers import AutoFeatureExtractor, AutoModel

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        # the driver resolved the files; a node that does not see its folder reads the same
        # hub revision from its own cache
        local = os.path.isdir(source.path)
        where = source.path if local else source.model
        revision = None if local else source.revision
        self.source, self.device, self.dtype = source, torch.device(device), device_dtype(device)
        self.extractor = AutoFeatureExtractor.from_pretrained(
            where, local_files_only=local, revision=revision
        )
        model = AutoModel.from_pretrained(where, local_files_only=local, revision=revision)
        self.whisper = source.model_type == "whisper"
        self.model = (model.get_encoder() if self.whisper else model).to(self.device, self.dtype)
        self.model.eval()
        self.sample_rate = int(self.extractor.sampling_rate)
        self.budget = int(batch_seconds * self.sample_rate)
        self.clip_wise: ClipWiseConvs | None = None
        self._frames: torch.Tensor | None = None  # (B,) frames of each clip of the batch running
        config = model.config
        if self.whisper:
            convs = self.model.conv1.stride[0] * self.model.conv2.stride[0]
            self.hop = self.extractor.hop_length * convs  # samples per encoder frame
            self.min_samples = int(self.extractor.n_fft)
            self.max_samples: int | None = int(self.extractor.n_samples)
            return
        self.min_samples = receptive_field(config.conv_kernel, config.conv_stride)
        self.max_samples = None
        if getattr(config, "feat_extract_norm", "layer") == "group":
            self.clip_wise = ClipWiseConvs(self.model.feature_extractor)
            self.model.feature_extractor = self.clip_wise
        if source.model_type == "data2vec-audio":
            for layer in self.model.encoder.pos_conv_embed.layers:
                layer.register_forward_hook(self._zero_padded_frames)

    def _zero_padded_frames(self, module: Any, inputs: Any, output: torch.Tensor) -> Any:
        """(B, C, T) output with each clip's frames past its own end set to zero."""
        if self._frames is None:
            return output
        keep = torch.arange(output.shape[-1], device=output.device) < self._frames[:, None]
        return output * keep[:, None, :].to(output.dtype)

    def frames(self, samples: int) -> int:
        """The encoder frames of a clip of ``samples`` samples."""
        if self.whisper:
            return min(self.model.config.max_source_positions, math.ceil(samples / self.hop))
        return int(self.model._get_feat_extract_output_lengths(samples))

    def prepare(self, signal: np.ndarray) -> np.ndarray:
        """One clip (mono float at ``sample_rate``) -> the encoder's input for it alone: the
        waveform as its feature extractor leaves it, or Whisper's (mels, frames) window."""
        n = len(signal)
        seconds = n / self.sample_rate
        if n < self.min_samples:
            raise EncoderInputError(
                f"clip of {n} samples ({seconds:.3f} s) shorter than the receptive field of "
                f"{self.source.name} ({self.min_samples} samples)"
            )
        if self.max_samples is not None and n > self.max_samples:
            raise EncoderInputError(
                f"clip of {seconds:.1f} s longer than {self.source.name}'s "
                f"{self.max_samples / self.sample_rate:.0f} s window"
            )
        key = "input_features" if self.whisper else "input_values"
        out = self.extractor(signal, sampling_rate=self.sample_rate, return_tensors="np")
        return np.asarray(out[key][0], dtype=np.float32)

    def embed(self, inputs: list[np.ndarray], samples: list[int]) -> np.ndarray:
        """Prepared clips and their lengths in samples -> (B, layers + 1, dim) float32 means
        over each clip's frames, in forward passes of at most ``batch_seconds`` of padded
        audio (clips in the order given: sorted by length, a pass pads little)."""
        width = [self.max_samples or n for n in samples]  # what a clip takes in its pass
        out, start = [], 0
        while start < len(inputs):
            stop = start + 1
            while (
                stop < len(inputs)
                and (stop + 1 - start) * max(width[start : stop + 1]) <= self.budget
            ):
                stop += 1
            out.append(self._forward(inputs[start:stop], samples[start:stop]))
            start = stop
        return np.concatenate(out)

    def _forward(self, inputs: list[np.ndarray], samples: list[int]) -> np.ndarray:
        frames = torch.tensor([self.frames(n) for n in samples], device=self.device)
        if self.whisper:
            batch = torch.from_numpy(np.stack(inputs))  # (B, mels, window frames)
            kwargs: dict[str, Any] = {"input_features": batch.to(self.device, self.dtype)}
        else:
            batch = nn.utils.rnn.pad_sequence([torch.from_numpy(x) for x in inputs], True)
            mask = torch.arange(batch.shape[1])[None, :] < torch.tensor(samples)[:, None]
            kwargs = {
                "input_values": batch.to(self.device, self.dtype),  # (B, longest)
                "attention_mask": mask.long().to(self.device),
            }
        if self.clip_wise is not None:
            self.clip_wise.samples = samples
        self._frames = frames
        try:
            with torch.inference_mode():
                hidden = self.model(**kwargs, output_hidden_states=True).hidden_states
        finally:
            self._frames = None
            if self.clip_wise is not None:
                self.clip_wise.samples = None
        keep = (torch.arange(hidden[0].shape[1], device=self.device) < frames[:, None]).float()
        means = [torch.einsum("btd,bt->bd", h.float(), keep) for h in hidden]  # layers x (B, D)
        return (torch.stack(means, dim=1) / frames[:, None, None]).cpu().numpy()


def receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Samples under one frame of a stack of strided convolutions (wav2vec 2.0's: 400).

    >>> receptive_field((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))
    400
    """
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides, strict=True):
        field += (kernel - 1) * jump
        jump *= stride
    return field


class ClipWiseConvs(nn.Module):
    """A convolutional feature encoder run on each clip's own samples, its (B, C, T) frames
    then padded with zeros to the batch's longest (its group norm over time sees no padding)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.samples: list[int] | None = None  # each clip's length, for the batch running

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        if self.samples is None:
            return self.inner(input_values)
        outs = [self.inner(input_values[i : i + 1, :n]) for i, n in enumerate(self.samples)]
        longest = max(o.shape[-1] for o in outs)
        return torch.cat([nn.functional.pad(o, (0, longest - o.shape[-1])) for o in outs])
