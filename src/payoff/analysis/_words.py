"""Numbers in budget-owner words: money never in scientific notation, settings by name."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def fmt_usd(x: float | None) -> str:
    """Format dollars for people: ``$1.2 M``, ``$9,672``, ``$50.29``, ``$0.0000356``, ``-$1,234``.

    Never scientific notation; amounts under a millionth of a dollar read ``<$0.000001``.
    """
    if x is None or math.isnan(x):
        return "n/a"
    sign = "-" if x < 0 else ""
    a = abs(x)
    if math.isinf(a):
        return f"{sign}$inf"
    if a >= 1e9:
        return f"{sign}${a / 1e9:,.1f} B"
    if a >= 1e6:
        return f"{sign}${a / 1e6:,.1f} M"
    if a >= 1000:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:,.2f}"
    if a == 0:
        return "$0"
    if a < 1e-6:
        return f"{sign}<$0.000001" if sign else "<$0.000001"
    digits = 2 - math.floor(math.log10(a))  # three significant digits
    return f"{sign}${a:.{digits}f}"


def fmt_roi(roi: float) -> str:
    """Format an ROI as a percentage (``1.5`` is ``+150%``)."""
    if math.isnan(roi):
        return "n/a"
    if math.isinf(roi):
        return "+inf" if roi > 0 else "-inf"
    return f"{roi:+,.0%}"


def fmt_months(months: float | None) -> str:
    """Say a span people plan by: ``3 hours``, ``4 days``, ``0.68 months``; None is ``never``."""
    if months is None or not math.isfinite(months):
        return "never"
    days = months * 365.25 / 12
    if days < 1:
        return f"{days * 24:.2g} hours"
    if days < 14:
        return f"{days:.2g} days"
    return f"{months:.2g} months"


def fmt_count(x: float) -> str:
    """Format a count with thousands separators (``3,117``)."""
    return f"{x:,.0f}" if math.isfinite(x) else "n/a"


def setting_words(
    levers: Mapping[str, Any], *, n_train: float = math.nan, n_available: int | None = None
) -> str:
    """Say a setting in words: ``all 3,117 training examples, model=medium``.

    The data lever reads as its training examples (``data=0.5`` on 3,117 rows:
    ``1,558 training examples (data=0.5)``); the other levers as ``name=value``.
    """
    parts = []
    for name, value in levers.items():
        if name == "data" and math.isfinite(n_train):
            if n_available is not None and n_train >= n_available:
                parts.append(f"all {fmt_count(n_train)} training examples")
            else:
                parts.append(f"{fmt_count(n_train)} training examples (data={show_value(value)})")
        else:
            parts.append(f"{name}={show_value(value)}")
    return ", ".join(parts) or "the single setting"


def show_value(v: Any) -> str:
    """Say one lever value (``1`` not ``1.0``, ``64x32`` for widths)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) >= 1 else str(v)
    if isinstance(v, list | tuple):
        return "x".join(str(x) for x in v)
    return str(v)


def json_ready(x: Any) -> Any:
    """Return ``x`` as strict JSON data: NaN and infinities become null (JSON has neither)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_ready(v) for v in x]
    if hasattr(x, "item"):  # numpy scalars
        return json_ready(x.item())
    return x
