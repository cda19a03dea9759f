"""Files payoff writes survive being cut short, stay in their folder, and fail clearly."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import payoff
from payoff._files import safe_stem, write_atomic
from payoff.cli import app
from tests.conftest import write_study

runner = CliRunner()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("files")
    db = tmp / "p.db"
    payoff.run(write_study(tmp / "s.yaml", levers={"data": [0.5, 1.0]}), storage=db)
    return tmp, db


def test_an_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    out = write_atomic(tmp_path / "sub" / "r.html", "<html>new</html>")
    assert out.read_text() == "<html>new</html>"
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]


@pytest.mark.slow
def test_killing_report_at_any_moment_keeps_the_previous_report(
    study: tuple[Path, Path], tmp_path: Path
) -> None:
    _, db = study
    report = tmp_path / "report.html"
    previous = "<html>the report a lead already read</html>"
    report.write_text(previous)
    cmd = [sys.executable, "-m", "payoff", "report", "tiny", "--storage", str(db)]
    rng = random.Random(0)
    seen_new = False
    for delay in [rng.uniform(0.5, 6.0) for _ in range(4)] + [60.0]:
        proc = subprocess.Popen(
            [*cmd, "-o", str(report)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        text = report.read_text()
        # Either the previous report, whole, or a whole new one: never a truncated file.
        assert text == previous or text.rstrip().endswith("</html>"), len(text)
        seen_new |= text != previous
    assert seen_new  # the last run was given time to finish


def test_an_unwritable_report_path_is_exit_2(study: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = study
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    result = runner.invoke(
        app, ["report", "tiny", "--storage", str(db), "-o", str(blocked / "r.html")]
    )
    assert result.exit_code == 2, result.output
    assert "cannot write the report to" in result.output
    exported = runner.invoke(
        app, ["export", "tiny", "--storage", str(db), "-o", str(blocked / "m.onnx")]
    )
    assert exported.exit_code == 2, exported.output
    assert "cannot write the exported model to" in exported.output


def test_a_study_name_from_storage_never_becomes_a_path_outside_the_folder(
    study: tuple[Path, Path], tmp_path: Path
) -> None:
    src, _ = study
    shared = tmp_path / "shared"
    shutil.copytree(src, shared)  # the SQLite file and the artifacts folder beside it
    copy = shared / "p.db"
    # A name written by another tool on a shared storage.
    with sqlite3.connect(copy) as con:
        con.execute("UPDATE studies SET study_name = '../../escaped' WHERE study_name = 'tiny'")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        result = runner.invoke(app, ["export", "../../escaped", "--storage", str(copy)])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    written = [p.name for p in work.iterdir()]
    assert len(written) == 1 and written[0].startswith(safe_stem("../../escaped"))
    assert not list(tmp_path.glob("escaped*")) and not list(src.glob("escaped*"))


def test_safe_stems() -> None:
    assert safe_stem("digits-demo") == "digits-demo"
    assert "/" not in safe_stem("../../x") and not safe_stem("../../x").startswith(".")
    assert safe_stem("...") == "study"


def test_a_study_moved_without_its_artifacts_is_exit_2(
    study: tuple[Path, Path], tmp_path: Path
) -> None:
    _, db = study
    alone = tmp_path / "alone.db"
    shutil.copy(db, alone)
    result = runner.invoke(app, ["export", "tiny", "--storage", str(alone), "-o", "m.onnx"])
    assert result.exit_code == 2, result.output
    assert "is not in the artifact folder" in result.output
