"""How the test suite treats its data: a wrong path fails the run, missing data is counted in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pytest(env_data: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FER_KERAS_DATA": env_data}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_a_data_path_that_does_not_exist_fails_the_run(tmp_path):
    done = _pytest(str(tmp_path / "nowhere"), "tests/test_labels.py")
    assert done.returncode != 0
    assert "has no train/ folder" in done.stdout + done.stderr


def test_without_data_one_line_counts_the_skipped_tests():
    done = _pytest("", "tests/test_data_inspect.py")  # set but empty: run as if there were no data
    assert done.returncode == 0, done.stdout[-2000:]
    lines = [line for line in done.stdout.splitlines() if "tests skipped: FER2013 not found" in line]
    assert len(lines) == 1 and int(lines[0].split()[0]) > 0
