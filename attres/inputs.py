"""What a network sees besides the spectrogram itself: delta channels, per-speaker scaling,
and the standardization by the training rows' mean and std (``Standardizer``). numpy only:
the Ray Data tasks of a streamed trial scale rows with it without importing torch.

The deltas and the per-speaker scaling act on (N, 1, H, W) log-power images, rows =
frequency, columns = time. Neither reads a label, so a held-out speaker's own recordings may
be used to scale that speaker (what speaker-independent evaluation allows: no emotion is known).

>>> x = np.random.default_rng(0).normal(size=(4, 1, 8, 16)).astype(np.float32)
>>> add_deltas(x, 2).shape
(4, 3, 8, 16)
>>> z = speaker_standardize(x, np.array(["a", "a", "b", "b"]))
>>> bool(abs(z[:2, 0, 3].mean()) < 1e-5), bool(abs(z[:2, 0, 3].std() - 1) < 1e-3)
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attres.sums import Fetch, channel_statistics

NORMALIZATIONS = ("global", "speaker")


@dataclass(frozen=True)
class InputSettings:
    """How images become a network's input; the defaults are the paper's single channel."""

    normalize: str = "global"  # "speaker": each speaker's rows scaled by their own statistics
    deltas: int = 0  # extra channels: 1 adds the time derivative, 2 also the second one

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.deltas not in (0, 1, 2):
            raise ValueError(f"deltas must be 0, 1 or 2, got {self.deltas}")

    @property
    def channels(self) -> int:
        return 1 + self.deltas

    def apply_batch(
        self, images: np.ndarray, voices: np.ndarray, scaling: VoiceScaling | None
    ) -> np.ndarray:
        """``apply`` to one batch of a stream: each row scaled by its voice's statistics,
        gathered beforehand over all of the voice's rows (``VoiceSums``)."""
        x = add_deltas(images, self.deltas) if self.deltas else images
        if self.normalize == "speaker":
            if scaling is None:
                raise ValueError("per-speaker scaling of a batch needs the voices' statistics")
            x = scaling(x, voices)
        return np.ascontiguousarray(x, dtype=np.float32)

    def apply(self, images: np.ndarray, speakers: np.ndarray) -> np.ndarray:
        """(N, 1, H, W) images of the given speakers -> (N, channels, H, W) float32: the
        images themselves, not a copy, when there is nothing to add or scale."""
        x = add_deltas(images, self.deltas) if self.deltas else images
        if self.normalize == "speaker":
            x = speaker_standardize(x, speakers)
        return np.ascontiguousarray(x, dtype=np.float32)


def delta(x: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression delta over the last axis, with HTK's and Kaldi's formula
    d_t = sum_n n (x_{t+n} - x_{t-n}) / (2 sum_n n^2), edges repeated. On the resized image a
    column spans one to a few analysis frames, depending on the clip's length."""
    pad = [(0, 0)] * (x.ndim - 1) + [(width, width)]
    padded = np.pad(x, pad, mode="edge")
    length = x.shape[-1]
    out = np.zeros_like(x, dtype=np.float32)
    for n in range(1, width + 1):
        ahead = padded[..., width + n : width + n + length]
        behind = padded[..., width - n : width - n + length]
        out += n * (ahead - behind)
    return out / (2 * sum(n * n for n in range(1, width + 1)))


def add_deltas(images: np.ndarray, order: int) -> np.ndarray:
    """(N, 1, H, W) -> (N, 1 + order, H, W): the image, its delta, the delta of the delta."""
    channels = [images]
    for _ in range(order):
        channels.append(delta(channels[-1]))
    return np.concatenate(channels, axis=1)


def speaker_standardize(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Each speaker's (N_s, C, H, W) images scaled to zero mean and unit variance per channel
    and frequency row, with statistics over that speaker's utterances and frames."""
    out = np.empty_like(x, dtype=np.float32)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        mine = x[rows]
        mean, std = voice_statistics(mine)
        out[rows] = (mine - mean) / std
    return out


def voice_statistics(mine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(1, C, H, 1) mean and std of one speaker's (N_s, C, H, W) images."""
    return mine.mean(axis=(0, 3), keepdims=True), mine.std(axis=(0, 3), keepdims=True) + 1e-5


def voice_scaling(
    values: np.ndarray, rows: np.ndarray, voices: np.ndarray, settings: InputSettings
) -> VoiceScaling | None:
    """``speaker_standardize``'s statistics of ``values[rows]`` (delta channels added), bit
    for bit, holding one voice's rows at a time; None where the settings scale no voice."""
    if settings.normalize != "speaker":
        return None
    stats = {}
    for voice in np.unique(voices):
        mine = values[rows[voices == voice]]
        mean, std = voice_statistics(add_deltas(mine, settings.deltas) if settings.deltas else mine)
        stats[str(voice)] = (mean[0, :, :, 0], std[0, :, :, 0])
    return VoiceScaling(stats)


@dataclass(frozen=True)
class Part:
    """Some rows of one read-only array (a grid's copy in the object store) and their voices'
    statistics."""

    values: np.ndarray  # (N_all, 1, H, W) images, or (N_all, D, 1, 1) vectors, read-only
    rows: np.ndarray  # (n,) indices into values
    voices: np.ndarray  # (n,) the voice of each row
    scaling: VoiceScaling | None  # the voices' statistics; None: no per-voice scaling


@dataclass(frozen=True)
class Rows:
    """One side of a split (training or evaluated rows) as a network's (n, C, H, W) float32
    inputs, made on request from read-only arrays: gathered, delta channels added and each
    row scaled by its voice, as ``InputSettings.apply`` makes the whole side, bit for bit.
    A trial holds the rows of a batch, not a scaled copy of its split.

    >>> x = np.random.default_rng(0).normal(size=(5, 1, 4, 6)).astype(np.float32)
    >>> who, settings = np.array(list("aabba")), InputSettings("speaker", deltas=1)
    >>> rows = Rows((Part(x, np.arange(5), who, voice_scaling(x, np.arange(5), who, settings)),),
    ...             settings)
    >>> bool((np.asarray(rows) == settings.apply(x, who)).all()), rows.shape
    (True, (5, 2, 4, 6))
    """

    parts: tuple[Part, ...]
    settings: InputSettings

    def __len__(self) -> int:
        return sum(len(part.rows) for part in self.parts)

    @property
    def shape(self) -> tuple[int, ...]:
        n, channels, *rest = self.parts[0].values.shape
        return (len(self), channels * self.settings.channels, *rest)

    def take(self, idx: np.ndarray) -> np.ndarray:
        """The inputs of rows ``idx`` (positions in this side), a fresh array."""
        idx = np.asarray(idx, dtype=np.intp)
        if len(self.parts) == 1:
            return self._made(self.parts[0], idx)
        out = np.empty((len(idx), *self.shape[1:]), dtype=np.float32)
        start = 0
        for part in self.parts:
            mine = (idx >= start) & (idx < start + len(part.rows))
            if mine.any():
                out[mine] = self._made(part, idx[mine] - start)
            start += len(part.rows)
        return out

    def between(self, start: int, stop: int) -> np.ndarray:
        """The inputs of rows start..stop-1."""
        return self.take(np.arange(start, stop))

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        """All of the side at once (a scikit-learn model's training matrix)."""
        return self.take(np.arange(len(self))).astype(dtype or np.float32, copy=False)

    def _made(self, part: Part, idx: np.ndarray) -> np.ndarray:
        images = part.values[part.rows[idx]]  # a fresh array: the store's copy stays read-only
        return self.settings.apply_batch(images, part.voices[idx], part.scaling)


@dataclass
class VoiceSums:
    """Per voice, the count, sum and sum of squares of (C, H) images over utterances and
    frames (float64), added batch by batch: ``speaker_standardize``'s statistics for a
    stream, which never holds one speaker's rows at once.

    >>> x = np.random.default_rng(0).normal(size=(6, 1, 4, 5)).astype(np.float32)
    >>> who = np.array(["a", "b", "a", "a", "b", "b"])
    >>> sums = VoiceSums()
    >>> sums.add(x[:4], who[:4]); sums.add(x[4:], who[4:])
    >>> bool(np.allclose(sums.scaling()(x, who), speaker_standardize(x, who), atol=1e-4))
    True
    """

    totals: dict[str, np.ndarray] = field(default_factory=dict)  # voice -> (3, C, H)

    def add(self, x: np.ndarray, voices: np.ndarray) -> None:
        for voice in np.unique(voices):
            mine = x[voices == voice].astype(np.float64)  # (N_v, C, H, W)
            part = np.stack([
                np.full(mine.shape[1:3], mine.shape[0] * mine.shape[3], dtype=np.float64),
                mine.sum(axis=(0, 3)),
                np.square(mine).sum(axis=(0, 3)),
            ])  # fmt: skip
            self.merge({str(voice): part})

    def merge(self, totals: dict[str, np.ndarray]) -> None:
        for voice, part in totals.items():
            self.totals[voice] = self.totals[voice] + part if voice in self.totals else part

    def scaling(self) -> VoiceScaling:
        stats = {}
        for voice, (count, total, squares) in self.totals.items():
            mean = total / count
            std = np.sqrt(np.maximum(squares / count - mean**2, 0.0)) + 1e-5
            stats[voice] = (mean.astype(np.float32), std.astype(np.float32))
        return VoiceScaling(stats)


@dataclass(frozen=True)
class VoiceScaling:
    """Each voice's (C, H) mean and std: scales a batch's rows by their voice's."""

    stats: dict[str, tuple[np.ndarray, np.ndarray]]

    def __call__(self, x: np.ndarray, voices: np.ndarray) -> np.ndarray:
        out = np.empty_like(x, dtype=np.float32)
        for voice in np.unique(voices):
            rows = voices == voice
            mean, std = self.stats[str(voice)]
            out[rows] = (x[rows] - mean[None, :, :, None]) / std[None, :, :, None]
        return out


@dataclass(frozen=True)
class Standardizer:
    """Mean and std of the training spectrograms (fitted on training data only).

    One scalar pair for a single-channel input (the paper's), one pair per channel when
    there are delta channels: their scale is far from the log power's.

    >>> x = np.stack([np.full((2, 4, 4), 5.0), np.full((2, 4, 4), 0.1)], axis=1)
    >>> x[0, 1, 0, 0] = 0.3
    >>> scale = Standardizer.fit(x)
    >>> len(scale.mean), bool(abs(scale(x)[:, 1].mean()) < 1e-6)
    (2, True)
    """

    mean: float | tuple[float, ...]
    std: float | tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        """``x``: (N, C, H, W)."""
        if x.shape[1] == 1:
            return cls(float(x.mean()), float(x.std() + 1e-6))
        channels = [x[:, c] for c in range(x.shape[1])]
        return cls(
            tuple(float(c.mean()) for c in channels), tuple(float(c.std() + 1e-6) for c in channels)
        )

    @classmethod
    def fit_rows(cls, fetch: Fetch, n: int, channels: int) -> Standardizer:
        """``fit`` of the (n, C, H, W) rows ``fetch(start, stop)`` makes, never all held at
        once: the same figures, bit for bit (``attres.sums``)."""
        means, stds = channel_statistics(fetch, n, channels)
        if channels == 1:
            return cls(float(means[0]), float(stds[0] + 1e-6))
        return cls(tuple(float(m) for m in means), tuple(float(s + 1e-6) for s in stds))

    @classmethod
    def from_sums(cls, count: np.ndarray, total: np.ndarray, squares: np.ndarray) -> Standardizer:
        """From per-channel (C,) counts, sums and sums of squares of the training images
        (``channel_sums`` of each batch, added): ``fit`` for a stream."""
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0)) + 1e-6
        if len(mean) == 1:
            return cls(float(mean[0]), float(std[0]))
        return cls(tuple(float(m) for m in mean), tuple(float(s) for s in std))

    def apply_in_place(self, x: np.ndarray) -> np.ndarray:
        """``self(x)`` written into ``x`` itself: the same values, no second copy of a split
        (a copy all the same where ``x`` is not a writeable float32 array)."""
        if x.dtype != np.float32 or not x.flags.writeable:
            return self(x)
        if isinstance(self.mean, float) and isinstance(self.std, float):
            mean, std = self.mean, self.std
        else:
            mean = np.asarray(self.mean, dtype=np.float32).reshape(-1, 1, 1)
            std = np.asarray(self.std, dtype=np.float32).reshape(-1, 1, 1)
        np.subtract(x, mean, out=x)
        np.divide(x, std, out=x)
        return x

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if isinstance(self.mean, float) and isinstance(self.std, float):
            return ((x - self.mean) / self.std).astype(np.float32)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(-1, 1, 1)  # (C, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(-1, 1, 1)
        if len(mean) != x.shape[-3]:
            raise ValueError(f"standardizer has {len(mean)} channels, the input {x.shape[-3]}")
        return ((x - mean) / std).astype(np.float32)


def channel_sums(x: np.ndarray) -> np.ndarray:
    """(3, C) float64 count, sum and sum of squares per channel of (N, C, H, W) images."""
    x = x.astype(np.float64)
    count = np.full(x.shape[1], x.shape[0] * x.shape[2] * x.shape[3], dtype=np.float64)
    return np.stack([count, x.sum(axis=(0, 2, 3)), np.square(x).sum(axis=(0, 2, 3))])
