"""openSMILE functionals beside the spectrograms: real openSMILE, real Parquet, real Ray Data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from featurize.config import FeatureConfig
from featurize.functionals import Extractor, FunctionalsError, check_sets
from featurize.pipeline import featurize_file, run_featurize
from featurize.store import (
    FUNCTIONALS_KEY,
    SET_FILE,
    FeatureStoreError,
    content_fingerprint,
    functionals_location,
    load_features,
    load_functionals,
    prepare_functionals,
)

QUIET = {"progress": lambda _: None}
CONFIG = FeatureConfig(image_size=16)


@pytest.fixture(scope="module")
def gained(ray_local, synth_corpus, tmp_path_factory):
    """Features made without functionals, then given eGeMAPS by a second run."""
    out = str(tmp_path_factory.mktemp("functionals") / "features")
    run_featurize(synth_corpus, out, CONFIG, **QUIET)
    before = {p.name: p.stat().st_mtime_ns for p in Path(out).glob("part-*.parquet")}
    fingerprint = content_fingerprint(out)
    summary = run_featurize(synth_corpus, out, CONFIG, functionals=("egemaps",), **QUIET)
    return out, before, fingerprint, summary


def test_a_featurized_corpus_gains_a_set_without_new_spectrograms(gained):
    out, before, fingerprint, summary = gained
    after = {p.name: p.stat().st_mtime_ns for p in Path(out).glob("part-*.parquet")}
    assert after == before  # not one spectrogram shard rewritten
    assert content_fingerprint(out) == fingerprint
    assert summary.featurized == 36 and summary.functionals == ["egemaps"]
    features = load_features(out)
    egemaps = load_functionals(out, "egemaps", features.utterance_ids)
    assert egemaps.values.shape == (36, 88) and egemaps.values.dtype == np.float32
    assert np.isfinite(egemaps.values).all() and egemaps.names[0].startswith("F0semitone")


def test_the_vectors_are_openSMILEs_of_each_clip(gained, synth_corpus):
    out, *_ = gained
    features = load_features(out)
    uid = features.utterance_ids[5]
    stored = load_functionals(out, "egemaps", np.array([uid])).values[0]
    path = next(p for p in synth_corpus.rglob("*.wav") if p.stem in uid and p.parent.name in uid)
    signal, rate = sf.read(path, dtype="float32")
    assert rate == CONFIG.sample_rate
    np.testing.assert_allclose(stored, Extractor(("egemaps",))(signal, rate)["egemaps"], rtol=1e-5)


def test_feature_names_live_in_the_parquet_metadata(gained):
    out, *_ = gained
    shard = next(Path(functionals_location(out, "egemaps")).glob("part-*.parquet"))
    meta = json.loads(pq.read_schema(shard).metadata[FUNCTIONALS_KEY])
    assert meta["set"] == "egemaps" and len(meta["names"]) == 88 and meta["opensmile"]
    # the spectrogram rows alone are what a plain read of FEATURES sees
    assert "values" not in pq.read_table(out).column_names


def test_a_rerun_resumes_and_a_second_set_is_added_beside_the_first(gained, synth_corpus, tmp_path):
    out, *_ = gained
    again = run_featurize(synth_corpus, out, CONFIG, functionals=("egemaps",), **QUIET)
    assert (again.featurized, again.skipped) == (0, 36)
    copy = str(tmp_path / "copy")
    shutil.copytree(out, copy)
    both = run_featurize(synth_corpus, copy, CONFIG, functionals=("compare", "egemaps"), **QUIET)
    assert both.functionals == ["egemaps", "compare"] and both.featurized == 36
    ids = load_features(copy).utterance_ids
    assert load_functionals(copy, "compare", ids).values.shape == (36, 6373)
    # egemaps rows were not made a second time
    egemaps_shards = list(Path(functionals_location(copy, "egemaps")).glob("part-*.parquet"))
    assert sum(pq.read_metadata(p).num_rows for p in egemaps_shards) == 36


def test_a_missing_set_is_refused_naming_the_option(synth_features):
    ids = load_features(synth_features).utterance_ids
    with pytest.raises(FeatureStoreError, match="--functionals compare"):
        load_functionals(synth_features, "compare", ids)


def test_a_set_made_by_another_opensmile_is_refused(gained, tmp_path):
    out, *_ = gained
    copy = str(tmp_path / "copy")
    shutil.copytree(out, copy)
    meta = Path(functionals_location(copy, "egemaps")) / SET_FILE
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "opensmile": "0.1"}))
    with pytest.raises(FeatureStoreError, match="made differently"):
        prepare_functionals(copy, ("egemaps",), CONFIG.sample_rate)


def test_a_clip_openSMILE_cannot_describe_is_a_reject_with_its_reason(tmp_path):
    path = tmp_path / "short.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.normal(size=480)).astype(np.float32), 16000)  # 30 ms: one frame
    utt = {
        "path": str(path), "source": str(path), "speaker": "s", "emotion": "angry",
        "utt_id": "1", "utterance_id": "s/angry/1", "has_spectrogram": "no", "sets": "egemaps",
    }  # fmt: skip
    assert isinstance(featurize_file(utt, CONFIG, ("angry",)), list)  # a spectrogram alone fits
    result = featurize_file(utt, CONFIG, ("angry",), Extractor(("egemaps",)))
    assert isinstance(result, dict) and "openSMILE eGeMAPS" in result["reject"]
    with pytest.raises(FunctionalsError):
        Extractor(("egemaps",))(np.zeros(480, np.float32), 16000)


def test_a_run_with_a_bad_file_keeps_the_good_ones(ray_local, synth_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(synth_corpus, corpus)
    short = next(corpus.rglob("*.wav"))
    sf.write(short, np.zeros(480, np.float32), 16000)
    out = str(tmp_path / "features")
    summary = run_featurize(corpus, out, CONFIG, functionals=("egemaps",), **QUIET)
    assert summary.rejected == 1 and summary.featurized == 35
    assert os.path.basename(summary.rejects[0][0]) == short.name
    ids = load_features(out).utterance_ids
    assert load_functionals(out, "egemaps", ids).values.shape == (35, 88)


def test_sets_are_named_on_the_command_line():
    assert check_sets(("compare", "egemaps", "compare")) == ("egemaps", "compare")
    with pytest.raises(ValueError, match="unknown functionals"):
        check_sets(("gemaps",))
