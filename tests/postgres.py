"""A real PostgreSQL server for tests: started on loopback in a temporary folder, then stopped.

scripts/setup.sh installs Debian's postgresql package; the server runs as the `postgres`
system user when the tests run as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL on 127.0.0.1 and yield its SQLAlchemy URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "PostgreSQL is not installed: run scripts/setup.sh (apt-get install postgresql)"
    bindir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="payoff-pg-"))
    data, port = root / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")

    def run(tool: str, *args: str) -> None:
        cmd = _as_postgres([str(bindir / tool), *args])
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    try:
        run("initdb", "-D", str(data), "-A", "trust", "-U", "payoff")
        run(
            "pg_ctl",
            "-D",
            str(data),
            "-w",
            "-l",
            str(root / "log"),
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        )
        run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "payoff", "payoff")
        yield f"postgresql+psycopg2://payoff@127.0.0.1:{port}/payoff"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)
