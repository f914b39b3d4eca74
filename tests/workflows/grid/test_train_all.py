"""train-all, tables and demo end to end on synthetic features with a real local Ray instance."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.metrics import confusion_matrix as sk_confusion
from typer.testing import CliRunner

from attres.metrics import classification_metrics
from attres.splits import Protocol, make_split, protocol_folds
from featurize.store import FeatureStoreError, load_features
from workflows.cli import app
from workflows.grid.config import TrainConfig
from workflows.grid.plan import GridError, plan_grid
from workflows.grid.train_all import train_all, trial_slots
from workflows.results.check import published_row
from workflows.results.tables import CSV_COLUMNS
from workflows.runs import load_records

QUIET = {"progress": lambda _: None}


@pytest.fixture(scope="module")
def grid(ray_local, synth_features, tmp_path_factory):
    runs = str(tmp_path_factory.mktemp("runs") / "runs")
    summary = train_all(
        synth_features, runs, ["att-Res0", "SVM"], [0], TrainConfig(epochs=2), **QUIET
    )
    return runs, summary


def test_grid_writes_one_record_per_trial(grid, synth_features):
    runs, summary = grid
    assert (summary.planned, summary.finished, summary.failed) == (2, 2, [])
    records = {r.trial: r for r in load_records(runs)}
    assert set(records) == {"att-res0-paper-s0-f0", "svm-paper-s0-f0"}
    split = json.loads((Path(runs) / "splits" / "paper-s0-f0.json").read_text())
    assert not set(split["train"]) & set(split["test"]) and len(split["test"]) == 8
    for record in records.values():
        assert 0.0 <= record.wa <= 1.0 and 0.0 <= record.ua <= 1.0
        assert np.array(record.confusion).sum() == len(split["test"]) == record.n_test
        prov = record.provenance
        assert prov["features"] == synth_features and len(prov["features_fingerprint"]) == 16
        assert prov["train_config"]["epochs"] == 2 and prov["ray_version"]
        assert prov["packages"]["numpy"] == np.__version__  # what another machine compares
    cnn = records["att-res0-paper-s0-f0"]
    assert len(cnn.curves["train_loss"]) == 2 and cnn.params > 0 and cnn.flops > 0
    assert cnn.precision == "fp32" and records["svm-paper-s0-f0"].precision is None
    table = pq.read_table(Path(runs) / "results.parquet")
    assert sorted(table.column("trial").to_pylist()) == sorted(records)


def test_rerun_skips_finished_trials(grid, synth_features):
    runs, _ = grid
    before = {p: p.stat().st_mtime_ns for p in (Path(runs) / "trials").iterdir()}
    again = train_all(
        synth_features, runs, ["att-Res0", "SVM"], [0], TrainConfig(epochs=2), **QUIET
    )
    assert (again.skipped, again.finished) == (2, 0)
    assert {p: p.stat().st_mtime_ns for p in (Path(runs) / "trials").iterdir()} == before


def test_tables_command_prints_both_tables_and_plots(grid):
    runs, _ = grid
    result = CliRunner().invoke(app, ["tables", runs, "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_model = {(r["table"], r["model"]): r for r in rows}
    assert by_model[("Table 1", "att-Res0")]["n_runs"] == "1"
    assert by_model[("Table 1", "att-Res")]["n_runs"] == "0"
    assert by_model[("Table 1", "att-Res")]["wa_mean"] == ""
    assert (Path(runs) / "plots" / "training-curves.png").stat().st_size > 0
    assert (Path(runs) / "plots" / "confusion-paper-svm.png").exists()


def test_tables_publish_writes_what_check_reads(grid, tmp_path):
    runs, _ = grid
    result = CliRunner().invoke(app, ["tables", runs, "--publish", str(tmp_path / "pub")])
    assert result.exit_code == 0, result.output
    pub = tmp_path / "pub"
    trials = list(csv.DictReader((pub / "trials.csv").open()))
    assert sorted(t["trial"] for t in trials) == ["att-res0-paper-s0-f0", "svm-paper-s0-f0"]
    assert [t["resumed_from_epoch"] for t in trials] == ["0", ""]  # the SVM keeps no state
    assert json.loads((pub / "train_config.json").read_text())["epochs"] == 2
    assert json.loads((pub / "features.json").read_text())["config"]["image_size"] == 32
    assert (pub / "tables.md").read_text() in result.stdout
    row = published_row(pub, "att-Res0", "paper")
    assert float(row["wa_mean"]) == pytest.approx(100 * float(trials[0]["wa"]))
    assert (pub / "plots" / "confusion-paper-att-res0.png").exists()


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 6, 300), rng.integers(0, 6, 300)
    y_pred[:150] = y_true[:150]
    got = classification_metrics(y_true, y_pred, 6)
    assert got["wa"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert got["ua"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert got["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    np.testing.assert_array_equal(got["confusion"], sk_confusion(y_true, y_pred, labels=range(6)))


# cross-corpus and predefined splits are not drawn: they are given (tests of their own)
DRAWN = [p for p in Protocol if p not in (Protocol.cross_corpus, Protocol.predefined)]


@pytest.mark.parametrize("protocol", DRAWN)
def test_splits_are_disjoint_and_cover_the_data(protocol):
    labels = np.repeat(np.arange(6), 20)
    speakers = np.tile(np.repeat(["a", "b", "c", "d"], 5), 6)
    folds = protocol_folds(protocol, speakers, k=4)
    tested = []
    for fold in range(folds):
        split = make_split(protocol, labels, speakers, seed=3, fold=fold, k=4)
        assert not set(split.train) & set(split.test)
        assert len(split.train) + len(split.test) == len(labels)
        if protocol in (Protocol.loso, Protocol.speaker_kfold):
            assert not set(speakers[split.train]) & set(speakers[split.test])
        tested += list(split.test)
    if protocol is not Protocol.paper:
        assert sorted(tested) == list(range(len(labels)))  # every row tested exactly once
    else:
        assert len(tested) == 24 and np.bincount(labels[tested]).tolist() == [4] * 6


def test_other_settings_into_the_same_runs_are_refused(grid, synth_features):
    runs, _ = grid
    with pytest.raises(GridError, match=r"epochs: 2 -> 3"):
        train_all(synth_features, runs, ["att-Res0"], [0], TrainConfig(epochs=3), **QUIET)
    # resources may change between runs: nothing to train, nothing refused
    again = train_all(
        synth_features, runs, ["SVM"], [0], TrainConfig(epochs=2, cpus_per_trial=2), **QUIET
    )
    assert again.skipped == 1


def test_validation_runs_never_see_the_test_split(synth_features, tmp_path):
    runs = str(tmp_path / "runs")
    cfg = TrainConfig(validation=0.25)
    data = load_features(synth_features)
    specs = plan_grid(data, synth_features, "fp", runs, ["att-Res+", "SVM"], [0], cfg)
    paper = json.loads(
        (Path(runs) / "splits" / "paper-s0-f0-val25.json").read_text()
    )  # the carved split, saved for audit
    assert paper["evaluated_on"] == "validation"
    full = plan_grid(data, synth_features, "fp", str(tmp_path / "full"), ["SVM"], [0],
                     TrainConfig())[0]  # fmt: skip
    for spec in specs:
        assert spec.split == "paper-s0-f0-val25"
        assert set(spec.train_rows) | set(spec.test_rows) == set(full.train_rows)
        assert not set(spec.test_rows) & set(spec.train_rows)
        assert not set(spec.test_rows) & set(full.test_rows)
    plus, svm = specs
    assert plus.train.schedule == "cosine" and plus.train.mixup > 0  # att-Res+'s own recipe
    assert svm.train == cfg


def test_bad_grid_inputs_are_refused_with_reasons(ray_local, synth_features, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeatureStoreError, match="no Parquet shards"):
        train_all(
            str(tmp_path / "empty"), str(tmp_path / "r"), ["CNN"], [0], TrainConfig(), **QUIET
        )
    result = CliRunner().invoke(
        app, ["train-all", synth_features, "--out", str(tmp_path / "r"), "--models", "att-Res9"]
    )
    assert result.exit_code != 0 and "att-Res9" in result.output and "ResNet-18" in result.output
    result = CliRunner().invoke(
        app, ["train-all", synth_features, "--out", str(tmp_path / "r"), "--schedule", "step"]
    )
    assert result.exit_code != 0 and "--schedule" in result.output and "'step'" in result.output


def test_folds_runs_only_the_folds_asked_for(ray_local, synth_features, tmp_path):
    data = load_features(synth_features)
    loso = TrainConfig(protocol="loso")
    specs = plan_grid(data, synth_features, "fp", str(tmp_path / "p"), ["SVM"], [0, 1], loso,
                      folds=[1])  # fmt: skip
    assert [(s.seed, s.fold) for s in specs] == [(0, 1), (1, 1)]
    with pytest.raises(GridError, match="has folds 0 to 1"):  # 2 speakers: 2 folds
        plan_grid(data, synth_features, "fp", str(tmp_path / "p"), ["SVM"], [0], loso, folds=[2])
    runs = str(tmp_path / "runs")
    args = ["train-all", synth_features, "--out", runs, "--models", "SVM", "--protocol", "loso"]
    result = CliRunner().invoke(app, [*args, "--folds", "1"])
    assert result.exit_code == 0, result.output
    assert [r.split for r in load_records(runs)] == ["loso-s0-f1"]
    tables = CliRunner().invoke(app, ["tables", runs, "--no-plots"])
    assert "| SVM |" in tables.stdout and "seed 0: 1/2 folds" in tables.stdout
    result = CliRunner().invoke(app, [*args, "--folds", "0-1"])  # the rest of the seed
    assert result.exit_code == 0 and "1 of 2 trials already finished" in result.output
    result = CliRunner().invoke(app, [*args, "--folds", "x"])
    assert result.exit_code == 2 and "--folds: cannot read 'x'" in result.output
    result = CliRunner().invoke(app, [*args, "--folds", "1-0"])
    assert result.exit_code == 2 and "--folds: '1-0' names none" in result.output


def start_until_checkpoint(
    cmd: list[str], log: Path, runs: Path
) -> tuple[subprocess.Popen, Path, Path]:
    """Start ``cmd`` in a session of its own, logging to ``log``; return once a trial's
    checkpoint exists under ``runs`` (and where), so the run can be interrupted mid-trial."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not (found := list(runs.glob("checkpoints/*/state.pt"))):
        assert proc.poll() is None, "ended before it could be interrupted:\n" + log.read_text()
        assert time.monotonic() < deadline, "no checkpoint in time:\n" + log.read_text()
        time.sleep(0.1)
    return proc, log, found[0]


def kill_before_any_record(proc: subprocess.Popen, runs: Path) -> None:
    """SIGKILL a train-all and its whole tree (Ray's workers leave the process group, and a
    trial left running would finish on its own and write its record before a second run
    starts); no trial may have finished."""
    for pid in descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (runs / "trials").exists() or not list((runs / "trials").iterdir())


def test_interrupted_trial_resumes_from_its_checkpoint(ray_local, synth_features, tmp_path):
    """Killed mid-run, the trial resumes from its checkpoint and ends with exactly the
    record of a run never interrupted (same curves, same confusion matrix)."""
    runs = tmp_path / "runs"
    settings = ["--models", "att-Res0", "--epochs", "6", "--batch-size", "4",
                "--schedule", "cosine", "--mixup", "0.2", "--spec-masks", "1"]  # fmt: skip
    cmd = [sys.executable, "-m", "workflows.cli", "train-all", synth_features, "--out",
           str(runs), "--checkpoint-s", "0", *settings]  # fmt: skip
    proc, _, state = start_until_checkpoint(cmd, tmp_path / "first-run.log", runs)
    assert state.parent.name.startswith("att-res0-paper-s0-f0-")  # the trial, and its run
    kill_before_any_record(proc, runs)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    resumed = load_records(str(runs))[0]
    assert resumed.resumed_from_epoch > 0 and not state.exists()
    assert 0 < resumed.earlier_attempts_s < resumed.wall_s  # both attempts counted

    whole = tmp_path / "whole"
    result = CliRunner().invoke(app, ["train-all", synth_features, "--out", str(whole), *settings])
    assert result.exit_code == 0, result.output
    reference = load_records(str(whole))[0]
    assert reference.resumed_from_epoch == 0
    for key in ("curves", "confusion", "wa", "ua"):
        assert getattr(resumed, key) == getattr(reference, key), key


def test_a_streamed_trial_killed_mid_run_resumes_from_its_checkpoint(
    ray_local, synth_features, tmp_path
):
    """--stream: killed after a checkpoint, a re-run resumes the trial from it (it does not
    start over), trains every epoch and records the in-memory trial's test rows."""
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "workflows.cli", "train-all", synth_features, "--out",
           str(runs), "--models", "CNN", "--epochs", "4", "--batch-size", "8", "--stream",
           "--protocol", "loso", "--folds", "0", "--checkpoint-s", "0"]  # fmt: skip
    proc, log, _ = start_until_checkpoint(cmd, tmp_path / "first-run.log", runs)
    kill_before_any_record(proc, runs)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    (record,) = load_records(str(runs))
    assert record.resumed_from_epoch > 0, log.read_text()
    assert len(record.curves["train_loss"]) == 4 and record.provenance["train_config"]["stream"]
    in_memory = CliRunner().invoke(
        app, ["train-all", synth_features, "--out", str(tmp_path / "memory"), "--models",
              "CNN", "--epochs", "1", "--protocol", "loso", "--folds", "0"],
    )  # fmt: skip
    assert in_memory.exit_code == 0, in_memory.output
    (reference,) = load_records(str(tmp_path / "memory"))
    assert record.test_ids_sha1 == reference.test_ids_sha1
    assert record.test_labels == reference.test_labels


def test_a_stopped_run_says_so_and_exits_nonzero(ray_local, synth_features, tmp_path):
    """Ctrl-C: Tune stops the grid and returns; the unfinished trial must not count as done
    (it did: the summary said "1 trials finished" and the command exited 0)."""
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "workflows.cli", "train-all", synth_features, "--out",
           str(runs), "--models", "att-Res0", "--epochs", "2000", "--batch-size", "4",
           "--checkpoint-s", "0"]  # fmt: skip
    proc, log, state = start_until_checkpoint(cmd, tmp_path / "run.log", runs)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    try:
        assert proc.wait(timeout=120) == 2, log.read_text()  # the CLI's error exit
    finally:
        for pid in descendants(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    output = log.read_text()
    assert "0 trials finished" in output and "1 trials unfinished" in output
    assert not (runs / "trials").exists() or not list((runs / "trials").iterdir())
    assert state.exists()  # kept for the re-run


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def test_relative_paths_from_another_folder(ray_local, synth_corpus, monkeypatch, tmp_path):
    """The first commands a new user types: relative corpus, features and runs."""
    import shutil

    shutil.copytree(synth_corpus, tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["featurize", "corpus", "--out", "features", "--image-size", "32"])
    assert result.exit_code == 0, result.output
    args = ["train-all", "features", "--out", "runs", "--models", "CNN,SVM", "--epochs", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "runs" / "trials").iterdir()) == [
        "cnn-paper-s0-f0.json", "svm-paper-s0-f0.json",
    ]  # fmt: skip
    result = runner.invoke(app, ["tables", "runs", "--no-plots"])
    assert result.exit_code == 0 and "| CNN |" in result.output, result.output

    # RUNS belongs to its features: the same corpus at another size is refused
    result = runner.invoke(app, ["featurize", "corpus", "--out", "f24", "--image-size", "24"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train-all", "f24", "--out", "runs", "--models", "CNN",
                                 "--epochs", "1"])  # fmt: skip
    assert result.exit_code != 0 and "other features" in result.output, result.output


def test_reused_actor_leaks_nothing_between_trials(ray_local, synth_features, tmp_path):
    """A trial that follows another in the same actor gives the record it gives alone."""
    cfg = TrainConfig(epochs=2)
    train_all(synth_features, str(tmp_path / "alone"), ["CNN"], [0], cfg, **QUIET)
    train_all(synth_features, str(tmp_path / "after"), ["att-Res0", "CNN"], [0], cfg,
              max_concurrent=1, **QUIET)  # fmt: skip
    alone, after = (
        {r.model: r for r in load_records(str(tmp_path / d))} for d in ("alone", "after")
    )
    for key in ("curves", "confusion"):
        assert getattr(after["CNN"], key) == getattr(alone["CNN"], key)


def test_trial_slots_count_whole_trials_and_refuse_missing_gpus():
    assert trial_slots({"CPU": 1.0}, TrainConfig(cpus_per_trial=0.2)) == 5
    assert trial_slots({"CPU": 8.0}, TrainConfig(workers_per_trial=3)) == 2
    gpu = TrainConfig(gpus_per_trial=0.25)
    assert trial_slots({"CPU": 16.0, "GPU": 1.0}, gpu) == 4
    with pytest.raises(GridError, match="has none"):
        trial_slots({"CPU": 16.0}, gpu)
    with pytest.raises(GridError, match="needs 4 CPUs"):
        trial_slots({"CPU": 2.0}, TrainConfig(cpus_per_trial=2, workers_per_trial=2))


def test_demo_runs_end_to_end(ray_local, tmp_path):
    args = [
        "demo",
        "--out",
        str(tmp_path / "demo"),
        "--speakers",
        "2",
        "--utterances",
        "3",
        "--image-size",
        "32",
        "--epochs",
        "1",
        "--models",
        "att-Res,LSTM+CNN,SVM",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    tables = (tmp_path / "demo" / "tables.md").read_text()
    assert "| att-Res | 69.8 |" in tables and "| SVM | 50.2 |" in tables
    assert "| AlexNet | 51.7 | missing |" in tables
    assert len(list((tmp_path / "demo" / "runs" / "trials").glob("*.json"))) == 3


def test_data_parallel_trial_trains_on_two_ranks_from_the_trial_checkpoint(
    ray_local, synth_features, tmp_path
):
    """--workers-per-trial 2: Ray Train runs two gloo ranks of one model. They start from
    the trial's checkpoint file, the one an in-process run (or a killed one) leaves."""
    import torch

    from attres.loop import train_model
    from featurize.store import content_fingerprint
    from workflows.grid.checkpoints import FileCheckpoints
    from workflows.grid.data import trial_data

    runs = str(tmp_path / "runs")
    # Batches of 5 split 3/2 over the ranks: their masks draw apart unless synced.
    cfg = TrainConfig(epochs=2, batch_size=5, spec_masks=1, checkpoint_s=0)
    data = load_features(synth_features)
    spec = plan_grid(data, synth_features, content_fingerprint(synth_features), runs, ["CNN"],
                     [0], cfg)[0]  # fmt: skip

    class FirstEpoch:
        def load(self):
            return None

        def save(self, state):
            FileCheckpoints(runs, spec.checkpoint_name).save(state)

    single = train_model("CNN", trial_data(spec).split, cfg, 0, torch.device("cpu"), FirstEpoch())
    ddp = dataclasses.replace(cfg, workers_per_trial=2)
    summary = train_all(synth_features, runs, ["CNN"], [0], ddp, **QUIET)
    assert summary.failed == []
    record = load_records(runs)[0]
    assert record.resumed_from_epoch == 1 and len(record.curves["train_loss"]) == 2
    assert record.curves["test_acc"][0] == single.record["curves"]["test_acc"][0]
    assert np.array(record.confusion).sum() == record.n_test


@pytest.mark.parametrize("protocol", ["paper", "loso"])
def test_a_class_with_one_clip_is_refused_by_name(ray_local, synth_corpus, tmp_path, protocol):
    """One surprise clip: no split has it on both sides (and the paper's cannot be drawn)."""
    from featurize.config import FeatureConfig
    from featurize.pipeline import run_featurize

    wavs = sorted(synth_corpus.rglob("*.wav"))
    surprise = [w for w in wavs if w.parts[-2] == "surprise"]
    kept = [w for w in wavs if w.parts[-2] != "surprise"] + surprise[:1]
    manifest = tmp_path / "one-surprise.csv"
    manifest.write_text(
        "path,speaker,emotion\n" + "".join(f"{w},{w.parts[-3]},{w.parts[-2]}\n" for w in kept)
    )
    features = str(tmp_path / "features")
    run_featurize(synth_corpus, features, FeatureConfig(image_size=16), manifest=manifest, **QUIET)
    args = ["train-all", features, "--out", str(tmp_path / "runs"), "--models", "CNN"]
    result = CliRunner().invoke(app, [*args, "--protocol", protocol])
    assert result.exit_code == 2, result.output
    assert "single recording: surprise (1)" in result.output and "--manifest" in result.output


def test_a_grid_shares_one_read_only_copy_and_names_sizes_beyond_the_store(
    ray_local, synth_features, tmp_path, monkeypatch
):
    """The object store's copy is the features as read, read-only, put there shard by shard
    (no process holds the corpus twice); a grid reading more than the store holds is told
    the sizes (Ray spills the rest to disk)."""
    from workflows.grid import train_all as grid

    index = load_features(synth_features, spectrograms=False)
    assert index.spectrograms is None
    from featurize.store import content_fingerprint

    planned = content_fingerprint(synth_features)
    specs = plan_grid(index, synth_features, planned, str(tmp_path), ["CNN"], [0], TrainConfig())
    heard: list[str] = []
    small = [{"Alive": True, "Resources": {"object_store_memory": 1000}},
             {"Alive": True, "Resources": {"object_store_memory": 2**40}}]  # fmt: skip
    monkeypatch.setattr(grid.ray, "nodes", lambda: small)
    shared = grid.share_grid_features(specs, index, None, heard.append)
    (message,) = heard
    assert "0.00 GiB, more than the 0.00 GiB object store of the smallest node" in message
    images = shared[synth_features].images  # one array per shard, indexed as one
    whole = load_features(synth_features).spectrograms
    rows = np.random.default_rng(0).permutation(len(whole))
    assert images.shape == whole.shape and len(images.shards) > 1
    np.testing.assert_array_equal(images[rows], whole[rows])
    # one copy for every trial: nobody writes into it
    assert not any(shard.flags.writeable for shard in images.shards)
    assert shared[synth_features].functionals == {}  # a network reads no functionals


def test_the_driver_runs_a_grid_without_importing_torch(synth_features, tmp_path) -> None:
    """The driver plans from ids, speakers and labels and the registry's names (torch alone
    is 0.3 GiB of a process): the networks are built, counted and trained in Ray's workers.
    Its own process, as `attres-flow train-all` runs, on a local Ray instance of its own
    (scikit-learn, which draws the splits, it does import)."""
    script = (
        "import sys\n"
        "from workflows.cli import app\n"
        f"app(['train-all', {synth_features!r}, '--out', 'runs', '--models', 'CNN,SVM',\n"
        "     '--epochs', '1', '--cpus-per-trial', '0.5', '--quiet'], standalone_mode=False)\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torch imported: False" in done.stdout
    assert {r.model for r in load_records(str(tmp_path / "runs"))} == {"CNN", "SVM"}
