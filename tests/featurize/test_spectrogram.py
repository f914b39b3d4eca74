"""The spectrogram against a direct transcription of the paper's eq. (1)-(3), and audio decoding."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import soundfile as sf

from featurize.audio import BadAudioError, decode_audio, to_mono_at_rate
from featurize.config import FeatureConfig
from featurize.spectrogram import TooShortError, log_power_spectrogram, spectrogram_image


def direct_log_power(x: np.ndarray, frame: int, hop: int, n_fft: int, floor: float) -> np.ndarray:
    """Eq. (1)-(3) written out: X(n,k) = sum_m w(m) x(n*hop+m) e^{-j 2 pi k m / N}, log |X|^2."""
    m = np.arange(frame)
    w = 0.54 - 0.46 * np.cos(2 * np.pi * m / (frame - 1))  # Hamming, eq. (1)
    n_frames = 1 + (len(x) - frame) // hop
    k = np.arange(n_fft // 2 + 1)
    basis = np.exp(-2j * np.pi * np.outer(k, m) / n_fft)  # (K, M), eq. (2)
    out = np.empty((len(k), n_frames))
    for n in range(n_frames):
        X = basis @ (w * x[n * hop : n * hop + frame])
        out[:, n] = np.log(np.maximum(np.abs(X) ** 2, floor))  # eq. (3)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_power_matches_direct_transcription(seed):
    rng = np.random.default_rng(seed)
    config = FeatureConfig()
    x = rng.standard_normal(int(rng.integers(400, 4000))).astype(np.float32)
    got = log_power_spectrogram(x, config)
    want = direct_log_power(x.astype(np.float64), 400, 160, 512, config.log_floor)
    assert got.shape == want.shape == (257, 1 + (len(x) - 400) // 160)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_image_is_cv2_resize_of_spectrogram():
    x = np.random.default_rng(3).standard_normal(16000).astype(np.float32)
    config = FeatureConfig(image_size=64)
    image = spectrogram_image(x, config)
    assert image.shape == (64, 64) and image.dtype == np.float32
    want = cv2.resize(log_power_spectrogram(x, config), (64, 64))
    np.testing.assert_allclose(image, want, rtol=1e-6)


def test_silence_stays_finite():
    image = spectrogram_image(np.zeros(8000, dtype=np.float32), FeatureConfig(image_size=32))
    assert np.isfinite(image).all()
    assert image.max() == pytest.approx(np.log(1e-10))


def test_clip_shorter_than_one_frame_is_refused():
    with pytest.raises(TooShortError, match="shorter than one analysis frame"):
        log_power_spectrogram(np.zeros(399, dtype=np.float32), FeatureConfig())


def wav_bytes(signal: np.ndarray, rate: int, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, signal, rate, subtype=subtype, format="WAV")
    return buf.getvalue()


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_every_pcm_width_and_float_decodes_to_the_same_signal(subtype):
    t = np.arange(8000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    samples, rate = decode_audio(wav_bytes(tone, 16000, subtype))
    assert rate == 16000 and samples.shape == (8000, 1)
    tolerance = 1e-2 if subtype == "PCM_U8" else 1e-4
    np.testing.assert_allclose(samples[:, 0], tone, atol=tolerance)


def test_stereo_is_mixed_and_other_rates_resampled():
    t = np.arange(44100) / 44100
    left = np.sin(2 * np.pi * 300 * t)
    stereo = np.stack([left, np.zeros_like(left)], axis=1).astype(np.float32)
    samples, rate = decode_audio(wav_bytes(stereo, 44100, "PCM_16"))
    mono = to_mono_at_rate(samples, rate, 16000)
    assert mono.shape == (16000,)
    want = 0.5 * np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)
    np.testing.assert_allclose(mono[100:-100], want[100:-100], atol=2e-3)


def test_bad_bytes_get_one_line_reasons():
    good = wav_bytes(np.zeros(4000, dtype=np.float32), 16000, "PCM_16")
    cases = {
        b"": "empty file",
        b"this is not audio at all, just text" * 10: "not readable as audio",
        good[: len(good) // 2]: "truncated WAV",
    }
    for data, reason in cases.items():
        with pytest.raises(BadAudioError, match=reason) as err:
            decode_audio(data)
        assert "\n" not in str(err.value)
