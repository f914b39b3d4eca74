"""Progress of a running grid: each trial's epochs, and an estimate of the time left."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from workflows.cli import app
from workflows.grid.config import TrainConfig, TrialSpec
from workflows.grid.progress import GridProgress, TrialState, duration, seconds_left


def spec(model: str, seed: int = 0) -> TrialSpec:
    return TrialSpec(
        model=model, slug=model.lower(), seed=seed, fold=0, split=f"paper-s{seed}-f0",
        features="/f", fingerprint="fp", runs="/runs", storage="/runs", train=TrainConfig(),
        train_rows=(0,), test_rows=(1,),
    )  # fmt: skip


def test_the_estimate_counts_every_unfinished_epoch_at_its_models_pace():
    running = TrialState(spec("CNN"), epochs=10, epoch=4, epoch_s=3.0)  # 6 left x 3 s
    waiting = TrialState(spec("CNN", 1), epochs=10)  # 10 x 3 s, CNN's pace
    unknown = TrialState(spec("AlexNet"), epochs=10)  # not yet measured: the mean pace
    done = TrialState(spec("CNN", 2), epochs=10, epoch=10, epoch_s=5.0, done=True)
    assert seconds_left([running, waiting, unknown, done], slots=1) == (6 + 10 + 10) * 4.0
    assert seconds_left([running, waiting, unknown, done], slots=2) == (6 + 10 + 10) * 2.0
    assert seconds_left([waiting], slots=1) is None  # nothing measured yet
    assert seconds_left([running, done], slots=2) == 6 * 4.0  # one trial left runs alone
    assert (duration(42), duration(720), duration(7500)) == ("42 s", "12 min", "2 h 05 min")


def test_a_pickled_callback_leaves_its_output_behind(monkeypatch):
    """Tune pickles its callbacks; Ray's tqdm_ray may have replaced builtins.print by then."""
    import builtins
    import pickle

    progress = GridProgress([spec("CNN")], slots=1, echo=print, mode="lines")
    monkeypatch.setattr(builtins, "print", lambda *args, **kwargs: None)
    restored = pickle.loads(pickle.dumps(progress))
    assert (restored.count, restored.echo, restored.mode) == (0, None, "lines")


def test_train_all_shows_every_epoch_of_every_trial_and_the_time_left(
    ray_local, synth_features, tmp_path
):
    args = ["train-all", synth_features, "--out", str(tmp_path / "runs"), "--models",
            "CNN,att-Res0", "--epochs", "2", "--batch-size", "8"]  # fmt: skip
    result = CliRunner().invoke(app, args)  # output to a pipe, not a terminal: plain lines
    assert result.exit_code == 0, result.output
    out = result.stdout
    for model in ("CNN", "att-Res0"):
        for epoch in (1, 2):
            assert re.search(rf"^{model} s0 f0  epoch {epoch}/2  train acc \d+ %  [\d.]+ s/epoch"
                             r"  \| \d/2 trials finished, (about .* left|estimating)$",
                             out, re.MULTILINE), (model, epoch, out)  # fmt: skip
    assert "about " in out and " left" in out
    assert re.search(r"^\[2/2\] .* WA [\d.]+ % in", out, re.MULTILINE)
    assert "\x1b" not in out and "\r" not in out  # no control characters in a log

    quiet = CliRunner().invoke(app, [*args[:3], str(tmp_path / "quiet"), *args[4:], "--quiet"])
    assert quiet.exit_code == 0, quiet.output
    assert "epoch" not in quiet.stdout and "[2/2]" in quiet.stdout
