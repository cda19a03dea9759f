"""Wall-time speed-up of one 16-trial study run by 1 and 2 local workers and by Ray.

The same study (sklearn:digits, a CNN, 4 data x 4 epoch settings) runs, in one process of
this script and one after the other, with `--jobs 1`, with `--jobs 2`, and as Ray tasks on
a 2-CPU local Ray instance, each into a fresh SQLite file. Prints each wall time and the
speed-ups over one worker. The bar on a 2-core machine: >= 1.7x for 2 local workers.

    .venv/bin/python benchmarks/scaling.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

STUDY = {
    "study": "scaling",
    "task": {"dataset": "sklearn:digits", "metric": "accuracy", "model": "cnn"},
    "levers": {"data": [0.25, 0.5, 0.75, 1.0], "compute": [4, 6, 8, 10]},
    "train": {"model": "medium", "batch_size": 32, "patience": None},
}


def timed(tmp: Path, name: str, extra: dict[str, object], args: list[str]) -> float:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**STUDY, **extra}))
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
        one = timed(tmp, "one", {}, ["--jobs", "1"])
        two = timed(tmp, "two", {}, ["--jobs", "2"])
        ray = timed(tmp, "ray", {"executor": {"kind": "ray", "address": "local"}}, [])
    print(f"16 trials, 1 local worker : {one:6.1f} s")
    print(f"16 trials, 2 local workers: {two:6.1f} s  speed-up {one / two:.2f}x")
    print(
        f"16 trials, Ray (2 CPUs)   : {ray:6.1f} s  speed-up {one / ray:.2f}x "
        "(includes starting Ray)"
    )


if __name__ == "__main__":
    main()
