"""--track: a real grid logged to a real local MLflow store and real TensorBoard event files,
read back with MLflow's search and TensorBoard's own event reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from typer.testing import CliRunner

from workflows.cli import app
from workflows.grid.config import TrainConfig, TrialSpec
from workflows.grid.plan import GridError
from workflows.grid.tracking import (
    MLflowTracking,
    TensorBoardTracking,
    Tracking,
    tracking_callbacks,
)
from workflows.grid.train_all import train_all
from workflows.record import TrialRecord

TRIALS = {"att-res0-paper-s0-f0", "svm-paper-s0-f0"}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="module")
def tracked(ray_local, synth_features, tmp_path_factory):
    runs = str(tmp_path_factory.mktemp("tracked") / "runs")
    summary = train_all(
        synth_features, runs, ["att-Res0", "SVM"], [0], TrainConfig(epochs=2),
        progress=lambda _: None, track=Tracking.parse(["mlflow,tensorboard"]),
    )  # fmt: skip
    assert (summary.finished, summary.failed) == (2, [])
    return Path(runs)


def record_of(runs: Path, trial: str) -> TrialRecord:
    return TrialRecord.from_dict(json.loads((runs / "trials" / f"{trial}.json").read_text()))


def store(runs: Path) -> str:
    return f"sqlite:///{runs / 'mlruns' / 'mlflow.db'}"


def test_each_trial_is_an_mlflow_run_of_the_grid(tracked, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store(tracked))
    found = mlflow.search_runs(experiment_names=[str(tracked)])
    assert sorted(found["tags.mlflow.runName"]) == sorted(TRIALS)
    assert set(found["status"]) == {"FINISHED"}
    for _, run in found.iterrows():
        record = record_of(tracked, run["tags.attres.trial"])
        assert run["params.model"] == record.model and run["params.seed"] == "0"
        assert run["params.epochs"] == "2" and run["params.protocol"] == "paper"
        assert run["params.lr"] == "0.001" and run["params.normalize"] == "global"
        for key in ("wa", "ua", "macro_f1"):
            assert run[f"metrics.{key}"] == pytest.approx(getattr(record, key))
        assert run["artifact_uri"].startswith((tracked / "mlruns" / "artifacts").as_uri())
        saved = mlflow.artifacts.download_artifacts(
            run_id=run["run_id"], artifact_path="record.json", dst_path=str(tracked / "dl")
        )
        assert Path(saved).read_text() == (tracked / "trials" / f"{record.trial}.json").read_text()


def test_mlflow_holds_every_epoch_once(tracked):
    client = mlflow.tracking.MlflowClient(store(tracked))
    experiment = client.get_experiment_by_name(str(tracked))
    (run,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`attres.trial` = 'att-res0-paper-s0-f0'"
    )
    record = record_of(tracked, "att-res0-paper-s0-f0")
    for key, name in (("train_loss", "train_loss"), ("train_acc", "train_acc"),
                      ("test_acc", "test_acc")):  # fmt: skip
        history = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in history] == [1, 2]
        assert [m.value for m in history] == pytest.approx(record.curves[key])
    assert len(client.get_metric_history(run.info.run_id, "epoch_s")) == 2
    (svm,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`attres.trial` = 'svm-paper-s0-f0'"
    )
    assert client.get_metric_history(svm.info.run_id, "train_loss") == []


def test_tensorboard_events_read_back(tracked):
    record = record_of(tracked, "att-res0-paper-s0-f0")
    events = EventAccumulator(str(tracked / "tensorboard" / "att-res0-paper-s0-f0")).Reload()
    assert {"train_loss", "train_acc", "epoch_s", "test_acc", "wa", "ua"} <= set(
        events.Tags()["scalars"]
    )
    loss = events.Scalars("train_loss")
    assert [e.step for e in loss] == [1, 2]
    assert [e.value for e in loss] == pytest.approx(record.curves["train_loss"])
    assert events.Scalars("ua")[-1].value == pytest.approx(record.ua)
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    settings = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert settings["model"].string_value == "att-Res0" and settings["epochs"].number_value == 2
    svm = EventAccumulator(str(tracked / "tensorboard" / "svm-paper-s0-f0")).Reload()
    assert svm.Scalars("wa")[-1].value == pytest.approx(record_of(tracked, "svm-paper-s0-f0").wa)


def a_trial(runs: Path, tracked: Path, name: str = "att-res0-paper-s0-f0") -> SimpleNamespace:
    """A Tune trial as the callbacks see it, of a copy of a finished trial of the grid."""
    (runs / "trials").mkdir(parents=True, exist_ok=True)
    shutil.copy(tracked / "trials" / f"{name}.json", runs / "trials")
    spec = TrialSpec(
        model="att-Res0", slug="att-res0", seed=0, fold=0, split="paper-s0-f0",
        features="/features", fingerprint="f" * 16, runs=str(runs), storage=str(runs),
        train=TrainConfig(epochs=2), train_rows=(), test_rows=(),
    )  # fmt: skip
    return SimpleNamespace(config={"spec": spec.to_dict()})


def epoch(n: int, loss: float) -> dict:
    return {"epoch": n, "train_loss": loss, "train_acc": 0.5, "epoch_s": 1.0}


def test_a_resumed_trial_continues_its_runs(tracked, tmp_path, monkeypatch):
    """Stopped after epoch 1, resumed from its checkpoint by a later train-all (which
    reports epoch 1 again only if it had no checkpoint): one MLflow run, every epoch once.
    Both attempts open their event files within one second (the name's time is frozen)."""
    from tensorboardX import event_file_writer

    monkeypatch.setattr(event_file_writer, "time", SimpleNamespace(time=lambda: 1.8e9))
    runs = tmp_path / "runs"
    trial = a_trial(runs, tracked)
    first = MLflowTracking(str(runs))
    tensorboard = TensorBoardTracking(str(runs / "tensorboard"))
    first.setup()
    first.log_trial_start(trial)
    for callback in (first, tensorboard):
        callback.log_trial_result(1, trial, epoch(1, 0.9))
        callback.on_experiment_end([])
    client = first.client
    (run,) = client.search_runs([first.experiment_id])
    assert run.info.status == "KILLED"

    again = MLflowTracking(str(runs))
    tensorboard = TensorBoardTracking(str(runs / "tensorboard"))
    again.setup()
    again.log_trial_start(trial)
    for callback in (again, tensorboard):
        callback.log_trial_result(1, trial, epoch(2, 0.7))
        callback.log_trial_end(trial)
    (run,) = client.search_runs([again.experiment_id])
    assert run.info.status == "FINISHED"
    loss = client.get_metric_history(run.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in loss] == [(1, pytest.approx(0.9)), (2, pytest.approx(0.7))]
    events = EventAccumulator(str(runs / "tensorboard" / "att-res0-paper-s0-f0")).Reload()
    assert [(e.step, e.value) for e in events.Scalars("train_loss")] == [
        (1, pytest.approx(0.9)),
        (2, pytest.approx(0.7)),
    ]


def test_a_trial_with_no_live_epochs_gets_its_curves_from_its_record(tracked, tmp_path):
    """A data-parallel trial reports its epochs to Ray Train, not to the grid's callbacks."""
    runs = tmp_path / "runs"
    trial = a_trial(runs, tracked)
    record = record_of(tracked, "att-res0-paper-s0-f0")
    tensorboard = TensorBoardTracking(str(runs / "tensorboard"))
    tensorboard.log_trial_end(trial)
    events = EventAccumulator(str(runs / "tensorboard" / "att-res0-paper-s0-f0")).Reload()
    loss = events.Scalars("train_loss")
    assert [e.value for e in loss] == pytest.approx(record.curves["train_loss"])


def test_track_values_are_read_or_refused(tmp_path):
    assert Tracking.parse(["mlflow=http://127.0.0.1:5000", "tensorboard"]) == Tracking(
        mlflow="http://127.0.0.1:5000", tensorboard=""
    )
    assert Tracking.parse([]) == Tracking()
    with pytest.raises(ValueError, match="wandb"):
        Tracking.parse(["wandb"])
    with pytest.raises(ValueError, match="named twice"):
        Tracking.parse(["mlflow=a,mlflow=b"])
    with pytest.raises(GridError, match="not a local folder"):
        tracking_callbacks(Tracking(mlflow=""), "s3://bucket/runs")
    assert tracking_callbacks(Tracking(), str(tmp_path)) == []
    result = CliRunner().invoke(
        app, ["train-all", str(tmp_path), "--out", str(tmp_path / "r"), "--track", "wandb"]
    )
    assert result.exit_code == 2 and "unknown tracker 'wandb'" in result.output
