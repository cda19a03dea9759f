"""Meter a block of code: wall and CPU time, peak memory and, optionally, energy.

Child processes the block starts and waits for (data-parallel workers) are part of its
cost: their CPU seconds come from ``getrusage(RUSAGE_CHILDREN)``, their peak memory from
whoever reaped them, through `add_child_peak_mem`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from payoff._errors import PayoffError
from payoff.meter._energy import EnergyMeter
from payoff.meter._memory import PeakMemory
from payoff.meter._reading import ENERGY_OFF, Reading

# Peak RSS of child processes reaped in this process while `measure()` blocks are open.
_child_peaks: list[int] = []
_open_blocks = 0


def add_child_peak_mem(peak_mem_bytes: int) -> None:
    """Add the peak memory of finished child processes to the `measure()` blocks now open.

    The OS keeps a child's CPU time for its parent but only the largest child's peak RSS,
    so the code that reaps children (e.g. with ``os.wait4``) reports their peaks here.
    """
    if _open_blocks:
        _child_peaks.append(int(peak_mem_bytes))


def _children_cpu_s() -> float:
    """Return the CPU seconds of this process's reaped children (0 where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    Without `energy`, the energy figures are NaN and the method is ``"off"``. ``cpu_s``
    includes child processes reaped inside the block; ``peak_mem_bytes`` adds the peaks
    reported by `add_child_peak_mem` (method ``"...+children"``), summed since they ran
    alongside this process.

    Example:
        >>> with measure("trial-3", energy=meter) as m:
        ...     train()
        >>> m.reading.wall_s
    """
    global _open_blocks
    handle = MeterHandle(name)
    memory = PeakMemory()
    memory.start()
    if energy is not None:
        energy.start(name)
    n_child_peaks = len(_child_peaks)
    _open_blocks += 1
    # Clocks start last and stop first, so they leave out the meters' own overhead.
    cpu_start, children_cpu_start = time.process_time(), _children_cpu_s()
    wall_start = time.perf_counter()
    try:
        yield handle
    finally:
        wall_s = time.perf_counter() - wall_start
        cpu_s = time.process_time() - cpu_start + _children_cpu_s() - children_cpu_start
        if energy is not None:
            energy_kwh, co2_kg, energy_method = energy.stop()
        else:
            energy_kwh, co2_kg, energy_method = math.nan, math.nan, ENERGY_OFF
        peak_mem_bytes, peak_mem_method = memory.stop()
        children_peak = sum(_child_peaks[n_child_peaks:])
        _open_blocks -= 1
        if not _open_blocks:
            _child_peaks.clear()
        if children_peak:
            peak_mem_bytes += children_peak
            peak_mem_method += "+children"
        handle._reading = Reading(
            wall_s=wall_s,
            cpu_s=cpu_s,
            peak_mem_bytes=peak_mem_bytes,
            peak_mem_method=peak_mem_method,
            energy_kwh=energy_kwh,
            co2_kg=co2_kg,
            energy_method=energy_method,
        )
