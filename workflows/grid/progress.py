"""What a researcher sees while a grid runs: each trial's epochs, and when the grid will end.

Tune hands every result a trial reports to ``GridProgress`` (a Tune callback, in the driver):
a network's trial reports each epoch (``attres.loop.train_model``'s ``report``), and its
last report is its record's WA. From those alone, no extra pass over the data, it shows:

* ``lines`` (no terminal: CI, ``ray job submit``, a log file): one plain line per epoch
  per trial, with the grid's finished/total and estimated time left, no control characters;
* ``live`` (a terminal): the same as a table redrawn in place (``rich``, which Typer brings);
* ``quiet``: only the ``[k/N]`` line of each finished trial.

The estimate adds up the epochs left of every unfinished trial, each at the measured seconds
per epoch of its model (a model not yet measured: the mean of those measured), and divides
by the trials that run at once (never below the longest trial's rest). Data-parallel
trials report their epochs to Ray Train, not here: they show as started and finished only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray import tune

from workflows.grid.config import TrialSpec

MODES = ("auto", "live", "lines", "quiet")


@dataclass
class TrialState:
    spec: TrialSpec
    epochs: int  # to run; 0 for a model without epochs (the SVM)
    epoch: int = 0  # done
    train_acc: float | None = None
    epoch_s: float | None = None  # the last epoch's training seconds
    done: bool = False

    @property
    def label(self) -> str:
        return f"{self.spec.model} s{self.spec.seed} f{self.spec.fold}"

    def line(self) -> str:
        acc = "" if self.train_acc is None else f"  train acc {100 * self.train_acc:.0f} %"
        pace = "" if self.epoch_s is None else f"  {self.epoch_s:.1f} s/epoch"
        return f"{self.label}  epoch {self.epoch}/{self.epochs}{acc}{pace}"


def seconds_left(trials: list[TrialState], slots: int) -> float | None:
    """The grid's time to the end: epochs left x seconds per epoch of their model, summed
    and shared by ``slots`` trials at once; None until some model has been measured."""
    measured: dict[str, list[float]] = {}
    for t in trials:
        if t.epoch_s is not None:
            measured.setdefault(t.spec.model, []).append(t.epoch_s)
    if not measured:
        return None
    pace = {model: sum(v) / len(v) for model, v in measured.items()}
    fallback = sum(pace.values()) / len(pace)
    left = [(t.epochs - t.epoch) * pace.get(t.spec.model, fallback) for t in trials if not t.done]
    if not left:
        return 0.0
    # shared by the trials that run at once, but never less than the longest trial's rest
    return max(sum(left) / min(max(1, slots), len(left)), max(left))


def duration(seconds: float) -> str:
    """E.g. "45 s", "12 min", "2 h 05 min"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"


class GridProgress(tune.Callback):
    """Tune callback: the running trials' epochs, the [k/N] line of each finished trial and
    an estimate of the time left, shown as ``mode`` says (``auto``: live on a terminal)."""

    def __init__(
        self,
        specs: list[TrialSpec],
        slots: int,
        echo: Callable[[str], None] = print,
        mode: str = "auto",
        epochs: Callable[[TrialSpec], int] = lambda spec: spec.train.epochs,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {MODES}, got {mode!r}")
        if mode == "auto":
            mode = "live" if sys.stdout.isatty() else "lines"
        self.mode, self.slots, self.echo = mode, slots, echo
        self.trials = {s.name: TrialState(s, epochs(s)) for s in specs}
        self.count = 0
        self.failed: list[str] = []  # names of the trials that failed
        self.live: Any = None  # rich.live.Live while a live display is on

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into the experiment state. The output stays behind:
        # `print` bound before a library replaced `builtins.print` (Ray's tqdm_ray does) no
        # longer pickles, nor does a live display, and the state is never restored with them.
        return {**self.__dict__, "echo": None, "live": None}

    def summary(self) -> str:
        done = sum(t.done for t in self.trials.values())
        left = seconds_left(list(self.trials.values()), self.slots)
        estimate = "estimating" if left is None else f"about {duration(left)} left"
        return f"{done}/{len(self.trials)} trials finished, {estimate}"

    def on_trial_result(self, iteration, trials, trial, result, **info):
        state = self.trials.get(trial_name(trial))
        if state is None or "epoch" not in result:
            return
        state.epoch, state.train_acc = result["epoch"], result.get("train_acc")
        state.epoch_s = result.get("epoch_s", state.epoch_s)
        if self.mode == "lines":
            self.echo(f"{state.line()}  | {self.summary()}")
        elif self.mode == "live":
            self._draw()

    def on_trial_complete(self, iteration, trials, trial, **info):
        state = self.trials[trial_name(trial)]
        state.done, state.epoch = True, state.epochs
        wa, wall = trial.last_result.get("wa"), trial.last_result.get("wall_s")
        self._finished(
            f"{state.spec.model} seed {state.spec.seed} fold {state.spec.fold}: "
            f"WA {100 * wa:.1f} % in {wall:.1f} s"
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        name = trial_name(trial)
        self.trials[name].done = True
        self.failed.append(name)
        self._finished(f"{name}: FAILED (details in {trial.local_path})")

    def _finished(self, what: str) -> None:
        self.count += 1
        line = f"[{self.count}/{len(self.trials)}] {what}"
        if self.live is not None:
            self.live.console.print(line, markup=False, highlight=False)
            self._draw()
        else:
            self.echo(line)

    def _draw(self) -> None:
        from rich.live import Live
        from rich.text import Text

        running = [t for t in self.trials.values() if t.epoch and not t.done]
        text = Text("\n".join([*(t.line() for t in running), self.summary()]))
        if self.live is None:
            self.live = Live(text, auto_refresh=False, transient=True)
            self.live.start()
        self.live.update(text, refresh=True)

    def close(self) -> None:
        """End a live display (the experiment ended, or was stopped)."""
        if self.live is not None:
            self.live.stop()
            self.live = None

    def on_experiment_end(self, trials, **info):
        self.close()


def trial_name(trial) -> str:
    return TrialSpec.from_dict(trial.config["spec"]).name
