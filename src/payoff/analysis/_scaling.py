"""Scaling of the parallelism lever: speed-up, efficiency and extra cost against one worker.

A data-parallel trial is only worth its workers if it finishes sooner, and it may cost
more (start-up, communication, idle cores). Each trial is compared with the one-worker
trial of the same other settings and seed, so the comparison isolates the workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from payoff._errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

WORKER_COLUMNS = ("parallelism", "workers")
"""Columns that hold a trial's number of data-parallel workers, in the order looked for."""
NO_BASELINE = "no 1-worker trial with the same settings and seed"


def scaling_frame(
    trials: pd.DataFrame,
    *,
    workers: str | None = None,
    levers: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return each completed trial's speed-up, scaling efficiency and extra cost.

    ``speedup = baseline wall_s / wall_s`` where the baseline is the 1-worker trial with
    the same other settings and seed (the mean where there are several),
    ``efficiency = speedup / workers`` (1 is perfect scaling) and
    ``extra_cost_usd = cost_usd_total - baseline cost_usd_total``. Where the trials have a
    ``train_s`` column, ``train_speedup`` and ``train_efficiency`` do the same on training
    time. Trials without a baseline get NaN and a ``note`` saying so; 1-worker trials are
    their own baseline.

    Args:
        trials: A trials frame (`Study.trials_frame`), one row a trial.
        workers: The column with the number of workers; default ``parallelism`` or
            ``workers``, whichever is present.
        levers: The other setting columns a baseline must match; default: the columns
            between ``state`` and ``seed``, where `Study.trials_frame` puts the levers.

    Raises:
        ConfigError: no workers column, or a named column is missing.
    """
    import pandas as pd

    column = workers or next((c for c in WORKER_COLUMNS if c in trials.columns), None)
    if column is None or column not in trials.columns:
        wanted = workers or " or ".join(WORKER_COLUMNS)
        raise ConfigError(
            f"scaling needs a column with the number of workers ({wanted}); the trials "
            f"have {', '.join(map(str, trials.columns)) or 'none'}. Vary the parallelism "
            "lever, or pass workers=COLUMN."
        )
    others = [c for c in (_setting_columns(trials) if levers is None else levers) if c != column]
    missing = [c for c in [*others, "wall_s", "cost_usd_total"] if c not in trials.columns]
    if missing:
        raise ConfigError(
            f"scaling needs the columns {', '.join(missing)}, absent from the trials; "
            "pass a frame from Study.trials_frame() or name the setting columns in levers=."
        )
    done = trials[trials["state"] == "COMPLETE"] if "state" in trials.columns else trials
    keys = [*others, *(["seed"] if "seed" in done.columns else [])]
    timed = ["wall_s", "cost_usd_total", *(["train_s"] if "train_s" in done.columns else [])]
    records = done.to_dict(orient="records")
    counts = [_number(r[column]) for r in records]
    ones: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for record, count in zip(records, counts, strict=True):
        if count == 1:
            ones.setdefault(_key(record, keys), []).append(record)
    rows: list[dict[str, Any]] = []
    for record, count in zip(records, counts, strict=True):
        same = ones.get(_key(record, keys), [])
        base = {c: _mean([_number(r[c]) for r in same]) for c in timed}
        row: dict[str, Any] = {
            **({"number": record["number"]} if "number" in record else {}),
            **{k: record[k] for k in keys},
            "workers": count,
            "wall_s": _number(record["wall_s"]),
            "baseline_wall_s": base["wall_s"],
            "speedup": _ratio(base["wall_s"], _number(record["wall_s"])),
        }
        row["efficiency"] = _ratio(row["speedup"], count)
        if "train_s" in timed:
            row["train_s"] = _number(record["train_s"])
            row["baseline_train_s"] = base["train_s"]
            row["train_speedup"] = _ratio(base["train_s"], row["train_s"])
            row["train_efficiency"] = _ratio(row["train_speedup"], count)
        row["cost_usd_total"] = _number(record["cost_usd_total"])
        row["baseline_cost_usd_total"] = base["cost_usd_total"]
        row["extra_cost_usd"] = row["cost_usd_total"] - base["cost_usd_total"]
        row["baseline_numbers"] = tuple(int(r["number"]) for r in same if "number" in r)
        row["note"] = "" if same else NO_BASELINE
        rows.append(row)
    return pd.DataFrame(rows)


def _number(value: Any) -> float:
    """Return ``value`` as a float; NaN where it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _ratio(a: float, b: float) -> float:
    """Return ``a / b``; NaN where ``b`` is zero or NaN."""
    return a / b if b else math.nan


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _setting_columns(trials: pd.DataFrame) -> list[str]:
    """Return the columns `Study.trials_frame` puts between ``state`` and ``seed``."""
    columns = list(trials.columns)
    if "state" not in columns or "seed" not in columns:
        return []
    return columns[columns.index("state") + 1 : columns.index("seed")]


def _key(record: dict[str, Any], keys: Sequence[str]) -> tuple[Any, ...]:
    """Return the record's settings as a hashable key: lists as tuples, NaN equal to NaN."""
    out: list[Any] = []
    for k in keys:
        v = record[k]
        if isinstance(v, list):
            v = tuple(v)
        elif isinstance(v, float) and math.isnan(v):
            v = "nan"
        out.append(v)
    return tuple(out)
