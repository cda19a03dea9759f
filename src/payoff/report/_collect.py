"""Everything the report shows, computed once from the stored study."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from payoff.analysis._lever_curve import ReturnCurve
    from payoff.analysis._marginal import LeverMarginal
    from payoff.analysis._pareto import ParetoFront
    from payoff.analysis._recommend import Recommendation
    from payoff.analysis._risk import Flag, RiskResult
    from payoff.analysis._value import ValueAnalysis
    from payoff.prices import PriceBook
    from payoff.study import StudyRecord

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Band:
    """A return curve's fit and forecast over a grid of lever amounts (all estimates)."""

    xs: tuple[float, ...]
    point: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    x_max: float
    level: float
    method: str
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeverView:
    """One lever's measured return curve and its forecast band."""

    curve: ReturnCurve
    band: Band | None
    note: str


@dataclass(frozen=True, slots=True)
class ReportData:
    """The stored study and every analysis of it, as the report and the summary show them."""

    record: StudyRecord
    storage: str
    frame: pd.DataFrame
    curves: Mapping[int, list[dict[str, float]]]
    analysis: ValueAnalysis
    recommendation: Recommendation
    fronts: tuple[ParetoFront, ...]
    marginals: tuple[LeverMarginal, ...]
    levers: tuple[LeverView, ...]
    risk: RiskResult | None
    flags: tuple[Flag, ...]
    book: PriceBook
    n_complete: int
    n_failed: int


def _band(curve: ReturnCurve, *, level: float, reach: float, n: int = 16) -> Band:
    from payoff.analysis import forecast_curve
    from payoff.analysis._lever_curve import learns_from_lcdb
    from payoff.analysis._value import bounded, maximize

    x_max = max(curve.xs)
    xs = np.unique(np.geomspace(min(curve.xs), x_max * reach, n))
    pts, lows, highs = [], [], []
    method, warnings = "", ()
    for x in xs:
        f = forecast_curve(
            curve.xs,
            curve.ys,
            float(x),
            level=level,
            higher_is_better=maximize(curve.metric),
            bounds=(0.0, 1.0) if bounded(curve.metric) else None,
            correction=learns_from_lcdb(curve),
        )
        pts.append(f.point)
        lows.append(f.low)
        highs.append(f.high)
        method, warnings = f.method, f.warnings
    return Band(
        tuple(float(x) for x in xs),
        tuple(pts),
        tuple(lows),
        tuple(highs),
        float(x_max),
        level,
        method,
        tuple(warnings),
    )


def collect(
    record: StudyRecord,
    *,
    storage: str = "",
    target: str | Mapping[str, float] | None = None,
    budget_usd: float | None = None,
    level: float = 0.9,
    n_draws: int = 10_000,
    seed: int = 0,
    reach: float = 4.0,
) -> ReportData:
    """Compute everything the report shows.

    Raises:
        ConfigError: the study has no completed trial, or a bad target or budget.
    """
    from payoff.analysis._lever_curve import LEVER_AXES, return_curve
    from payoff.analysis._marginal import marginal_returns
    from payoff.analysis._pareto import pareto_fronts
    from payoff.analysis._recommend import recommend_from
    from payoff.analysis._value import value_analysis
    from payoff.prices import load_price_book

    frame = record.trials
    analysis = value_analysis(record)
    config = record.config
    marginals = marginal_returns(analysis, frame, config, level=level)
    rec = recommend_from(
        record,
        analysis,
        marginals,
        target=target,
        budget_usd=budget_usd,
        level=level,
        n_draws=n_draws,
        seed=seed,
    )
    views = []
    for lever in analysis.levers:
        if lever not in LEVER_AXES:
            continue
        try:
            curve = return_curve(frame, config, lever)
        except ConfigError as err:
            _logger.info("no return curve for %s: %s", lever, err)
            continue
        try:
            band: Band | None = _band(curve, level=level, reach=reach)
            note = ""
        except ConfigError as err:
            band, note = None, str(err)
        views.append(LeverView(curve, band, note))
    curves = {n: list(c) for n, c in record.curves.items()}
    states = frame["state"] if "state" in frame.columns else []
    return ReportData(
        record=record,
        storage=storage,
        frame=frame,
        curves=curves,
        analysis=analysis,
        recommendation=rec,
        fronts=pareto_fronts(analysis),
        marginals=marginals,
        levers=tuple(views),
        risk=rec.risk,
        flags=rec.flags,
        book=load_price_book(config.prices),
        n_complete=int(sum(1 for s in states if s == "COMPLETE")),
        n_failed=int(sum(1 for s in states if s == "FAIL")),
    )


def headline_numbers(data: ReportData) -> list[dict[str, Any]]:
    """Return the first screen's key numbers: label, value, how it was obtained (``kind``)
    and, for some, a ``note`` that says what the value is made of."""
    from payoff.analysis._words import fmt_roi, fmt_usd, setting_words

    a, rec = data.analysis, data.recommendation
    out: list[dict[str, Any]] = [
        {
            "label": "trials",
            "value": f"{data.n_complete} complete, {data.n_failed} failed",
            "kind": "measured",
        },
        {
            "label": "study spend (compute + energy)",
            "value": fmt_usd(a.study_spend_usd),
            "kind": "measured",
        },
    ]
    sign = 1.0 if a.maximize else -1.0
    best = max(a.settings, key=lambda s: sign * s.metric_mean)
    words = setting_words(
        best.levers, n_train=best.n_train, n_available=data.record.n_train_available
    )
    out.append(
        {
            "label": f"best {a.metric} (mean over seeds)",
            "value": f"{best.metric_mean:.4g} ({words})",
            "kind": "measured",
        }
    )
    choice = rec.meets_target
    if rec.target is not None:
        out.append(
            {
                "label": f"target {rec.target_metric} {rec.target:g}",
                "value": (
                    f"met by {choice.words}"
                    if choice is not None and choice.kind == "measured"
                    else (f"forecast: {choice.words}" if choice is not None else "not met")
                ),
                "kind": choice.kind if choice is not None else "measured",
            }
        )
    head = rec.recommended
    if head is not None:
        setting = next((s for s in a.settings if s.key == head.key), None)
        # Training costs are measured; serving (unless load-tested) and people are estimates.
        estimated = setting is not None and (
            setting.tco.people_usd > 0
            or (setting.tco.serving_usd > 0 and a.model.serving_usd_per_million is None)
        )
        out.append(
            {
                "label": f"TCO of {head.words} ({a.model.horizon_months:g} months)",
                "value": fmt_usd(head.tco_usd),
                "kind": "estimate" if estimated else "measured",
            }
        )
        if a.model.configured:
            out.append({"label": "its NPV", "value": fmt_usd(head.npv_usd), "kind": "estimate"})
            out.append(
                {
                    "label": "its ROI",
                    "value": fmt_roi(head.roi),
                    "note": f"= {head.drivers}",
                    "kind": "estimate",
                }
            )
    if data.risk is not None:
        r = data.risk
        out.append(
            {
                "label": "P(it loses money)",
                "value": f"{r.p_loss:.0%}",
                "kind": "estimate",
            }
        )
        out.append(
            {
                "label": "NPV 5% / 50% / 95%",
                "value": f"{fmt_usd(r.npv_p5_usd)} / {fmt_usd(r.npv_p50_usd)} / "
                f"{fmt_usd(r.npv_p95_usd)}",
                "kind": "estimate",
            }
        )
    data_step = next((c for c in rec.candidates if c.lever == "data"), None)
    answer, _, why = rec.labels_answer.removeprefix("More labels? ").partition(": ")
    out.append(
        {
            "label": "more labels?",
            "value": answer,
            "note": why,
            "kind": data_step.basis if data_step is not None else "estimate",
        }
    )
    nxt = rec.next_investment
    out.append(
        {
            "label": "next investment",
            "value": f"more {nxt.lever}" if nxt is not None else "none pays",
            "note": nxt.statement if nxt is not None else rec.next_investment_why_none,
            "kind": nxt.basis if nxt is not None else "estimate",
        }
    )
    return out


def finite(x: Any) -> Any:
    """Return ``x`` when a finite number, else None (for JSON)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
