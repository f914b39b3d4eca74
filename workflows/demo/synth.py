"""Synthetic emotional speech in the CASIA layout, for demos, tests and benchmarks.

No corpus can be downloaded at run time, so this module makes one. A source-filter
synthesizer (Rosenberg glottal pulses with jitter and shimmer, aspiration noise, a cascade of
formant resonators per phone, fricative and stop-burst noise) reads a fixed set of
pseudo-sentences in six emotions. The emotions differ in the cues real speech uses (pitch level,
range and contour, energy, speaking rate, spectral tilt, jitter/shimmer, breathiness), each drawn
per utterance from overlapping distributions so that no single cue separates them.

Layout written by `synthesize_corpus`::

    <root>/<speaker>/<emotion>/<utt_id>.wav   16-bit PCM mono, e.g. spk01/angry/s0201.wav
    <root>/manifest.csv                       path, speaker, emotion, utt_id, duration_s
    <root>/synth_config.json                  the SynthConfig the corpus was made with
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
from scipy import signal
from scipy.ndimage import uniform_filter1d

from featurize.location import TMP_PREFIX, Location

EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")
MANIFEST_NAME = "manifest.csv"
CONFIG_NAME = "synth_config.json"
MANIFEST_COLUMNS = ("path", "speaker", "emotion", "utt_id", "duration_s")


@dataclass(frozen=True)
class SynthConfig:
    """Which corpus to synthesize; the same config always gives byte-identical files."""

    speakers: int = 4  # CASIA's public release has 4 speakers; voices alternate low and high
    utterances_per_emotion: int = 20  # sentences; every speaker reads each in all six emotions
    min_duration_s: float = 1.0  # shorter readings are padded with silence up to this
    max_duration_s: float = 2.5  # longer readings are spoken faster down to this
    sample_rate: int = 16000  # Hz, CASIA's rate
    seed: int = 0  # corpus seed; speakers, sentences and utterances derive their own streams
    cue_spread: float = 1.0  # scales per-utterance cue variation; 0 = every utterance at its mean

    def __post_init__(self) -> None:
        if self.speakers < 1 or self.utterances_per_emotion < 1:
            raise ValueError("speakers and utterances_per_emotion must be >= 1")
        if not 0.5 <= self.min_duration_s <= self.max_duration_s:
            raise ValueError("need 0.5 <= min_duration_s <= max_duration_s")
        if self.sample_rate < 8000:
            raise ValueError("sample_rate must be >= 8000 Hz")
        if self.seed < 0 or self.cue_spread < 0:
            raise ValueError("seed and cue_spread must be >= 0")


@dataclass(frozen=True)
class EmotionCues:
    """Prosodic and voice-quality settings of one utterance (or an emotion's mean)."""

    f0_shift_st: float  # mean pitch relative to the speaker's neutral level, semitones
    f0_range: float  # multiplier on pitch-accent and final-movement sizes
    declination_st: float  # pitch change from the first to the last syllable, semitones
    final_st: float  # pitch movement over the last syllable (> 0 rises), semitones
    accent_width: float  # pitch-accent width relative to the vowel (< 1 = abrupt accents)
    rate: float  # speaking rate relative to neutral
    level_db: float  # RMS level relative to neutral, dB
    tilt_hz: float  # corner of the source's -6 dB/oct tilt; higher = more vocal effort
    jitter: float  # cycle-to-cycle relative period perturbation (sd)
    shimmer_db: float  # cycle-to-cycle amplitude perturbation (sd), dB
    breathiness: float  # aspiration noise relative to the voiced source
    formant_shift: float  # relative formant shift (smiling, wide jaw opening)
    tremor_st: float  # depth of a 5-6 Hz pitch tremor, semitones


# Means per emotion after the acoustic profiles reviewed by Juslin & Laukka (2003) and Scherer
# (2003): anger high, flat, loud and tense; fear high, narrow, fast and irregular; joy high and
# wide; sadness low, narrow, slow, soft, breathy and falling; surprise high with a final rise.
# Each utterance draws its cues around these with the given sd, in the cue's unit (additive) or
# on a log scale (multiplicative), so that the emotions overlap on every single cue.
# fmt: off
_ADDITIVE_CUES = {  #  angry   fear  happy neutral   sad  surprise      sd
    "f0_shift_st":    ((  3.0,   5.0,   3.5,   0.0,  -1.5,   4.5),   1.2),
    "declination_st": (( -1.0,  -0.5,  -2.0,  -3.0,  -3.0,   0.0),   1.2),
    "final_st":       (( -2.5,   1.0,  -1.0,  -2.0,  -3.0,   7.0),   2.0),
    "level_db":       ((  6.0,   0.0,   3.0,   0.0,  -6.0,   3.0),   2.0),
    "formant_shift":  (( 0.04,  0.02,   0.1,   0.0, -0.06,  0.03),   0.01),
}
_MULTIPLICATIVE_CUES = {  # angry fear  happy neutral   sad  surprise      log sd
    "f0_range":       ((  1.0,   0.6,   1.6,   1.0,   0.5,   1.5),   0.25),
    "accent_width":   ((  0.6,   1.0,   1.0,   1.0,   1.3,   1.0),   0.2),
    "rate":           (( 1.12,  1.15,  1.05,   1.0,  0.82,  0.95),   0.08),
    "tilt_hz":        ((3200., 1300., 1900., 1100.,  550., 1800.),   0.2),
    "jitter":         ((0.008, 0.025, 0.008, 0.008, 0.015, 0.008),   0.4),
    "shimmer_db":     ((  0.5,   1.0,   0.5,   0.5,   0.9,   0.5),   0.3),
    "breathiness":    (( 0.03,   0.3,  0.06,  0.06,   0.3,   0.1),   0.3),
    "tremor_st":      ((  0.0,   0.6,   0.0,   0.0,   0.2,   0.0),   0.5),
}
# fmt: on
EMOTION_CUES = {
    emotion: EmotionCues(
        **{name: means[i] for name, (means, _) in (_ADDITIVE_CUES | _MULTIPLICATIVE_CUES).items()}
    )
    for i, emotion in enumerate(EMOTIONS)
}

# Formants F1-F4 (Hz) of an adult male vocal tract (Peterson & Barney 1952 averages).
_VOWELS = {
    "i": (270, 2290, 3010, 3700),
    "e": (530, 1840, 2480, 3500),
    "ae": (660, 1720, 2410, 3500),
    "a": (730, 1090, 2440, 3400),
    "uh": (640, 1190, 2390, 3400),
    "o": (570, 840, 2410, 3300),
    "u": (300, 870, 2240, 3300),
    "er": (490, 1350, 1690, 3300),
}
_BANDWIDTHS = np.array([70.0, 90.0, 150.0, 220.0])  # Hz, F1-F4
# Voiced consonants: formants and amplitude relative to a stressed vowel.
_SONORANTS = {
    "m": ((280, 1000, 2200, 3300), 0.35),
    "n": ((280, 1600, 2500, 3300), 0.4),
    "l": ((360, 1300, 2800, 3400), 0.6),
}
# Noise consonants: pass band (Hz) and level relative to the vowels' RMS (dB).
_FRICATIVES = {"s": (4000, 7500, -10.0), "sh": (2200, 5000, -8.0), "f": (1200, 7000, -20.0)}
_STOPS = {"p": (400, 1800, -4.0), "t": (3000, 6500, -4.0), "k": (1400, 3200, -4.0)}
_NOISE_BANDS = _FRICATIVES | _STOPS
_ONSETS = ("", "m", "n", "l", "s", "sh", "f", "h", "p", "t", "k")
_ONSET_P = (0.2, 0.09, 0.08, 0.08, 0.09, 0.08, 0.08, 0.08, 0.07, 0.08, 0.07)
_CODAS = ("", "n", "s")
_CODA_P = (0.6, 0.3, 0.1)
_SYLLABLES_PER_S = 4.5  # neutral speaking rate
_TABLE = 2048  # samples of the tabulated glottal pulse

# Segment kinds of the phone timeline.
_SIL, _VOICED, _ASP, _FRIC, _BURST = range(5)
# Independent random streams under one corpus seed.
_SPEAKER_STREAM, _SENTENCE_STREAM, _UTTERANCE_STREAM = 1, 2, 3


@dataclass(frozen=True)
class SpeakerProfile:
    """A voice: neutral pitch, vocal-tract length and habits."""

    f0_hz: float  # mean F0 of neutral speech
    formant_scale: float  # > 1 = shorter vocal tract (higher voices), scales all formants
    rate: float  # speaking-rate factor
    level_db: float  # recording-level offset, dB
    tilt: float  # factor on the spectral-tilt corner (vocal effort habit)
    breathiness: float  # factor on aspiration noise


class Phone(NamedTuple):
    """One segment of an utterance's timeline."""

    kind: int  # _SIL, _VOICED, _ASP, _FRIC or _BURST
    duration_s: float
    amplitude: float  # of the voiced source, relative to a stressed vowel
    noise: str  # key of _NOISE_BANDS for fricatives and bursts, else ""
    formant_id: int  # index of the formant set that shapes it (the next vowel's if unvoiced)


@dataclass(frozen=True)
class Syllable:
    """One syllable of a sentence, as read at the neutral rate."""

    onset: str  # "" or a key of _SONORANTS, _FRICATIVES, _STOPS, or "h"
    vowel: str  # key of _VOWELS
    coda: str  # "", "n" or "s"
    stressed: bool  # carries a pitch accent
    duration_s: float  # at the neutral rate
    pause_s: float  # silence after the syllable (phrase break), at the neutral rate


def speaker_name(speaker: int) -> str:
    """Folder name of speaker index `speaker` (0-based): spk01, spk02, ..."""
    return f"spk{speaker + 1:02d}"


def utterance_id(sentence: int) -> str:
    """File stem of sentence index `sentence` (0-based), numbered like CASIA: s0201, s0202, ..."""
    return f"s{sentence + 201:04d}"


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def speaker_profile(speaker: int, seed: int) -> SpeakerProfile:
    """The voice of speaker index `speaker`; consecutive speakers alternate low and high pitch."""
    rng = _rng(seed, _SPEAKER_STREAM, speaker)
    pos = (speaker * 0.6180339887) % 1.0  # golden-ratio spread over the voice range
    return SpeakerProfile(
        f0_hz=95.0 * (230.0 / 95.0) ** pos * math.exp(rng.normal(0.0, 0.04)),
        formant_scale=(1.0 + 0.18 * pos) * math.exp(rng.normal(0.0, 0.02)),
        rate=math.exp(rng.normal(0.0, 0.06)),
        level_db=rng.normal(0.0, 1.5),
        tilt=math.exp(rng.normal(0.0, 0.15)),
        breathiness=math.exp(rng.normal(0.0, 0.3)) * (1.0 + pos),
    )


@lru_cache(maxsize=1024)
def sentence_plan(sentence: int, config: SynthConfig) -> tuple[Syllable, ...]:
    """Syllables of sentence index `sentence`, shared by every speaker and emotion."""
    rng = _rng(config.seed, _SENTENCE_STREAM, sentence)
    lo, hi = config.min_duration_s, config.max_duration_s
    speech_s = rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo)) - 0.25
    n = max(2, round(speech_s * _SYLLABLES_PER_S))
    vowels = list(_VOWELS)
    weights = rng.lognormal(0.0, 0.2, n)
    stressed = rng.random(n) < 0.4
    stressed[rng.integers(n)] = True
    weights *= np.where(stressed, 1.2, 1.0)
    weights[-1] *= 1.3  # phrase-final lengthening
    durations = weights / weights.mean() / _SYLLABLES_PER_S
    pauses = np.where(
        (rng.random(n) < 0.12) & (np.arange(n) >= 2) & (np.arange(n) < n - 2),
        rng.uniform(0.08, 0.2, n),
        0.0,
    )
    onsets = rng.choice(len(_ONSETS), n, p=_ONSET_P)
    codas = rng.choice(len(_CODAS), n, p=_CODA_P)
    return tuple(
        Syllable(
            _ONSETS[onsets[k]],
            vowels[rng.integers(len(vowels))],
            _CODAS[codas[k]],
            bool(stressed[k]),
            float(durations[k]),
            float(pauses[k]),
        )
        for k in range(n)
    )


def sample_cues(emotion: str, rng: np.random.Generator, spread: float = 1.0) -> EmotionCues:
    """One utterance's cues: the emotion's means with per-utterance variation."""
    mean = EMOTION_CUES[emotion]
    values = {}
    for name, (_, sd) in _ADDITIVE_CUES.items():
        values[name] = getattr(mean, name) + spread * sd * rng.standard_normal()
    for name, (_, sd) in _MULTIPLICATIVE_CUES.items():
        values[name] = getattr(mean, name) * math.exp(spread * sd * rng.standard_normal())
    return EmotionCues(**values)


def _resonator_cascades(
    formants: np.ndarray, bandwidths: np.ndarray, sr: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cascades of Klatt resonators (unity gain at DC), one per row of `formants` (G, F).

    Returns gains (G,) and denominators (G, 2F + 1) of single direct-form filters: one
    direct-form call costs a fraction of a second-order-sections call on short segments.
    Formants above 0.45 * sr are left out.
    """
    r = np.exp(-np.pi * bandwidths / sr)
    a1 = np.where(formants < 0.45 * sr, -2.0 * r * np.cos(2.0 * np.pi * formants / sr), 0.0)
    a2 = np.where(formants < 0.45 * sr, r * r, 0.0)
    denominators = np.zeros((len(formants), 2 * formants.shape[1] + 1))
    denominators[:, 0] = 1.0
    for k in range(formants.shape[1]):  # multiply in 1 + a1 z^-1 + a2 z^-2
        prev = denominators[:, : 2 * k + 1].copy()
        denominators[:, 1 : 2 * k + 2] += a1[:, k, None] * prev
        denominators[:, 2 : 2 * k + 3] += a2[:, k, None] * prev
    return np.prod(1.0 + a1 + a2, axis=1), denominators


def _white(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-variance white noise; uniform, which is faster to draw than Gaussian."""
    return (rng.random(n) - 0.5) * math.sqrt(12.0)


@lru_cache(maxsize=256)
def _band_pass(low: float, high: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    high = min(high, 0.45 * sr)
    return signal.butter(2, (min(low, 0.5 * high), high), btype="bandpass", fs=sr)


def _timeline(
    plan: Sequence[Syllable],
    cues: EmotionCues,
    voice: SpeakerProfile,
    rng: np.random.Generator,
) -> tuple[list[Phone], list[np.ndarray], list[tuple[float, float, bool]]]:
    """An utterance's phones, its formant sets (F1-F4, Hz), and each syllable's vowel as
    (start_s, end_s, stressed), at the utterance's speaking rate."""
    rate = cues.rate * voice.rate
    scale = voice.formant_scale * (1.0 + cues.formant_shift)
    formant_sets: list[np.ndarray] = []
    phones: list[Phone] = []
    vowel_spans: list[tuple[float, float, bool]] = []
    for syl in plan:
        d = syl.duration_s / rate
        vowel_id = len(formant_sets)
        vowel_f = np.array(_VOWELS[syl.vowel], float) * rng.lognormal(0.0, 0.03, 4)
        formant_sets.append(vowel_f * scale)
        vowel_amp = (1.0 if syl.stressed else 0.75) * rng.uniform(0.9, 1.1)
        used = 0.0
        if syl.onset in _SONORANTS:
            f, amp = _SONORANTS[syl.onset]
            formant_sets.append(np.array(f, float) * scale)
            phones.append(Phone(_VOICED, 0.3 * d, amp * vowel_amp, "", len(formant_sets) - 1))
            used = 0.3 * d
        elif syl.onset in _FRICATIVES:
            used = float(np.clip(0.35 * d, 0.04, 0.14))
            phones.append(Phone(_FRIC, used, 0.0, syl.onset, vowel_id))
        elif syl.onset == "h":
            used = 0.25 * d
            phones.append(Phone(_ASP, used, 0.0, "", vowel_id))
        elif syl.onset in _STOPS:
            closure, burst, vot = 0.18 * d, 0.012, min(0.12 * d, 0.05)
            phones += [
                Phone(_SIL, closure, 0.0, "", vowel_id),
                Phone(_BURST, burst, 0.0, syl.onset, vowel_id),
                Phone(_ASP, vot, 0.0, "", vowel_id),
            ]
            used = closure + burst + vot
        coda = 0.2 * d if syl.coda else 0.0
        vowel_d = max(d - used - coda, 0.35 * d)
        start = sum(p.duration_s for p in phones)
        phones.append(Phone(_VOICED, vowel_d, vowel_amp, "", vowel_id))
        vowel_spans.append((start, start + vowel_d, syl.stressed))
        if syl.coda == "n":
            formant_sets.append(np.array(_SONORANTS["n"][0], float) * scale)
            phones.append(Phone(_VOICED, coda, 0.4 * vowel_amp, "", len(formant_sets) - 1))
        elif syl.coda == "s":
            phones.append(Phone(_FRIC, coda, 0.0, "s", vowel_id))
        if syl.pause_s > 0:
            phones.append(Phone(_SIL, syl.pause_s / rate, 0.0, "", vowel_id))
    return phones, formant_sets, vowel_spans


def _pitch_contour(
    n_frames: int,
    hop: int,
    sr: int,
    speech: tuple[float, float],
    vowel_spans: list[tuple[float, float, bool]],
    cues: EmotionCues,
    voice: SpeakerProfile,
    rng: np.random.Generator,
) -> np.ndarray:
    """F0 (Hz) every `hop` samples: level, declination, accents, final movement, drift, tremor."""
    t = np.arange(n_frames) * (hop / sr)
    start, end = speech
    progress = np.clip((t - start) / max(end - start, 1e-3), 0.0, 1.0)
    st = cues.f0_shift_st + cues.declination_st * (progress - 0.5)
    spans = np.array(vowel_spans)  # (n_syllables, 3): start_s, end_s, stressed
    length = spans[:, 1] - spans[:, 0]
    centers = spans[:, 0] + 0.7 * length
    widths = np.maximum(0.4 * length * cues.accent_width, 0.015)
    heights = np.where(spans[:, 2] > 0, 2.5, 0.6) * cues.f0_range
    heights = heights * rng.uniform(0.7, 1.3, len(spans))
    bumps = np.exp(-0.5 * ((t[None] - centers[:, None]) / widths[:, None]) ** 2)  # (S, T)
    st = st + heights @ bumps
    final = np.clip((t - spans[-1, 0]) / max(length[-1], 1e-3), 0.0, 1.0)
    st = st + cues.final_st * cues.f0_range * final * final * (3.0 - 2.0 * final)  # smoothstep
    drift = uniform_filter1d(_white(rng, n_frames), 20, mode="nearest")
    st = st + 0.4 * drift / max(float(drift.std()), 1e-6)
    tremor = 2 * np.pi * rng.uniform(5.0, 6.5) * t + rng.uniform(0, 2 * np.pi)
    st = st + cues.tremor_st * np.sin(tremor)
    return np.clip(voice.f0_hz * 2.0 ** (st / 12.0), 55.0, 520.0)


@lru_cache(maxsize=1024)
def _pulse_tables(open_q: float, close_q: float) -> tuple[np.ndarray, np.ndarray]:
    """One Rosenberg pulse, tabulated: glottal flow (0..1) and its derivative."""
    grid = np.linspace(0.0, 1.0, _TABLE + 1)
    opening, closing = grid < open_q, (grid >= open_q) & (grid < open_q + close_q)
    arg_open = np.pi * np.minimum(grid, open_q) / open_q
    arg_close = np.pi * np.clip(grid - open_q, 0.0, close_q) / (2.0 * close_q)
    flow = np.where(opening, 0.5 - 0.5 * np.cos(arg_open), closing * np.cos(arg_close))
    dflow = np.where(
        opening,
        np.pi / (2 * open_q) * np.sin(arg_open),
        closing * (-np.pi / (2 * close_q)) * np.sin(arg_close),
    )
    return flow, dflow


def _glottal_source(
    f0: np.ndarray, hop: int, sr: int, n: int, cues: EmotionCues, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rosenberg flow derivative with jitter and shimmer, and the flow, for n samples.

    Works per glottal cycle: cycle onsets come from the frame-rate F0 (with per-cycle period
    jitter), and each sample looks up its position within its cycle in a pulse table.
    """
    phase = np.concatenate([[0.0], np.cumsum(f0[:-1] * (hop / sr))])  # cycles at frame starts
    onsets = np.interp(np.arange(int(phase[-1]) + 1), phase, np.arange(f0.size) * float(hop))
    periods = np.diff(onsets) * (1.0 + cues.jitter * _white(rng, onsets.size - 1))
    onsets = np.concatenate([[0.0], np.cumsum(np.maximum(periods, 2.0))])
    if onsets[-1] < n:
        onsets = np.append(onsets, float(n))
    onsets = onsets[: np.searchsorted(onsets, n) + 1]  # the last one at or beyond n
    bounds = np.minimum(np.ceil(onsets).astype(np.intp), n)  # first sample of each cycle
    lengths = np.diff(bounds)  # (cycles,)
    periods = np.diff(onsets)
    position = np.arange(n) - np.repeat(onsets[:-1], lengths)  # samples since cycle onset
    index = (position * np.repeat(_TABLE / periods, lengths)).astype(np.intp)
    shimmer = 10.0 ** (cues.shimmer_db * _white(rng, periods.size) / 20.0)
    open_q = round(float(np.clip(0.4 + 0.3 * cues.breathiness, 0.35, 0.6)), 2)
    close_q = round(float(np.clip(0.16 * (1200.0 / cues.tilt_hz) ** 0.3, 0.08, 0.3)), 2)
    flow, dflow = _pulse_tables(open_q, close_q)
    return dflow[index] * np.repeat(shimmer, lengths), flow[index]


def _control_envelope(
    bounds: np.ndarray, values: np.ndarray, decay: float, smooth_s: float, n: int, sr: int
) -> np.ndarray:
    """Per-sample envelope of per-phone levels, built at 1 ms and linearly upsampled.

    Each phone's level falls by `decay` (relative) across the phone; edges are smoothed over
    `smooth_s` seconds.
    """
    step = max(sr // 1000, 1)
    n_ctrl = n // step + 2
    edges = np.minimum(bounds // step, n_ctrl)
    lengths = np.diff(edges)
    position = np.arange(edges[-1] - edges[0]) - np.repeat(edges[:-1] - edges[0], lengths)
    level = np.repeat(values, lengths) * (
        1.0 - decay * position / np.repeat(np.maximum(lengths, 1), lengths)
    )
    ctrl = np.zeros(n_ctrl)
    ctrl[edges[0] : edges[-1]] = level
    ctrl = uniform_filter1d(ctrl, max(round(smooth_s * 1000), 1))
    ramp = np.tile(np.arange(step) / step, n_ctrl - 1)
    return (np.repeat(ctrl[:-1], step) + np.repeat(np.diff(ctrl), step) * ramp)[:n]


def _fit_duration(
    speech_s: float, config: SynthConfig, rng: np.random.Generator
) -> tuple[float, float, int]:
    """Leading silence (s), time scale of the speech and length (samples) in [min, max].

    Short readings are padded with silence, long ones spoken faster.
    """
    lead, trail = rng.uniform(0.06, 0.16), rng.uniform(0.08, 0.2)
    total, squeeze = speech_s + lead + trail, 1.0
    if total > config.max_duration_s:
        squeeze = (config.max_duration_s - lead - trail) / speech_s
    elif total < config.min_duration_s:
        extra = config.min_duration_s - total
        lead, trail = lead + 0.4 * extra, trail + 0.6 * extra
    sr = config.sample_rate
    n = round((speech_s * squeeze + lead + trail) * sr)
    n = min(max(n, math.ceil(config.min_duration_s * sr)), math.floor(config.max_duration_s * sr))
    return lead, squeeze, n


def _vocal_tract(
    source: np.ndarray,
    bounds: np.ndarray,
    formant_ids: np.ndarray,
    formant_sets: list[np.ndarray],
    bandwidths: np.ndarray,
    sr: int,
) -> np.ndarray:
    """Filters the source through one resonator cascade per run of phones sharing formants.

    Neighbouring runs are cross-faded on the excitation side over 20 ms (the fades sum to one),
    and each run's filter rings on for 40 ms after its excitation ends.
    """
    n = source.size
    starts = np.flatnonzero(np.r_[True, formant_ids[1:] != formant_ids[:-1]])
    edges = np.r_[0, bounds[starts[1:]], n]
    fade, tail = int(0.02 * sr), int(0.04 * sr)
    gains, denominators = _resonator_cascades(
        np.array([formant_sets[i] for i in formant_ids[starts]]), bandwidths, sr
    )
    out = np.zeros(n)
    for g in range(len(starts)):
        lo, hi = max(edges[g] - fade // 2, 0), min(edges[g + 1] + fade // 2, n)
        left = edges[g] if g > 0 else -fade  # no fade-in before the first run
        right = edges[g + 1] if g + 1 < len(starts) else n + fade  # nor fade-out after the last
        t = np.arange(lo, hi)
        window = np.clip((t - left) / fade + 0.5, 0, 1) - np.clip((t - right) / fade + 0.5, 0, 1)
        end = min(hi + tail, n)
        excitation = np.zeros(end - lo)
        excitation[: hi - lo] = source[lo:hi] * window
        out[lo:end] += signal.lfilter(gains[g : g + 1], denominators[g], excitation)
    return out


def _add_noise_consonants(
    out: np.ndarray,
    phones: Sequence[Phone],
    bounds: np.ndarray,
    vowel_rms: float,
    effort_db: float,
    formant_scale: float,
    sr: int,
    rng: np.random.Generator,
) -> None:
    """Adds band-passed noise for each fricative (with 8 ms ramps) and stop burst (decaying)."""
    ramp = 0.008 * sr
    for k, phone in enumerate(phones):
        lo, hi = bounds[k], bounds[k + 1]
        if phone.kind not in (_FRIC, _BURST) or hi - lo < 4:
            continue
        low, high, rel_db = _NOISE_BANDS[phone.noise]
        b, a = _band_pass(low * formant_scale, high * formant_scale, sr)
        band = signal.lfilter(b, a, _white(rng, hi - lo))
        if phone.kind == _BURST:
            env = np.exp(-np.arange(hi - lo) / (0.004 * sr))
        else:
            env = np.minimum(
                np.minimum(np.arange(hi - lo) + 1, np.arange(hi - lo, 0, -1)) / ramp, 1
            )
        level = vowel_rms * 10.0 ** ((rel_db + effort_db + rng.normal(0.0, 2.0)) / 20.0)
        out[lo:hi] += band * (env * level / max(float(band.std()), 1e-9))


def synthesize_utterance(
    speaker: int, emotion: str, sentence: int, config: SynthConfig
) -> np.ndarray:
    """One utterance as float32 mono in [-1, 1], a pure function of its arguments.

    Speaker `speaker` (0-based) reads sentence `sentence` (0-based) in `emotion`.

    >>> synthesize_utterance(0, "sad", 0, SynthConfig()).dtype
    dtype('float32')
    """
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {EMOTIONS}")
    sr = config.sample_rate
    rng = _rng(config.seed, _UTTERANCE_STREAM, speaker, EMOTIONS.index(emotion), sentence)
    voice = speaker_profile(speaker, config.seed)
    cues = sample_cues(emotion, rng, config.cue_spread)
    plan = sentence_plan(sentence, config)
    phones, formant_sets, vowel_spans = _timeline(plan, cues, voice, rng)
    kinds = np.array([p.kind for p in phones])
    durations = np.array([p.duration_s for p in phones])
    formant_ids = np.array([p.formant_id for p in phones])
    speech_s = float(durations.sum())
    lead, squeeze, n = _fit_duration(speech_s, config, rng)
    bounds = np.round((lead + np.r_[0.0, np.cumsum(durations)] * squeeze) * sr)
    bounds = np.clip(bounds.astype(np.intp), 0, n)  # phone k spans bounds[k]:bounds[k + 1]
    vowel_spans = [(lead + a * squeeze, lead + b * squeeze, s) for a, b, s in vowel_spans]

    # Glottal source: tilted pulses plus pulsed aspiration noise for breathy voice and /h/.
    amplitudes = np.array([p.amplitude for p in phones])
    voice_env = _control_envelope(bounds, amplitudes, 0.25, 0.02, n, sr)
    asp_env = _control_envelope(bounds, (kinds == _ASP) * 0.6, 0.0, 0.008, n, sr)
    hop = sr // 200  # 5 ms pitch frames
    speech = (lead, lead + speech_s * squeeze)
    n_frames = n // hop + 2 + math.ceil(0.05 * sr / hop)
    f0 = _pitch_contour(n_frames, hop, sr, speech, vowel_spans, cues, voice, rng)
    dflow, flow = _glottal_source(f0, hop, sr, n, cues, rng)
    pole = math.exp(-2.0 * math.pi * cues.tilt_hz * voice.tilt / sr)
    pulses = signal.lfilter([1.0 - pole], [1.0, -pole], dflow * voice_env)
    voiced = voice_env > 0.3
    src_rms = float(np.sqrt(np.mean(pulses[voiced] ** 2))) if voiced.any() else 1.0
    noise = _white(rng, n + 1)
    noise = noise[1:] - 0.8 * noise[:-1]  # aspiration is brighter than the voice
    breath = cues.breathiness * voice.breathiness
    source = pulses + src_rms * noise * (breath * (0.3 + 0.7 * flow) * voice_env + asp_env)

    # Vocal tract, wider bandwidths for breathy voices (glottal losses).
    widen = 1.0 + np.array([1.5, 0.8, 0.3, 0.0]) * min(breath, 1.0)
    out = _vocal_tract(source, bounds, formant_ids, formant_sets, _BANDWIDTHS * widen, sr)

    # Fricatives and stop bursts, levelled against the vowels; tense voices articulate harder.
    vowel_rms = float(np.sqrt(np.mean(out[voiced] ** 2))) if voiced.any() else 1e-3
    effort_db = 4.0 * math.log2(cues.tilt_hz / 1200.0)
    _add_noise_consonants(out, phones, bounds, vowel_rms, effort_db, voice.formant_scale, sr, rng)

    # Level: emotion and speaker loudness with per-utterance gain, a room-noise floor, no clipping.
    level_db = -24.0 + cues.level_db + voice.level_db
    out *= 10.0 ** (level_db / 20.0) / max(float(np.sqrt(np.mean(out**2))), 1e-12)
    out += 10.0 ** (-66.0 / 20.0) * noise[::-1]  # room noise
    peak = float(np.max(np.abs(out)))
    if peak > 0.97:
        out *= 0.97 / peak
    return out.astype(np.float32)


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """A float signal in [-1, 1] as the bytes of a 16-bit PCM mono WAV file."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    buffer = io.BytesIO()  # one write to disk instead of libsndfile's seeks and small writes
    sf.write(buffer, pcm, sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def _write_utterances(
    out_dir: Path, config: SynthConfig, jobs: Sequence[tuple[int, int, int]]
) -> list[tuple[int, int, int, int]]:
    """Writes (or finds) the WAV of each (speaker, emotion index, sentence); returns lengths."""
    done = []
    for speaker, emo, sentence in jobs:
        path = out_dir / _relative_path(speaker, emo, sentence)
        if path.exists():
            frames = sf.info(str(path)).frames
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            audio = synthesize_utterance(speaker, EMOTIONS[emo], sentence, config)
            Location(path).write(wav_bytes(audio, config.sample_rate))
            frames = audio.size
        done.append((speaker, emo, sentence, frames))
    return done


def _relative_path(speaker: int, emo: int, sentence: int) -> str:
    return f"{speaker_name(speaker)}/{EMOTIONS[emo]}/{utterance_id(sentence)}.wav"


def synthesize_corpus(
    out_dir: Path,
    config: SynthConfig,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Writes the corpus under `out_dir` and returns the path of its manifest.

    WAVs are written atomically and kept on a re-run, and manifest.csv comes last, so an
    interrupted run is finished by running it again (which removes its half-written files).
    `workers > 1` uses a process pool; the bytes written do not depend on it. Refuses a
    folder made with a different config.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / CONFIG_NAME
    config_text = json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True) + "\n"
    if config_path.exists() and config_path.read_text() != config_text:
        raise ValueError(f"{out_dir} holds a corpus made with another config: {config_path}")
    Location(config_path).write(config_text)
    for leftover in out_dir.rglob(f"{TMP_PREFIX}*"):  # written by a run that was killed
        leftover.unlink()

    jobs = [
        (s, e, k)
        for s in range(config.speakers)
        for e in range(len(EMOTIONS))
        for k in range(config.utterances_per_emotion)
    ]
    frames: dict[tuple[int, int, int], int] = {}

    def collect(rows: list[tuple[int, int, int, int]]) -> None:
        frames.update({row[:3]: row[3] for row in rows})
        if progress is not None:
            progress(len(frames), len(jobs))

    if workers <= 1:
        for job in jobs:
            collect(_write_utterances(out_dir, config, [job]))
    else:
        chunk = max(1, min(64, math.ceil(len(jobs) / (4 * workers))))
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(_write_utterances, out_dir, config, jobs[i : i + chunk])
                for i in range(0, len(jobs), chunk)
            ]
            for future in as_completed(futures):
                collect(future.result())

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for speaker, emo, sentence in jobs:
        duration = frames[speaker, emo, sentence] / config.sample_rate
        writer.writerow(
            [
                _relative_path(speaker, emo, sentence),
                speaker_name(speaker),
                EMOTIONS[emo],
                utterance_id(sentence),
                f"{duration:.6f}",
            ]
        )
    manifest = out_dir / MANIFEST_NAME
    Location(manifest).write(text.getvalue())
    return manifest
