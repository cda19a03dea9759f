"""What one metered trial consumed."""

from __future__ import annotations

from dataclasses import dataclass

ENERGY_OFF = "off"
"""`energy_method` of a reading taken without an energy meter."""


@dataclass(frozen=True, slots=True)
class Reading:
    """The cost of one metered block of code, each figure with how it was obtained.

    Attributes:
        wall_s: Elapsed wall-clock seconds (``time.perf_counter``).
        cpu_s: CPU seconds of this process, all threads (``time.process_time``).
        peak_mem_bytes: Peak memory during the block (host RSS, plus CUDA when used).
        peak_mem_method: How: ``"vmhwm"`` (Linux peak RSS, reset at start),
            ``"vmhwm+cuda"``, ``"vmhwm:process-peak"`` (peak since the process began:
            the reset was not allowed), or ``"rss:end"`` (RSS at the end, not a peak).
        energy_kwh: Energy drawn, before PUE; NaN when not measured.
        co2_kg: CO2 for that energy at the meter's grid intensity; NaN when not measured.
        energy_method: e.g. ``"rapl"``, ``"estimate:tdp"``, ``"nvml+estimate:tdp"``,
            ``"off"`` (no energy meter), ``"unavailable: <reason>"``.
    """

    wall_s: float
    cpu_s: float
    peak_mem_bytes: int
    peak_mem_method: str
    energy_kwh: float
    co2_kg: float
    energy_method: str
