"""Reading audio files into mono float signals at the feature rate; one-line reasons on failure."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from math import gcd

import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


class BadAudioError(ValueError):
    """The file cannot be used; the message is a one-line reason."""


def check_wav_container(data: bytes) -> None:
    """Refuse RIFF/WAVE bytes whose data chunk is cut short (libsndfile reads those silently)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return  # not a RIFF WAV: leave the verdict to the decoder
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk_id == b"data":
            available = len(data) - pos - 8
            if size != 0xFFFFFFFF and available < size:
                raise BadAudioError(
                    f"truncated WAV: header declares {size} audio bytes, file holds {available}"
                )
            return
        pos += 8 + size + (size & 1)
    raise BadAudioError("truncated WAV: no data chunk before end of file")


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Bytes of a WAV/FLAC/OGG/AIFF file -> (samples (n, channels) float32, sample rate).

    The container is told by its header, not the file's name: an AIFF file named .wav (two
    in TESS's public copy) is read as the AIFF it is."""
    if len(data) == 0:
        raise BadAudioError("empty file (0 bytes)")
    check_wav_container(data)
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BadAudioError(f"not readable as audio ({reason})") from err
    if samples.shape[0] == 0:
        raise BadAudioError("no audio samples in file")
    if not np.isfinite(samples).all():
        raise BadAudioError("audio holds NaN or infinite samples")
    return samples, rate


def to_mono_at_rate(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Mix channels to mono and resample (polyphase) to target_rate; float32 (n,)."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if rate != target_rate:
        from scipy.signal import resample_poly  # imported on first use: slow to import

        g = gcd(rate, target_rate)
        mono = resample_poly(mono, target_rate // g, rate // g)
    return np.asarray(mono, dtype=np.float32)


def perturb_speed(signal: np.ndarray, speed: float) -> np.ndarray:
    """The signal played ``speed`` times as fast, tempo and pitch together (Kaldi's speed
    perturbation, sox's ``speed``): resampled to ``len / speed`` samples."""
    from scipy.signal import resample_poly

    ratio = Fraction(speed).limit_denominator(100)
    return resample_poly(signal, ratio.denominator, ratio.numerator).astype(np.float32)
