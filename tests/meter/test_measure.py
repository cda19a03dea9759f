from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch

from payoff._errors import PayoffError
from payoff.meter import ENERGY_OFF, Reading, measure


def _train_steps(n_steps: int = 50) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(256, 64), torch.randint(0, 4, (256,))
    for _ in range(n_steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def test_measure_a_small_torch_workload() -> None:
    with measure("trial-0") as m:
        _train_steps()
    r = m.reading
    assert isinstance(r, Reading)
    assert r.wall_s > 0 and r.cpu_s > 0
    assert r.peak_mem_bytes > 0
    if sys.platform == "linux":
        assert r.peak_mem_method.startswith("vmhwm")
    assert math.isnan(r.energy_kwh) and math.isnan(r.co2_kg)
    assert r.energy_method == ENERGY_OFF


def test_peak_memory_grows_with_a_big_allocation() -> None:
    with measure("small") as small:
        _train_steps(5)
    # Linux lets a process reset its peak RSS (/proc/self/clear_refs): the per-trial peak.
    assert small.reading.peak_mem_method == "vmhwm"
    with measure("big") as big:
        _train_steps(5)
        array = np.ones(25_000_000)  # 200 MB, touched
        del array
    grown = big.reading.peak_mem_bytes - small.reading.peak_mem_bytes
    assert grown > 150e6
    # The reset really happened: a later small block no longer sees the 200 MB peak.
    with measure("small-again") as again:
        _train_steps(5)
    assert again.reading.peak_mem_bytes < big.reading.peak_mem_bytes - 150e6


def test_reading_is_available_only_after_the_block() -> None:
    with measure("trial-1") as m:
        with pytest.raises(PayoffError, match="after its `with measure"):
            _ = m.reading
    assert m.reading.wall_s >= 0


def test_reading_is_taken_when_the_block_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        with measure("trial-2") as m:
            _train_steps(2)
            _ = 1 / 0
    assert m.reading.wall_s > 0 and m.reading.cpu_s > 0


def test_cpu_time_is_bounded_by_the_usable_cores() -> None:
    with measure("threads") as m:
        a = torch.randn(600, 600)
        for _ in range(20):
            a = torch.tanh(a @ a / 600)
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 0 < m.reading.cpu_s <= m.reading.wall_s * (n_cores or 1) + 0.05
