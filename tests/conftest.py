"""Shared fixtures: one local Ray instance and one small synthetic corpus for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray instance (2 CPUs), started once and shared by every test that needs Ray."""
    from featurize.raysession import ensure_ray

    ray = ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory) -> Path:
    """2 speakers x 6 emotions x 3 sentences of short synthetic speech (36 WAV files)."""
    from workflows.demo.synth import SynthConfig, synthesize_corpus

    root = tmp_path_factory.mktemp("corpus")
    config = SynthConfig(
        speakers=2, utterances_per_emotion=3, min_duration_s=0.5, max_duration_s=0.8, seed=7
    )
    synthesize_corpus(root, config)
    return root


@pytest.fixture(scope="session")
def synth_features(ray_local, synth_corpus, tmp_path_factory) -> str:
    """The synthetic corpus featurized at 32x32."""
    from featurize.config import FeatureConfig
    from featurize.pipeline import run_featurize

    out = str(tmp_path_factory.mktemp("features") / "features")
    run_featurize(synth_corpus, out, FeatureConfig(image_size=32), progress=lambda _: None)
    return out


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> dict[str, Path]:
    """A tiny random encoder of each architecture (tests/tiny_encoders.py), saved with
    save_pretrained: architecture -> its folder. Nothing is downloaded."""
    from tests.tiny_encoders import KINDS, save_tiny_encoder

    root = tmp_path_factory.mktemp("encoders")
    return {kind: save_tiny_encoder(kind, root / f"tiny-{kind}") for kind in KINDS}


@pytest.fixture(scope="session")
def encoded_features(ray_local, synth_corpus, synth_features, tiny_encoders, tmp_path_factory):
    """A copy of ``synth_features`` that gained the tiny WavLM's set, named "wavlm"
    (``featurize --encoder wavlm=FOLDER``): (FEATURES, that run's summary, the spectrogram
    shards' modification times and the content fingerprint before it)."""
    import shutil

    from featurize.encoders import resolve_encoder
    from featurize.pipeline import run_featurize
    from featurize.store import content_fingerprint, load_features

    out = str(tmp_path_factory.mktemp("encoded") / "features")
    shutil.copytree(synth_features, out)
    before = {p.name: p.stat().st_mtime_ns for p in Path(out).glob("part-*.parquet")}
    fingerprint = content_fingerprint(out)
    wavlm = resolve_encoder("wavlm", str(tiny_encoders["wavlm"]))
    config = load_features(out, spectrograms=False).config
    summary = run_featurize(synth_corpus, out, config, encoders=(wavlm,), progress=lambda _: None)
    return out, summary, before, fingerprint
