"""Wall-time speed-up of 16-trial studies run by 1 and 2 local workers and by Ray.

Each study runs, one after the other in this one run, with `--jobs 1`, with `--jobs 2`, and
as Ray tasks on a 2-CPU local Ray instance, each into a fresh SQLite file. Prints each wall
time and the speed-ups over one worker. The bar on a 2-core machine: >= 1.7x for 2 local
workers.

    .venv/bin/python benchmarks/scaling.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

# Two kinds of study: trials bound by Python work per step (a small MLP, small batches: one
# core each, so workers scale) and trials bound by tensor maths (a CNN, which torch already
# spreads over both cores with its own threads, so a second worker has little left to use).
STUDIES = {
    "small MLP (Python-bound)": {
        "task": {"dataset": "sklearn:breast_cancer", "metric": "accuracy", "model": "mlp"},
        "levers": {"data": [0.25, 0.5, 0.75, 1.0], "compute": [60, 80, 100, 120]},
        "train": {"model": "small", "batch_size": 8, "patience": None},
    },
    "CNN (tensor-bound)": {
        "task": {"dataset": "sklearn:digits", "metric": "accuracy", "model": "cnn"},
        "levers": {"data": [0.25, 0.5, 0.75, 1.0], "compute": [4, 6, 8, 10]},
        "train": {"model": "medium", "batch_size": 32, "patience": None},
    },
}


def timed(tmp: Path, name: str, study: dict[str, object], args: list[str]) -> float:
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
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for i, (label, study) in enumerate(STUDIES.items()):
            one = timed(tmp, f"one{i}", study, ["--jobs", "1"])
            two = timed(tmp, f"two{i}", study, ["--jobs", "2"])
            ray_study = {**study, "executor": {"kind": "ray", "address": "local"}}
            ray = timed(tmp, f"ray{i}", ray_study, [])
            print(f"{label}: 16 trials")
            print(f"  1 local worker : {one:6.1f} s")
            print(f"  2 local workers: {two:6.1f} s  speed-up {one / two:.2f}x")
            print(
                f"  Ray, 2 CPUs    : {ray:6.1f} s  speed-up {one / ray:.2f}x (incl. starting Ray)"
            )


if __name__ == "__main__":
    main()
