"""A full disk, for real: a small tmpfs holds the study, a filler takes its free space."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import payoff
from tests.conftest import write_study


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        # Lazily: this process may still hold the SQLite file open.
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def _payoff(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "payoff", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow
def test_a_full_disk_is_exit_2_and_keeps_what_was_stored(small_disk: Path, tmp_path: Path) -> None:
    db = small_disk / "p.db"
    payoff.run(write_study(tmp_path / "s.yaml", levers={"data": [0.5, 1.0]}), storage=db)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 8192))
    grown = write_study(tmp_path / "g.yaml", levers={"data": [0.5, 0.75, 1.0]})

    run = _payoff("run", str(grown), "--storage", str(db), cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "disk holding the study's storage or artifacts is full" in run.stderr
    report = _payoff(
        "report", "tiny", "-o", str(small_disk / "r.html"), "--storage", str(db), cwd=tmp_path
    )
    assert report.returncode == 2 and "the disk is full" in report.stderr, report.stderr
    assert "Traceback" not in run.stderr + report.stderr
    assert not (small_disk / "r.html").exists()

    # What was stored is whole: once there is room, the run goes on from it.
    filler.unlink()
    assert len(payoff.load("tiny", db).trials()) == 2
    again = _payoff("run", str(grown), "--storage", str(db), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    frame = payoff.load("tiny", db).trials_frame()
    assert sorted(frame["data"]) == [0.5, 0.75, 1.0] and (frame["state"] == "COMPLETE").all()
