"""The synthetic CASIA-style corpus: determinism, layout, audio format, and emotion cues."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from featurize.location import TMP_PREFIX
from workflows.demo.synth import (
    CONFIG_NAME,
    EMOTIONS,
    MANIFEST_COLUMNS,
    SynthConfig,
    sentence_plan,
    speaker_profile,
    synthesize_corpus,
    synthesize_utterance,
)

SMALL = SynthConfig(speakers=2, utterances_per_emotion=2, seed=3)


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == MANIFEST_COLUMNS
        return list(reader)


def corpus_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    calls = []
    manifest = synthesize_corpus(root, SMALL, progress=lambda done, total: calls.append(done))
    assert manifest == root / "manifest.csv"
    assert calls == list(range(1, 25))  # 2 speakers x 6 emotions x 2 sentences, one call each
    return root


# Determinism


def test_same_config_gives_identical_bytes_for_any_worker_count(small_corpus, tmp_path):
    synthesize_corpus(tmp_path, SMALL, workers=2)
    assert corpus_bytes(tmp_path) == corpus_bytes(small_corpus)


def test_utterance_is_a_pure_function_of_its_arguments():
    config = SynthConfig()
    first = synthesize_utterance(1, "happy", 4, config)
    synthesize_utterance(0, "sad", 2, config)  # other work in between changes nothing
    np.testing.assert_array_equal(synthesize_utterance(1, "happy", 4, config), first)


def test_different_seed_speaker_emotion_or_sentence_gives_different_audio():
    base = synthesize_utterance(0, "angry", 0, SynthConfig(seed=0))
    others = [
        synthesize_utterance(0, "angry", 0, SynthConfig(seed=1)),
        synthesize_utterance(1, "angry", 0, SynthConfig(seed=0)),
        synthesize_utterance(0, "fear", 0, SynthConfig(seed=0)),
        synthesize_utterance(0, "angry", 1, SynthConfig(seed=0)),
    ]
    for other in others:
        assert other.shape != base.shape or not np.array_equal(other, base)


def test_sentences_are_shared_by_speakers_and_differ_from_each_other():
    config = SynthConfig()
    plans = [sentence_plan(k, config) for k in range(6)]
    assert len({tuple((s.onset, s.vowel, s.coda) for s in plan) for plan in plans}) == 6
    assert len({len(plan) for plan in plans}) > 1  # sentences differ in length too


# Layout, resuming


def test_every_speaker_reads_every_sentence_in_every_emotion(small_corpus):
    rows = read_manifest(small_corpus / "manifest.csv")
    wavs = sorted(p.relative_to(small_corpus).as_posix() for p in small_corpus.rglob("*.wav"))
    assert sorted(r["path"] for r in rows) == wavs
    assert Counter((r["speaker"], r["emotion"]) for r in rows) == {
        (s, e): 2 for s in ("spk01", "spk02") for e in EMOTIONS
    }
    for row in rows:
        assert row["path"] == f"{row['speaker']}/{row['emotion']}/{row['utt_id']}.wav"
        info = sf.info(str(small_corpus / row["path"]))
        assert float(row["duration_s"]) == pytest.approx(info.frames / info.samplerate, abs=1e-6)
    assert {r["utt_id"] for r in rows} == {"s0201", "s0202"}
    assert not list(small_corpus.rglob("*.part"))


def test_rerun_finishes_an_interrupted_run_and_keeps_finished_files(small_corpus, tmp_path):
    synthesize_corpus(tmp_path, SMALL)
    want = corpus_bytes(tmp_path)
    victim = tmp_path / "spk02" / "sad" / "s0202.wav"
    victim.with_name(f"{TMP_PREFIX}0123.part").write_bytes(b"half a file")  # killed mid-write
    victim.unlink()
    (tmp_path / "manifest.csv").unlink()
    kept = tmp_path / "spk01" / "angry" / "s0201.wav"
    kept.write_bytes(kept.read_bytes())  # same content, newer mtime: must not be rewritten
    mtime = kept.stat().st_mtime_ns
    synthesize_corpus(tmp_path, SMALL)
    assert corpus_bytes(tmp_path) == want
    assert kept.stat().st_mtime_ns == mtime


def test_refuses_a_folder_made_with_another_config(small_corpus):
    assert (small_corpus / CONFIG_NAME).exists()
    with pytest.raises(ValueError, match="another config"):
        synthesize_corpus(small_corpus, SynthConfig(speakers=2, utterances_per_emotion=2, seed=4))


def test_rejects_bad_configs():
    for bad in (dict(speakers=0), dict(min_duration_s=2.0, max_duration_s=1.0), dict(seed=-1)):
        with pytest.raises(ValueError):
            SynthConfig(**bad)


# Audio


@pytest.mark.parametrize("sample_rate", [16000, 8000])
def test_files_are_16_bit_pcm_mono_at_the_configured_rate(tmp_path, sample_rate):
    config = SynthConfig(speakers=1, utterances_per_emotion=1, sample_rate=sample_rate)
    synthesize_corpus(tmp_path, config)
    for path in tmp_path.rglob("*.wav"):
        info = sf.info(str(path))
        assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1)
        assert info.samplerate == sample_rate
        assert path.read_bytes()[:4] == b"RIFF"


# The last range's max_duration_s * sample_rate is not a whole number of samples.
@pytest.mark.parametrize("bounds", [(1.0, 2.5), (0.5, 0.8), (1.5, 1.60004)])
def test_durations_stay_in_the_configured_range_without_cutting_speech(bounds):
    config = SynthConfig(min_duration_s=bounds[0], max_duration_s=bounds[1])
    lengths = []
    for s in range(2):
        for e in ("angry", "sad", "fear"):  # fastest and slowest speech
            for k in range(5):
                audio = synthesize_utterance(s, e, k, config).astype(np.float64)
                lengths.append(audio.size / config.sample_rate)
                tail = audio[-int(0.03 * config.sample_rate) :]
                assert np.mean(tail**2) < 0.01 * np.mean(audio**2)  # ends in silence
    assert bounds[0] <= min(lengths) and max(lengths) <= bounds[1]
    assert max(lengths) - min(lengths) > 0.25 * (bounds[1] - bounds[0])  # not all one length


def test_audio_never_clips_and_levels_vary(small_corpus):
    peaks, levels = [], []
    for path in small_corpus.rglob("*.wav"):
        pcm, _ = sf.read(str(path), dtype="int16")
        peaks.append(np.abs(pcm.astype(np.int32)).max())
        levels.append(np.sqrt(np.mean(pcm.astype(float) ** 2)))
    assert max(peaks) < 32767 * 0.98
    assert min(peaks) > 32767 * 0.05  # loosely normalised, not near silence
    assert max(levels) / min(levels) > 2.0  # loudness differs between utterances
    loud = SynthConfig(cue_spread=2.5)  # far-out cue draws still must not clip
    for k in range(12):
        audio = synthesize_utterance(k % 4, "angry", k, loud)
        assert audio.dtype == np.float32 and np.isfinite(audio).all()
        assert np.abs(audio).max() <= 0.97 + 1e-6


# Emotion cues, measured on the audio


def f0_track(x: np.ndarray, sr: int) -> np.ndarray:
    """Autocorrelation F0 (Hz) of the voiced 40 ms frames, every 10 ms."""
    n, hop = int(0.04 * sr), int(0.01 * sr)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * np.hanning(n)
    energy = (frames**2).mean(1)
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * n)) ** 2)[:, :n]
    ac /= ac[:, :1] + 1e-12
    lo, hi = sr // 500, sr // 60
    lag = lo + ac[:, lo:hi].argmax(1)
    voiced = (ac[np.arange(len(ac)), lag] > 0.5) & (energy > 0.05 * energy.max())
    return sr / lag[voiced]


def measure(x: np.ndarray, sr: int) -> dict[str, float]:
    f0 = f0_track(x.astype(np.float64), sr)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    return {
        "f0": float(np.median(f0)),
        "final_rise": float(np.log2(np.median(f0[-4:]) / np.median(f0))),
        "rms_db": float(10 * np.log10(np.mean(x.astype(np.float64) ** 2))),
        "tilt_db": float(
            10 * np.log10(spectrum[freqs > 2000].sum() / spectrum[freqs < 1000].sum())
        ),
        "duration": x.size / sr,
    }


@pytest.fixture(scope="module")
def cues() -> dict[str, dict[str, np.ndarray]]:
    """Measured cues per emotion, (speakers, sentences) arrays: a low and a high voice."""
    config = SynthConfig()
    out: dict[str, dict[str, np.ndarray]] = {}
    for emotion in EMOTIONS:
        rows = [
            [measure(synthesize_utterance(s, emotion, k, config), 16000) for k in range(10)]
            for s in range(2)
        ]
        out[emotion] = {name: np.array([[m[name] for m in r] for r in rows]) for name in rows[0][0]}
    return out


def test_speakers_include_low_and_high_voices(cues):
    f0 = cues["neutral"]["f0"].mean(1)
    assert f0[0] < 130 < 150 < f0[1]
    assert speaker_profile(0, 0).formant_scale < speaker_profile(1, 0).formant_scale


def test_emotions_differ_in_the_intended_cues(cues):
    def mean(emotion: str, name: str) -> np.ndarray:
        return cues[emotion][name].mean(1)  # per speaker

    assert (mean("angry", "rms_db") > mean("sad", "rms_db") + 6).all()  # vocal effort
    assert (mean("angry", "tilt_db") > mean("sad", "tilt_db") + 5).all()  # flatter spectrum
    assert (mean("angry", "f0") > mean("neutral", "f0") * 1.08).all()  # raised pitch
    assert (mean("neutral", "f0") > mean("sad", "f0")).all()
    assert (mean("fear", "f0") > mean("neutral", "f0") * 1.1).all()
    assert (mean("surprise", "final_rise") > mean("sad", "final_rise") + 0.2).all()
    assert (mean("sad", "duration") > mean("angry", "duration") * 1.1).all()  # slower


def test_no_single_cue_separates_the_emotions(cues):
    """Each cue alone classifies far worse than all of them together (nearest class mean,
    fitted on the same utterances, per speaker so that voice pitch does not blur it)."""

    def accuracy(names: list[str]) -> float:
        hits = total = 0
        for s in range(2):
            feats = np.stack(
                [np.stack([cues[e][n][s] for n in names], 1) for e in EMOTIONS]
            )  # (emotions, sentences, cues)
            feats = (feats - feats.mean((0, 1))) / feats.std((0, 1))
            centroids = feats.mean(1)  # (emotions, cues)
            dist = ((feats[:, :, None, :] - centroids[None, None]) ** 2).sum(-1)
            hits += (dist.argmin(-1) == np.arange(len(EMOTIONS))[:, None]).sum()
            total += dist.shape[0] * dist.shape[1]
        return hits / total

    names = ["f0", "final_rise", "rms_db", "tilt_db", "duration"]
    single = {name: accuracy([name]) for name in names}
    combined = accuracy(names)
    assert max(single.values()) < 0.6, single
    assert combined > max(single.values()) + 0.15, (combined, single)
    assert combined < 0.98  # the classes overlap even with every cue
