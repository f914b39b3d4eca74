"""The documentation: the site builds with no warning (a broken link or anchor, a page
missing from the navigation fail it) and no link of its pages leads nowhere, and the README
stays a short front door whose links and test command are true."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_site_builds_strictly_with_the_cli_reference(tmp_path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    assert "WARNING" not in built.stderr
    reference = (site / "cli" / "index.html").read_text()
    for command in ("featurize", "train-all", "predict", "report"):
        assert f"attres-flow {command}" in reference
    assert "--track" in reference and "--functionals" in reference
    assert (site / "results" / "index.html").is_file()  # docs/results/README.md
    assert not list((site / "results").rglob("*.json"))  # published records are data
    assert broken_links(site) == []


def broken_links(site: Path) -> list[str]:
    """Every href and src of the built pages that names a file of the site the build did not
    write (mkdocs checks the Markdown's links; this checks what the theme and raw HTML add)."""
    broken = []
    for page in site.rglob("*.html"):
        for link in re.findall(r'(?:href|src)="([^"#?]+)', page.read_text()):
            if re.match(r"[a-z]+:", link):  # https:, mailto:, data:
                continue
            path = unquote(link)
            target = site / path.lstrip("/") if path.startswith("/") else page.parent / path
            if not (target.is_file() or (target / "index.html").is_file()):
                broken.append(f"{page.relative_to(site)}: {link}")
    return broken


def test_readme_is_a_short_front_door() -> None:
    lines = README.splitlines()
    assert len(lines) <= 150
    first_screen = "\n".join(lines[:30])
    assert "attres-flow featurize" in first_screen and "(docs/corpus.md)" in first_screen
    assert "mkdocs serve" in README


def test_readme_runs_the_tests_as_ci_does() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line.startswith(("command -v", "pip install"))]
    assert commands == [
        "command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)",
        "pip install -e '.[test]' && python -m pytest",
    ]
    assert "\n".join(commands) in README


def test_readme_links_lead_somewhere() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if "://" not in t]
    assert local and [t for t in local if not (ROOT / t).exists()] == []


@pytest.mark.parametrize("script", ["corpora_table.py", "recipe_table.py"])
def test_the_results_tables_are_what_their_scripts_print_from_the_records(script) -> None:
    """docs/results/README.md's tables across corpora are read from the published folders,
    not typed: a table that differs from its script's output is stale."""
    printed = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "results" / script)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert printed in (ROOT / "docs" / "results" / "README.md").read_text()
