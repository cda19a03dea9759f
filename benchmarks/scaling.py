"""Wall-time speed-up of 16-trial studies run by 1 and 2 local workers and by Ray.

Each study runs, one after the other in this one run, with `--jobs 1`, with `--jobs 2`, and
as Ray tasks on a 2-CPU local Ray instance, each into a fresh SQLite file. Prints each wall
time (the whole `payoff run` command) and the speed-ups over one worker, and beside them the
trials phase alone (first trial started to last trial stored, from the storage): the rest is
the command's fixed start-up (imports of torch, scikit-learn and CodeCarbon, loading the
data, warming up), which no number of workers shortens. The bar on a 2-core machine:
>= 1.7x for 2 local workers.

    .venv/bin/python benchmarks/scaling.py
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

# Two kinds of study: trials bound by Python work per step (a small MLP, small batches: one
# core each, so workers scale) and trials bound by tensor maths (a CNN, which torch already
# spreads over both cores with its own threads, so a second worker has little left to use).
STUDIES = {
    "small MLP (Python-bound)": {
        "task": {"dataset": "sklearn:breast_cancer", "metric": "accuracy", "model": "mlp"},
        # Trials of ~10 s: long enough that the command's ~12 s start-up does not dominate.
        "levers": {"data": [0.25, 0.5, 0.75, 1.0], "compute": [120, 160, 200, 240]},
        "train": {"model": "small", "batch_size": 8, "patience": None},
    },
    "CNN (tensor-bound)": {
        "task": {"dataset": "sklearn:digits", "metric": "accuracy", "model": "cnn"},
        "levers": {"data": [0.25, 0.5, 0.75, 1.0], "compute": [4, 6, 8, 10]},
        "train": {"model": "medium", "batch_size": 32, "patience": None},
    },
}


def timed(tmp: Path, name: str, study: dict[str, object], args: list[str]) -> tuple[float, float]:
    """Return the command's wall time and its trials phase, in seconds."""
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"study": "scaling", **study}))
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "payoff",
            "run",
            str(path),
            "--storage",
            str(tmp / f"{name}.db"),
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp,
    )
    wall = time.perf_counter() - start
    with sqlite3.connect(tmp / f"{name}.db") as con:
        first, last = con.execute(
            "SELECT MIN(datetime_start), MAX(datetime_complete) FROM trials"
        ).fetchone()
    phase = datetime.fromisoformat(last) - datetime.fromisoformat(first)
    return wall, phase.total_seconds()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for i, (label, study) in enumerate(STUDIES.items()):
            one = timed(tmp, f"one{i}", study, ["--jobs", "1"])
            two = timed(tmp, f"two{i}", study, ["--jobs", "2"])
            ray_study = {**study, "executor": {"kind": "ray", "address": "local"}}
            ray = timed(tmp, f"ray{i}", ray_study, [])
            print(f"{label}: 16 trials; wall time of the command, then of its trials phase")
            print(f"  1 local worker : {one[0]:6.1f} s {one[1]:6.1f} s")
            for name, t in (("2 local workers", two), ("Ray, 2 CPUs    ", ray)):
                print(
                    f"  {name}: {t[0]:6.1f} s {t[1]:6.1f} s  speed-up {one[0] / t[0]:.2f}x, "
                    f"trials phase {one[1] / t[1]:.2f}x"
                )
            print("  (Ray's wall time includes starting a local Ray instance)")


if __name__ == "__main__":
    main()
