"""Meter a block of code: wall and CPU time, peak memory and, optionally, energy."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from payoff._errors import PayoffError
from payoff.meter._energy import EnergyMeter
from payoff.meter._memory import PeakMemory
from payoff.meter._reading import ENERGY_OFF, Reading


class MeterHandle:
    """What `measure()` yields; its `reading` is set when the block ends."""

    __slots__ = ("name", "_reading")

    def __init__(self, name: str) -> None:
        self.name = name
        self._reading: Reading | None = None

    @property
    def reading(self) -> Reading:
        """The measurement of the block.

        Raises:
            PayoffError: read inside the ``with`` block, before it ended.
        """
        if self._reading is None:
            raise PayoffError(
                f"the reading of {self.name!r} is available after its `with measure(...)` "
                "block ends."
            )
        return self._reading


@contextlib.contextmanager
def measure(name: str, *, energy: EnergyMeter | None = None) -> Iterator[MeterHandle]:
    """Meter the ``with`` block; read ``handle.reading`` after it.

    The reading is taken even when the block raises (a failed trial still cost something).
    Without `energy`, the energy figures are NaN and the method is ``"off"``.

    Example:
        >>> with measure("trial-3", energy=meter) as m:
        ...     train()
        >>> m.reading.wall_s
    """
    handle = MeterHandle(name)
    memory = PeakMemory()
    memory.start()
    if energy is not None:
        energy.start(name)
    # Clocks start last and stop first, so they leave out the meters' own overhead.
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    try:
        yield handle
    finally:
        wall_s = time.perf_counter() - wall_start
        cpu_s = time.process_time() - cpu_start
        if energy is not None:
            energy_kwh, co2_kg, energy_method = energy.stop()
        else:
            energy_kwh, co2_kg, energy_method = math.nan, math.nan, ENERGY_OFF
        peak_mem_bytes, peak_mem_method = memory.stop()
        handle._reading = Reading(
            wall_s=wall_s,
            cpu_s=cpu_s,
            peak_mem_bytes=peak_mem_bytes,
            peak_mem_method=peak_mem_method,
            energy_kwh=energy_kwh,
            co2_kg=co2_kg,
            energy_method=energy_method,
        )
