"""Shared fixtures: small real studies that train in a second or two."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml

# Tests run offline: CodeCarbon and Hugging Face must never reach out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    """Return a free TCP port on loopback for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_study(path: Path, **overrides: object) -> Path:
    """Write a tiny valid study file (wine, 2 data x 2 compute) with ``overrides`` applied."""
    study: dict[str, object] = {
        "study": "tiny",
        "task": {"dataset": "sklearn:wine", "metric": "accuracy", "model": "mlp"},
        "levers": {"data": [0.5, 1.0], "compute": {"epochs": [2, 4]}},
        "train": {"model": "small", "batch_size": 32, "lr": 0.01},
        "seeds": 1,
        "labels": {"usd_per_example": 0.04},
    }
    for key, value in overrides.items():
        if value is None:
            study.pop(key, None)
        else:
            study[key] = value
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    return write_study(tmp_path / "study.yaml")
