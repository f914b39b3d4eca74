"""Every command's --help fits an 80-column terminal with nothing cut short."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from workflows.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)


def test_every_command_is_checked() -> None:
    assert {"train-all", "featurize", "predict", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_fits_80_columns_uncut(command: str) -> None:
    args = [command, "--help"] if command else ["--help"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # the panels are drawn at exactly 80 columns, so the check below is of that width
    assert max(len(line) for line in lines) == 80
    assert not [line for line in lines if "…" in line]  # rich's mark of a cut
