"""Featurize end to end on the synthetic corpus with a real local Ray instance."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from typer.testing import CliRunner

from featurize.config import FeatureConfig
from featurize.corpus import CorpusError, discover
from featurize.pipeline import (
    MissingCorpusFileError,
    NothingFeaturizedError,
    featurize_file,
    run_featurize,
)
from featurize.store import FeatureStoreError, load_features, prepare_store, write_shard
from workflows.cli import app

QUIET = {"progress": lambda _: None}
EMOTIONS = ["angry", "fear", "happy", "neutral", "sad", "surprise"]


def test_rows_schema_and_metadata(synth_corpus, synth_features):
    table = pq.read_table(synth_features)
    wavs = sorted(p.relative_to(synth_corpus).as_posix() for p in synth_corpus.rglob("*.wav"))
    assert sorted(table.column("source").to_pylist()) == wavs
    assert table.num_rows == 36 and len(set(table.column("utterance_id").to_pylist())) == 36
    row = table.slice(0, 1).to_pylist()[0]
    assert row["utterance_id"] == row["source"].removesuffix(".wav")
    assert row["speaker"] == row["source"].split("/")[0]
    assert row["emotion"] == row["source"].split("/")[1]
    assert EMOTIONS[row["label"]] == row["emotion"]
    assert row["sample_rate"] == 16000 and 0.5 <= row["duration_s"] <= 0.8
    assert len(row["sha1"]) == 40
    assert np.asarray(row["spectrogram"]).shape == (32, 32)
    meta = table.schema.metadata
    assert json.loads(meta[b"attres.labels"]) == EMOTIONS
    assert json.loads(meta[b"attres.feature_config"])["image_size"] == 32
    summary = json.loads((Path(synth_features) / "_summary.json").read_text())
    assert summary["featurized"] == 36 and summary["rejected"] == 0


def test_plain_pyarrow_reads_without_ray(synth_features):
    code = textwrap.dedent(
        f"""
        import sys, pyarrow.parquet as pq
        t = pq.read_table({synth_features!r})
        assert "ray" not in sys.modules
        print(t.num_rows)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "36"


def test_ray_data_reads_the_same_rows(ray_local, synth_features):
    import ray.data

    ds = ray.data.read_parquet(synth_features)
    rows = {r["utterance_id"]: r for r in ds.take_all()}
    features = load_features(synth_features)
    assert sorted(rows) == list(features.utterance_ids)
    first = features.utterance_ids[0]
    np.testing.assert_array_equal(
        np.stack(rows[first]["spectrogram"]).astype(np.float32), features.spectrograms[0, 0]
    )


def test_rerun_skips_everything_and_duplicates_nothing(synth_corpus, synth_features):
    before = sorted(p.name for p in Path(synth_features).glob("part-*.parquet"))
    summary = run_featurize(synth_corpus, synth_features, FeatureConfig(image_size=32), **QUIET)
    assert (summary.featurized, summary.skipped) == (0, 36)
    assert sorted(p.name for p in Path(synth_features).glob("part-*.parquet")) == before
    assert pq.read_table(synth_features).num_rows == 36


def test_other_config_into_same_features_is_refused(synth_corpus, synth_features):
    with pytest.raises(FeatureStoreError, match="different configuration.*image_size"):
        run_featurize(synth_corpus, synth_features, FeatureConfig(image_size=64), **QUIET)


def broken_corpus(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    sad = dst / "spk01" / "sad"
    (sad / "empty.wav").write_bytes(b"")
    (sad / "text.wav").write_text("not audio, just words\n" * 20)
    whole = (sad / "s0201.wav").read_bytes()
    (sad / "truncated.wav").write_bytes(whole[: len(whole) // 2])
    sf.write(sad / "tiny.wav", np.zeros(100, dtype=np.float32), 16000, subtype="PCM_16")
    return dst


def test_bad_files_are_rejected_and_good_ones_kept(ray_local, synth_corpus, tmp_path):
    corpus = broken_corpus(synth_corpus, tmp_path / "corpus")
    out = tmp_path / "features"
    result = CliRunner().invoke(
        app, ["featurize", str(corpus), "--out", str(out), "--image-size", "16"]
    )
    assert result.exit_code == 0, result.output
    with (out / "_rejects.csv").open() as f:
        rejects = {row["path"]: row["reason"] for row in csv.DictReader(f)}
    assert rejects.keys() == {f"spk01/sad/{n}.wav" for n in ("empty", "text", "truncated", "tiny")}
    assert "empty" in rejects["spk01/sad/empty.wav"]
    assert "not readable as audio" in rejects["spk01/sad/text.wav"]
    assert "truncated" in rejects["spk01/sad/truncated.wav"]
    assert "shorter than one analysis frame" in rejects["spk01/sad/tiny.wav"]
    assert "4 rejected" in result.output and "spk01/sad/truncated.wav: truncated" in result.output
    assert pq.read_table(out).num_rows == 36


def test_a_missing_file_is_a_setup_error_a_corrupt_one_a_reject(tmp_path):
    utt = {"path": str(tmp_path / "gone.wav"), "source": "gone.wav", "speaker": "s",
           "emotion": "angry", "utt_id": "gone", "utterance_id": "gone"}  # fmt: skip
    config, labels = FeatureConfig(image_size=16), ("angry",)
    with pytest.raises(
        MissingCorpusFileError, match=rf"{tmp_path}/gone.wav .* not on node .*shared"
    ):
        featurize_file(utt, config, labels)
    (tmp_path / "gone.wav").write_text("not audio, just words\n" * 20)
    assert "not readable as audio" in featurize_file(utt, config, labels)["reject"]


def test_a_file_missing_on_a_worker_fails_the_run(ray_local, synth_corpus, tmp_path, monkeypatch):
    import featurize.pipeline

    found = discover(synth_corpus)
    gone = dataclasses.replace(found.utterances[0], path=str(tmp_path / "gone.wav"))
    listed = dataclasses.replace(found, utterances=found.utterances[1:4] + (gone,))
    monkeypatch.setattr(featurize.pipeline, "discover", lambda *_: listed)
    with pytest.raises(MissingCorpusFileError) as err:
        run_featurize(synth_corpus, str(tmp_path / "f"), FeatureConfig(image_size=16), **QUIET)
    assert str(err.value).startswith(f"corpus file {tmp_path}/gone.wav exists on the driver")
    assert "\n" not in str(err.value)


def test_corpus_errors_exit_nonzero_with_the_reason(ray_local, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(
        app, ["featurize", str(tmp_path / "nope"), "--out", str(tmp_path / "f")]
    )
    assert missing.exit_code != 0 and "does not exist" in missing.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["featurize", str(tmp_path / "empty"), "--out", str(tmp_path / "f")])
    assert empty.exit_code != 0 and "no audio files" in empty.output
    junk = tmp_path / "junk" / "spk" / "angry"
    junk.mkdir(parents=True)
    (junk / "a.wav").write_bytes(b"")
    with pytest.raises(NothingFeaturizedError, match="no file of"):
        run_featurize(tmp_path / "junk", str(tmp_path / "f2"), **QUIET)
    with pytest.raises(CorpusError, match="missing columns"):
        (tmp_path / "m.csv").write_text("file,label\n")
        run_featurize(tmp_path, str(tmp_path / "f3"), manifest=tmp_path / "m.csv", **QUIET)


def test_manifest_corpus(ray_local, synth_corpus, tmp_path):
    rows = [p.relative_to(synth_corpus) for p in sorted(synth_corpus.rglob("*.wav"))][:12]
    manifest = tmp_path / "list.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "speaker", "emotion"])
        for rel in rows:
            writer.writerow([str(synth_corpus / rel), f"X{rel.parts[0]}", rel.parts[1]])
    out = str(tmp_path / "features")
    summary = run_featurize(tmp_path, out, FeatureConfig(image_size=16), manifest=manifest, **QUIET)
    assert summary.featurized == 12
    assert set(pq.read_table(out).column("speaker").to_pylist()) == {"Xspk01"}


def test_one_utterance_id_for_two_files_is_refused(tmp_path):
    clip = np.zeros(8000, dtype=np.float32)
    for speaker in ("spk01", "spk02"):
        folder = tmp_path / "corpus" / speaker / "angry"
        folder.mkdir(parents=True)
        sf.write(folder / "a.wav", clip, 16000)
        sf.write(folder / "a.flac", clip, 16000)
    sf.write(folder / "b.wav", clip, 16000)
    with pytest.raises(CorpusError, match=r"2 utterance id.*spk01/angry/a \(spk01/angry/a.flac"):
        discover(tmp_path / "corpus")
    manifest = tmp_path / "corpus" / "list.csv"
    listed = ["spk02/angry/b.wav", "spk02/angry/a.wav", "spk02/angry/b.wav"]
    manifest.write_text("path,speaker,emotion\n" + "".join(f"{p},s,angry\n" for p in listed))
    with pytest.raises(CorpusError, match=r"1 utterance id.*spk02/angry/b \(spk02/angry/b.wav, "):
        discover(tmp_path, manifest)
    listed = ["spk02/angry/b.wav", "spk02/angry/../angry/b.wav"]
    manifest.write_text("path,speaker,emotion\n" + "".join(f"{p},s,angry\n" for p in listed))
    with pytest.raises(CorpusError, match=r"1 file.*listed more than once.*angry/b.wav"):
        discover(tmp_path, manifest)


def test_load_features_refuses_duplicate_utterance_ids(tmp_path):
    config, labels = FeatureConfig(image_size=8), ("angry",)
    features = str(tmp_path / "features")
    prepare_store(features, config, labels)
    row = {"speaker": "s", "emotion": "angry", "label": 0, "utt_id": "a", "duration_s": 1.0,
           "sample_rate": 16000, "source": "s/angry/a.wav", "sha1": "0" * 40,
           "spectrogram": np.zeros((8, 8), np.float32)}  # fmt: skip
    write_shard(features, [dict(row, utterance_id="s/angry/a")], config, labels)
    write_shard(features, [dict(row, utterance_id=i) for i in ("s/angry/a", "b")], config, labels)
    with pytest.raises(FeatureStoreError, match=r"features.*1 utterance id.*s/angry/a"):
        load_features(str(tmp_path / "features"))


def test_killed_run_resumes_to_exactly_the_full_set(synth_corpus, tmp_path):
    out = tmp_path / "features"
    cmd = [
        sys.executable,
        "-m",
        "workflows.cli",
        "featurize",
        str(synth_corpus),
        "--out",
        str(out),
        "--image-size",
        "16",
        "--shard-rows",
        "1",
    ]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    shards_at_kill = len(list(out.glob("part-*.parquet")))
    assert 0 < shards_at_kill < 36, "the run should have been killed midway"
    time.sleep(1.0)  # let orphaned workers of the killed session die
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ids = pq.read_table(out).column("utterance_id").to_pylist()
    assert len(ids) == len(set(ids)) == 36
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["skipped"] >= shards_at_kill and summary["featurized"] + summary["skipped"] == 36
    assert not list(out.glob("_tmp-*"))


def test_a_copy_added_after_featurizing_is_refused_when_the_features_are_read(
    ray_local, synth_corpus, tmp_path
):
    """FEATURES may already hold a recording whose copy arrives later under a name that
    sorts first (featurize keeps the first path): reading them names both."""
    root = tmp_path / "corpus"
    shutil.copytree(synth_corpus, root)
    out = str(tmp_path / "features")
    run_featurize(root, out, FeatureConfig(image_size=16), **QUIET)
    (root / "spk01" / "angry" / "a_copy.wav").write_bytes(
        (root / "spk01" / "angry" / "s0201.wav").read_bytes()
    )
    summary = run_featurize(root, out, FeatureConfig(image_size=16), **QUIET)
    assert summary.copies == [
        ("spk01/angry/s0201.wav", "the same audio as spk01/angry/a_copy.wav, kept once")
    ]
    with pytest.raises(FeatureStoreError, match="spk01/angry/a_copy = spk01/angry/s0201"):
        load_features(out)


def test_spectrograms_are_read_in_the_index_order_row_for_row(synth_features):
    """Every row of ``load_features`` is the row pyarrow reads for its id, whatever the
    order of the shards and of the rows in them."""
    table = pq.read_table(synth_features, columns=["utterance_id", "spectrogram"])
    by_id = dict(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    data = load_features(synth_features)
    assert len(list(Path(synth_features).glob("part-*.parquet"))) > 1
    for uid, image in zip(data.utterance_ids, data.spectrograms, strict=True):
        np.testing.assert_array_equal(image[0], np.asarray(by_id[uid], dtype=np.float32))
