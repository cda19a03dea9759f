"""Energy and CO2 per trial from one CodeCarbon offline tracker per process."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from payoff._errors import PayoffError

_logger = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
"""Prefix of `energy_method` when no energy could be measured."""

_WARM_UP_TASK = "payoff-warm-up"

# CodeCarbon CPU `_mode` -> how payoff labels the CPU part of the figure.
_CPU_METHODS = {
    "intel_rapl": "rapl",
    "windows_emi": "windows-emi",
    "intel_power_gadget": "power-gadget",
    "cpu_load": "estimate:tdp",
    "constant": "estimate:tdp",
}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence CodeCarbon's warnings (deprecations in its GPU and CPU probes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class _Tracker:
    """One CodeCarbon tracker (or why there is none), shared by a process's meters."""

    def __init__(self, country_iso_code: str, gco2_per_kwh: float | None) -> None:
        self.lock = threading.Lock()
        self.busy = False
        self.method: str | None = None
        self.error: str | None = None
        self.tracker: Any = None
        try:
            with _quiet():
                from codecarbon import OfflineEmissionsTracker

                # Importing codecarbon sets its logger to INFO; quiet it before the
                # constructor logs its start-up chatter.
                logging.getLogger("codecarbon").setLevel(logging.ERROR)
                options: dict[str, Any] = {}
                if gco2_per_kwh is not None:
                    options["force_carbon_intensity_g_co2e_kwh"] = gco2_per_kwh
                self.tracker = OfflineEmissionsTracker(
                    country_iso_code=country_iso_code,
                    project_name="payoff",
                    output_methods=[],  # nothing written to disk or sent anywhere
                    log_level="error",
                    allow_multiple_runs=True,
                    measure_power_secs=1,
                    # Attribute CPU load to this process and its children, not the machine.
                    tracking_mode="process",
                    **options,
                )
        except Exception as err:  # a broken meter must never fail a trial
            self.error = f"codecarbon failed to start ({type(err).__name__}: {err})"
            _logger.warning("energy metering unavailable: %s", self.error)

    def describe(self) -> str:
        """Return how this tracker measures energy, e.g. ``"nvml+estimate:tdp"``."""
        if self.method is None:
            self.method = _method_of(self.tracker)
        return self.method


def _method_of(tracker: Any) -> str:
    """Label the tracker's hardware probes the way payoff reports them."""
    parts = []
    gpu = cpu = None
    for hardware in getattr(tracker, "_hardware", []):
        kind = type(hardware).__name__
        if kind == "GPU":
            devices = getattr(getattr(hardware, "devices", None), "devices", [])
            vendors = {type(d).__name__.lower() for d in devices}
            gpu = "nvml" if any("nvidia" in v for v in vendors) or not vendors else "amdsmi"
        elif kind == "CPU":
            mode = str(getattr(hardware, "_mode", "unknown"))
            cpu = _CPU_METHODS.get(mode, f"codecarbon:{mode}")
        elif kind == "AppleSiliconChip":
            cpu = "powermetrics"
    if gpu:
        parts.append(gpu)
    parts.append(cpu or "estimate:unknown")
    return "+".join(parts)


_TRACKERS: dict[tuple[str, float | None, int], _Tracker] = {}
_TRACKERS_LOCK = threading.Lock()


def _tracker_for(country_iso_code: str, gco2_per_kwh: float | None) -> _Tracker:
    # Keyed by pid too: a forked worker must not reuse its parent's tracker.
    key = (country_iso_code, gco2_per_kwh, os.getpid())
    with _TRACKERS_LOCK:
        found = _TRACKERS.get(key)
        if found is None:
            found = _TRACKERS[key] = _Tracker(country_iso_code, gco2_per_kwh)
        return found


class EnergyMeter:
    """Measure the energy (kWh) and CO2 (kg) of one trial at a time.

    All meters of a process share one CodeCarbon offline tracker, whose first use costs
    about 2 s of hardware probing: call `warm_up()` before the first trial. Each trial is a
    tracker task, costing about a millisecond. Energy is IT energy, before PUE. Where
    CodeCarbon cannot start, readings are NaN with method ``"unavailable: <reason>"``;
    metering never fails a trial.

    Args:
        country_iso_code: Grid whose carbon intensity CodeCarbon uses, e.g. ``"USA"``.
        gco2_per_kwh: Carbon intensity to use instead (e.g. the price book's
            ``grid_gco2_per_kwh``), so CO2 agrees with the prices in force.
    """

    def __init__(
        self, country_iso_code: str = "USA", *, gco2_per_kwh: float | None = None
    ) -> None:
        self._country_iso_code = country_iso_code
        self._gco2_per_kwh = gco2_per_kwh
        self._shared: _Tracker | None = None
        self._running = False
        self._failure: str | None = None

    def _tracker(self) -> _Tracker:
        if self._shared is None:
            self._shared = _tracker_for(self._country_iso_code, self._gco2_per_kwh)
        return self._shared

    @property
    def method(self) -> str:
        """How this meter measures energy (probes the hardware on first use)."""
        shared = self._tracker()
        if shared.tracker is None:
            return f"{UNAVAILABLE}: {shared.error}"
        self.warm_up()
        return shared.describe()

    def warm_up(self) -> None:
        """Probe the hardware now, so that the first trial does not pay for it."""
        shared = self._tracker()
        if shared.tracker is None or shared.method is not None:
            return
        with shared.lock:
            if shared.busy:
                return
            try:
                with _quiet():
                    shared.tracker.start_task(_WARM_UP_TASK)
                    shared.tracker.stop_task()
            except Exception as err:
                _logger.warning("energy meter warm-up failed: %s: %s", type(err).__name__, err)
                return
            shared.describe()

    def start(self, name: str) -> None:
        """Start measuring the trial called `name`.

        Raises:
            PayoffError: this meter is already measuring.
        """
        if self._running:
            raise PayoffError(
                "EnergyMeter.start() was called while a measurement was running; "
                "call stop() first, or use one EnergyMeter per concurrent trial."
            )
        self._running = True
        self._failure = None
        shared = self._tracker()
        if shared.tracker is None:
            self._failure = shared.error
            return
        with shared.lock:
            if shared.busy:
                # CodeCarbon measures one task at a time per tracker.
                self._failure = "another trial in this process is being metered"
                return
            shared.busy = True
        try:
            with _quiet():
                shared.tracker.start_task(name)
        except Exception as err:
            self._failure = f"codecarbon start_task failed ({type(err).__name__}: {err})"
            shared.busy = False

    def stop(self) -> tuple[float, float, str]:
        """Stop measuring; return ``(energy_kwh, co2_kg, energy_method)``.

        Raises:
            PayoffError: `start()` was not called.
        """
        if not self._running:
            raise PayoffError("EnergyMeter.stop() was called before start().")
        self._running = False
        if self._failure is not None:
            return math.nan, math.nan, f"{UNAVAILABLE}: {self._failure}"
        shared = self._tracker()
        try:
            with _quiet():
                data = shared.tracker.stop_task()
        except Exception as err:
            return (
                math.nan,
                math.nan,
                f"{UNAVAILABLE}: codecarbon stop_task failed ({type(err).__name__}: {err})",
            )
        finally:
            shared.busy = False
        if data is None:
            return math.nan, math.nan, f"{UNAVAILABLE}: codecarbon returned no task data"
        return float(data.energy_consumed), float(data.emissions), shared.describe()
