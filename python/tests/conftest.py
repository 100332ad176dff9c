"""Shared fixtures: the repository (for its scenarios) and the CLI to compare with (NEUROTWIN_REPO, NEUROTWIN_CLI,
set by scripts/test-python.sh)."""

import os
from pathlib import Path

import pytest

REPO = Path(os.environ.get("NEUROTWIN_REPO", Path(__file__).resolve().parents[2]))
CLI = Path(os.environ.get("NEUROTWIN_CLI", REPO / "target" / "debug" / "neurotwin"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def cli() -> Path:
    if not CLI.exists():
        pytest.fail(f"the CLI is not built at {CLI} (set NEUROTWIN_CLI)")
    return CLI


def short_touch(duration_ms: float = 200.0) -> str:
    """The bundled gentle-touch scenario (C. elegans, built into the binary) shortened to `duration_ms`, with the
    touch and the read-out windows scaled with it (touch from 30 % to 70 % of the run)."""
    text = (REPO / "scenarios" / "celegans_touch.toml").read_text()
    text = text[: text.index("[[window]]")]
    d = duration_ms
    text = text.replace("duration_ms = 1000.0", f"duration_ms = {d}")
    text = text.replace("start_ms = 300.0\nstop_ms = 700.0", f"start_ms = {0.3 * d}\nstop_ms = {0.7 * d}")
    for label, a, b in [("before", 0.0, 0.3 * d), ("touch", 0.3 * d, 0.7 * d), ("after", 0.7 * d, d)]:
        text += f'\n[[window]]\nlabel = "{label}"\nstart_ms = {a}\nstop_ms = {b}\n'
    return text
