from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import pytest

from payoff._errors import PayoffError
from payoff.meter import UNAVAILABLE, EnergyMeter, measure

HAS_RAPL = Path("/sys/class/powercap/intel-rapl").exists()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


@pytest.fixture(scope="module")
def meter() -> EnergyMeter:
    em = EnergyMeter("USA")
    em.warm_up()
    return em


def test_energy_and_co2_of_a_workload(meter: EnergyMeter) -> None:
    with measure("trial-e", energy=meter) as m:
        _busy(0.3)
    r = m.reading
    assert r.energy_kwh > 0 and r.co2_kg > 0
    if not HAS_RAPL and not _has_cuda():
        assert r.energy_method == "estimate:tdp"
    assert meter.method == r.energy_method


def test_co2_follows_the_given_grid_intensity() -> None:
    meter = EnergyMeter("USA", gco2_per_kwh=367.4)
    meter.start("trial-co2")
    _busy(0.1)
    energy_kwh, co2_kg, _ = meter.stop()
    assert co2_kg == pytest.approx(energy_kwh * 0.3674, rel=1e-6)


def test_start_and_stop_are_cheap_after_warm_up(meter: EnergyMeter) -> None:
    costs = []
    for i in range(20):
        t = time.perf_counter()
        meter.start(f"cheap-{i}")
        meter.stop()
        costs.append(time.perf_counter() - t)
    assert statistics.median(costs) < 0.05


def test_misuse_raises(meter: EnergyMeter) -> None:
    with pytest.raises(PayoffError, match="before start"):
        EnergyMeter("USA").stop()
    meter.start("twice")
    with pytest.raises(PayoffError, match="already|while a measurement"):
        meter.start("twice-again")
    meter.stop()


def test_second_concurrent_meter_is_unavailable_not_wrong(meter: EnergyMeter) -> None:
    other = EnergyMeter("USA")
    meter.start("first")
    other.start("second")
    energy_kwh, _, method = other.stop()
    assert math.isnan(energy_kwh) and method.startswith(f"{UNAVAILABLE}: another trial")
    assert meter.stop()[0] > 0


def test_codecarbon_missing_gives_nan_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # as if it were not installed
    meter = EnergyMeter("USA", gco2_per_kwh=1.5)  # a key no other test has created
    meter.warm_up()
    with measure("no-codecarbon", energy=meter) as m:
        _busy(0.01)
    assert math.isnan(m.reading.energy_kwh) and math.isnan(m.reading.co2_kg)
    assert m.reading.energy_method.startswith(f"{UNAVAILABLE}: codecarbon failed to start")
    assert m.reading.wall_s > 0
    assert meter.method.startswith(UNAVAILABLE)
