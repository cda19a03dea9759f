"""Cheap per-trial cost meters: time, peak memory, energy and CO2, FLOPs."""

from __future__ import annotations

from payoff.meter._energy import UNAVAILABLE, EnergyMeter
from payoff.meter._flops import count_flops
from payoff.meter._measure import MeterHandle, measure
from payoff.meter._memory import PeakMemory
from payoff.meter._reading import ENERGY_OFF, Reading

__all__ = [
    "ENERGY_OFF",
    "UNAVAILABLE",
    "EnergyMeter",
    "MeterHandle",
    "PeakMemory",
    "Reading",
    "count_flops",
    "measure",
]
