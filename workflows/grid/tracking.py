"""A grid in the tracker a researcher already has open: MLflow, TensorBoard (``--track``).

Both trackers are Tune callbacks in the driver, as Ray's own ``MLflowLoggerCallback`` is:
only the driver writes to the store, so trials on other nodes need no access to it. Each
trial is one run named after it, holding

* its settings: model, seed, fold, split, protocol, features and every training setting;
* per epoch, as the trial reports it: ``train_loss``, ``train_acc``, ``epoch_s``;
* once its record is written: ``wa``, ``ua``, ``macro_f1``, the per-epoch accuracy on the
  rows it was scored on (``test_acc``, or ``validation_acc`` when the test was unread),
  epochs no live report showed (a data-parallel trial reports to Ray Train, a resumed one
  trained some before), and, for MLflow, the record itself as the artifact ``record.json``.

Runs are grouped by grid: an MLflow experiment named after RUNS, a TensorBoard folder per
trial under one log folder. The defaults lie in RUNS (``RUNS/mlruns``: an SQLite store and
its artifacts; ``RUNS/tensorboard``), so tracking needs no server and works offline. A
trial resumed by a later ``train-all`` continues its MLflow run. The trial records stay
the results of record; the trackers are for watching.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
from ray.tune.logger import LoggerCallback

from featurize.location import Location
from workflows.grid.config import TrialSpec
from workflows.grid.plan import GridError
from workflows.grid.trial import tabled_protocol
from workflows.record import TrialRecord

TRACKERS = {"mlflow": "mlflow", "tensorboard": "tensorboardX"}  # name -> module it needs
LIVE = ("train_loss", "train_acc", "epoch_s")  # what a network's trial reports per epoch
FINAL = ("wa", "ua", "macro_f1")


@dataclass(frozen=True)
class Tracking:
    """Where each tracker asked for writes; "" for its default under RUNS, None for off."""

    mlflow: str | None = None  # tracking URI
    tensorboard: str | None = None  # log folder

    @classmethod
    def parse(cls, values: Sequence[str]) -> Tracking:
        """``--track`` values: ``mlflow``, ``mlflow=URI``, ``tensorboard``,
        ``tensorboard=DIR``, each given alone or in a comma-separated list.

        >>> Tracking.parse(["mlflow,tensorboard=/tmp/tb"])
        Tracking(mlflow='', tensorboard='/tmp/tb')
        """
        targets: dict[str, str] = {}
        for value in values:
            for item in value.split(","):
                name, _, target = item.strip().partition("=")
                if not name:
                    continue
                if name not in TRACKERS:
                    raise ValueError(f"unknown tracker {name!r}; use mlflow[=URI] or tensorboard")
                if name in targets and targets[name] != target:
                    raise ValueError(f"{name} named twice: {targets[name]!r}, {target!r}")
                targets[name] = target
        return cls(**targets)


def tracking_callbacks(tracking: Tracking, runs: str) -> list[LoggerCallback]:
    """The Tune callbacks that log the grid in RUNS where ``tracking`` says; refuses a
    tracker whose package is missing, or a default under a RUNS that is not a local folder."""
    runs = Location(runs)
    callbacks: list[LoggerCallback] = []
    for name, target in (("mlflow", tracking.mlflow), ("tensorboard", tracking.tensorboard)):
        if target is None:
            continue
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise GridError(
                f"--track {name} needs the {TRACKERS[name]} package: "
                "pip install 'attres-flow[track]'"
            )
        if not target and runs.is_uri:
            raise GridError(
                f"--track {name}: RUNS ({runs}) is not a local folder, so the default store "
                f"cannot live in it; name one, --track {name}=..."
            )
    if tracking.mlflow is not None:
        callbacks.append(MLflowTracking(runs, tracking.mlflow))
    if tracking.tensorboard is not None:
        callbacks.append(TensorBoardTracking(tracking.tensorboard or runs.child("tensorboard")))
    return callbacks


def trial_settings(spec: TrialSpec) -> dict[str, Any]:
    """What a trial was: its place in the grid and every training setting it ran with."""
    settings: dict[str, Any] = {
        "model": spec.model,
        "seed": spec.seed,
        "fold": spec.fold,
        "split": spec.split,
        "protocol": tabled_protocol(spec),
        "features": spec.features,
        "fingerprint": spec.fingerprint,
    }
    if spec.test_features:
        settings.update(test_features=spec.test_features, classes=",".join(spec.classes))
    return {**settings, **spec.train.to_dict()}


def read_record(spec: TrialSpec) -> tuple[str, TrialRecord]:
    """The finished trial's record: its JSON text as written, and the typed record."""
    text = Location(spec.runs).child("trials", f"{spec.name}.json").read().decode()
    return text, TrialRecord.from_dict(json.loads(text))


def record_curves(record: TrialRecord) -> dict[str, list[float]]:
    """The record's per-epoch curves under the names the trackers use: its accuracy on the
    scored rows named for what they were (``validation_acc`` when the test was unread)."""
    names = {"test_acc": f"{record.evaluated_on}_acc"}
    return {names.get(key, key): values for key, values in record.curves.items()}


def spec_of(trial: Any) -> TrialSpec:
    return TrialSpec.from_dict(trial.config["spec"])


class MLflowTracking(LoggerCallback):
    """Each trial an MLflow run in the experiment named after RUNS (tag ``attres.trial``)."""

    def __init__(self, runs: str, uri: str = "") -> None:
        self.runs = Location(runs)
        self.uri = uri
        self.client: Any = None
        self.experiment_id = ""
        self.run_ids: dict[str, str] = {}  # trial name -> its run
        self.logged: dict[str, set[int]] = {}  # trial name -> epochs already in its run

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into the experiment state; the client stays behind
        return {**self.__dict__, "client": None}

    def setup(self, *args: Any, **kwargs: Any) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline, and asked nothing
        from mlflow.tracking import MlflowClient

        artifacts = None
        uri = self.uri
        if not uri:  # the default: an SQLite store in RUNS, its artifacts beside it
            folder = Path(self.runs, "mlruns")
            folder.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{folder / 'mlflow.db'}"
            artifacts = (folder / "artifacts").as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        name = str(self.runs)
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            self.experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
        else:
            self.experiment_id = experiment.experiment_id

    def log_trial_start(self, trial: Any) -> None:
        spec = spec_of(trial)
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`attres.trial` = '{spec.name}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if found:  # an earlier attempt at this trial (stopped, or failed): continue its run
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            steps = self.client.get_metric_history(run_id, "train_loss")
            self.logged[spec.name] = {m.step for m in steps}
        else:
            tags = {"attres.trial": spec.name, "attres.runs": str(self.runs)}
            run_id = self.client.create_run(self.experiment_id, tags=tags, run_name=spec.name)
            run_id = run_id.info.run_id
            self._log(run_id, params=trial_settings(spec))
            self.logged[spec.name] = set()
        self.run_ids[spec.name] = run_id

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        name = spec_of(trial).name
        epoch = result.get("epoch")
        if name not in self.run_ids or epoch is None or epoch in self.logged[name]:
            return
        self._log(self.run_ids[name], {k: result[k] for k in LIVE if k in result}, epoch)
        self.logged[name].add(epoch)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        spec = spec_of(trial)
        run_id = self.run_ids.pop(spec.name, None)
        if run_id is None:
            return
        if not failed:
            text, record = read_record(spec)
            logged = self.logged[spec.name]
            for key, values in record_curves(record).items():
                for epoch, value in enumerate(values, start=1):
                    if key not in LIVE or epoch not in logged:
                        self._log(run_id, {key: value}, epoch)
            self._log(run_id, {key: getattr(record, key) for key in FINAL}, record.epochs or 0)
            self.client.set_tag(run_id, "attres.evaluated_on", record.evaluated_on)
            self.client.log_text(run_id, text, "record.json")
        self.client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")
        self.logged.pop(spec.name, None)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for run_id in self.run_ids.values():  # stopped (Ctrl-C): a re-run continues them
            self.client.set_terminated(run_id, status="KILLED")
        self.run_ids.clear()

    def _log(
        self,
        run_id: str,
        metrics: dict[str, float] | None = None,
        step: int = 0,
        params: dict[str, Any] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param

        now = int(1000 * time.time())
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
        )


class TensorBoardTracking(LoggerCallback):
    """Each trial a TensorBoard run, ``LOGDIR/<trial>``: scalars per epoch, the final
    figures, and its settings as HParams (TensorBoard's HPARAMS tab compares trials)."""

    def __init__(self, logdir: str) -> None:
        self.logdir = Location(logdir)
        self.writers: dict[str, Any] = {}  # trial name -> its SummaryWriter
        self.first_epoch: dict[str, int] = {}  # the first epoch this attempt reported
        self.earlier: set[str] = set()  # trials whose folder had events before this attempt

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "writers": {}}  # Tune pickles callbacks; writers stay

    def _writer(self, name: str, purge_step: int | None = None) -> Any:
        from tensorboardX import SummaryWriter

        if name not in self.writers:
            folder = self.logdir.child(name)
            fs, path = folder.filesystem()
            found = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
            attempts = sum(f.base_name.startswith("events.out.tfevents") for f in found)
            if attempts:
                self.earlier.add(name)
            # purge_step: a resumed trial's epochs from this one on replace the earlier ones.
            # TensorBoard reads a run's files in name order, and the name starts with the
            # second it was opened: the attempt's number keeps two attempts within one
            # second apart and in order (a later file read first purges the earlier epochs)
            self.writers[name] = SummaryWriter(
                folder, purge_step=purge_step, filename_suffix=f".{attempts:04d}"
            )
        return self.writers[name]

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        name = spec_of(trial).name
        epoch = result.get("epoch")
        if epoch is None:
            return
        self.first_epoch.setdefault(name, epoch)
        writer = self._writer(name, purge_step=epoch)
        for key in LIVE:
            if key in result:
                writer.add_scalar(key, result[key], epoch)
        writer.flush()  # the tracker is for watching: each epoch shows when it ends

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        from tensorboardX.summary import hparams

        spec = spec_of(trial)
        first = self.first_epoch.pop(spec.name, None)
        if failed and spec.name not in self.writers:
            return  # nothing written: keep what an earlier attempt wrote
        writer = self._writer(spec.name, purge_step=None if first else 1)
        if not failed:
            _, record = read_record(spec)
            # live keys: the epochs this attempt did not report and no earlier attempt wrote
            # (with no live report, the writer purged every earlier epoch: all are written)
            unseen = math.inf if first is None else 1 if spec.name in self.earlier else first
            for key, values in record_curves(record).items():
                for epoch, value in enumerate(values, start=1):
                    if key not in LIVE or epoch < unseen:
                        writer.add_scalar(key, value, epoch)
            final = {key: getattr(record, key) for key in FINAL}
            for key, value in final.items():
                writer.add_scalar(key, value, record.epochs or 0)
            settings = {
                k: v if isinstance(v, (int, float, str, bool)) else str(v)
                for k, v in trial_settings(spec).items()
            }
            for summary in hparams(settings, final):  # HPARAMS: settings beside the figures
                writer.file_writer.add_summary(summary)
        writer.close()
        self.writers.pop(spec.name, None)
        self.earlier.discard(spec.name)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Tune retries the trial from its checkpoint: its next epochs replace the later ones."""
        name = spec_of(trial).name
        self.first_epoch.pop(name, None)
        if name in self.writers:
            self.writers.pop(name).close()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
