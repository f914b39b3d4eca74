"""The feature configuration: every knob that changes what a spectrogram row contains."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

WINDOWS = ("hamming", "hann", "rectangular")
FREQUENCY_SCALES = ("linear", "mel")
INTERPOLATIONS = {"linear": 1, "area": 3, "cubic": 2, "nearest": 0}  # cv2.INTER_* values


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes a (image_size x image_size) log-power image, paper eq. (1)-(3)."""

    sample_rate: int = 16000  # Hz; other rates are resampled to this (CASIA is 16 kHz)
    frame_ms: float = 25.0  # analysis frame length: 400 samples at 16 kHz
    hop_ms: float = 10.0  # frame shift: 160 samples at 16 kHz
    n_fft: int = 512  # FFT points (frames are zero-padded to this); 257 frequency bins
    window: str = "hamming"  # the paper's window; "hann" and "rectangular" for ablations
    log_floor: float = 1e-10  # power floor before the log, so digital silence stays finite
    image_size: int = 128  # cv2.resize target (square): 128 in the paper, smaller in the demo
    interpolation: str = "linear"  # cv2.resize interpolation; cv2's default, as the paper used
    # Added later; saved only when not at their default, so older FEATURES keep their config
    # and fingerprint.
    frequency_scale: str = "linear"  # "mel": the power summed by a mel filterbank first
    # mel bands (frequency_scale "mel" only); at a 512-point FFT the narrowest low bands
    # fall between two bins: with 128 bands one stays empty (a constant row), with 64 none
    n_mels: int = 128
    speeds: tuple[float, ...] = ()  # speed perturbation: one extra row per factor, e.g. 0.9

    def __post_init__(self) -> None:
        # sorted and once each, so one set of factors is one configuration
        object.__setattr__(self, "speeds", tuple(sorted({float(s) for s in self.speeds})))
        if self.frequency_scale == "linear" and self.n_mels != _DEFAULTS["n_mels"]:
            raise ValueError("n_mels applies to frequency_scale 'mel' only")
        if self.frequency_scale not in FREQUENCY_SCALES:
            raise ValueError(
                f"frequency_scale must be one of {FREQUENCY_SCALES}, got {self.frequency_scale!r}"
            )
        if self.n_mels < 8:
            raise ValueError(f"n_mels must be >= 8, got {self.n_mels}")
        if any(not 0.5 <= s <= 2 or s == 1 for s in self.speeds):
            raise ValueError(f"speeds must lie in [0.5, 2], none of them 1, got {self.speeds}")
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS}, got {self.window!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {tuple(INTERPOLATIONS)}, got {self.interpolation!r}"
            )
        if self.frame_length > self.n_fft:
            raise ValueError(
                f"frame of {self.frame_length} samples does not fit an n_fft of {self.n_fft}"
            )
        if self.hop_length < 1 or self.image_size < 8 or self.log_floor <= 0:
            raise ValueError("hop, image_size (>= 8) and log_floor must be positive")

    @property
    def frame_length(self) -> int:
        return round(self.sample_rate * self.frame_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in LATER_KEYS:
            if data[name] == _DEFAULTS[name]:
                del data[name]
        if "speeds" in data:
            data["speeds"] = list(data["speeds"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown feature config keys: {sorted(unknown)}")
        return cls(**data)

    @property
    def per_clip(self) -> FeatureConfig:
        """The settings that make one clip's image: these without the training-time extras
        (``speeds`` adds rows, it changes no row of a recording)."""
        return dataclasses.replace(self, speeds=())

    def fingerprint(self) -> str:
        """A short stable hash of the configuration."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]


LATER_KEYS = ("frequency_scale", "n_mels", "speeds")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(FeatureConfig)}
