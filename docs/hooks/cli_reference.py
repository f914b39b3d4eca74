"""MkDocs hook: the CLI reference page (``cli.md``), rendered from the CLI's own help when
the site is built, by Typer's ``typer MODULE utils docs``, so it cannot go stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "cli.md"
NOTE = (
    "Generated from the commands' own `--help` when this site is built "
    "(`docs/hooks/cli_reference.py`); the other pages explain how the options work together."
)


def cli_reference(root: Path) -> str:
    """Every command's usage, arguments and options, as ``attres-flow CMD --help`` gives them."""
    # this checkout's CLI first on the path, whatever else is installed
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    text = subprocess.run(
        [sys.executable, "-m", "typer", "workflows.cli", "utils", "docs",
         "--name", "attres-flow", "--title", "CLI reference"],
        cwd=root, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    title, _, rest = text.partition("\n\n")
    return f"{title}\n\n{NOTE}\n\n{rest.strip()}\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    files.append(File.generated(config, PAGE, content=cli_reference(root)))
    return files
