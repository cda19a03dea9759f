"""Recommendations: the setting to deploy, the cheapest that meets a target, the best ROI
within a budget, and the next investment from the recommended setting — each right by
construction and said in a budget owner's words.

- best ROI: the highest NPV of the settings within the budget (ROI and payback beside it);
- cheapest meeting the target: the lowest TCO of the measured settings that meet it;
- recommended: with a target met within the budget, the highest NPV of those that meet it
  (the cheapest without a value model); otherwise the best ROI;
- next investment: one step up each lever from the recommended setting, the others held
  there, measured where the study has that neighbour and forecast otherwise; it is worth
  making only when its expected NPV gain is positive and P(it loses money) <= 0.5.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from payoff._errors import ConfigError
from payoff.analysis._pilot_view import PilotView, pilot_view
from payoff.analysis._words import (
    fmt_count,
    fmt_months,
    fmt_roi,
    fmt_usd,
    json_ready,
    setting_words,
)

if TYPE_CHECKING:
    from payoff.analysis._marginal import LeverMarginal
    from payoff.analysis._pareto import ParetoFront
    from payoff.analysis._risk import Flag, RiskResult
    from payoff.analysis._value import SettingValue, ValueAnalysis
    from payoff.study import StudyRecord


@dataclass(frozen=True, slots=True)
class Choice:
    """A recommended setting, measured or forecast, with its numbers and evidence.

    Attributes:
        kind: ``measured`` (trials ran it) or ``forecast`` (a return curve says a larger
            amount of a lever would get there).
        key: The setting (``data=1 model=large``), or for a forecast the lever amount it
            needs on top of the held levers.
        levers: The lever values.
        words: The setting in words (``all 3,117 training examples, model=large``).
        metric: The metric the choice is judged on.
        metric_value: Its mean over seeds, or the forecast's point.
        metric_low: Mean - sd (measured), or NaN.
        metric_high: Mean + sd, or NaN.
        training_usd: Labels + compute + energy of one training run.
        tco_usd: Total cost of ownership over the horizon.
        upfront_usd: Paid before the first prediction.
        value_usd: Value over the horizon (NaN without a value model).
        npv_usd: Net present value (NaN without a value model).
        roi: Return on investment (NaN without a value model).
        payback_months: Month the cash flow turns positive, or None.
        threshold: The decision threshold on P(class 1) its value assumes, or None.
        on_pareto_front: Whether it is on the measured front of TCO against the metric.
        trials: The trials behind it.
        why: Why it was chosen, in one phrase.
        drivers: What its ROI is made of, in one line.
        evidence: The facts it rests on, one per line.
        method: How its numbers were obtained.
        statement: The choice in plain words.
    """

    kind: str
    key: str
    levers: dict[str, Any]
    words: str
    metric: str
    metric_value: float
    metric_low: float
    metric_high: float
    training_usd: float
    tco_usd: float
    upfront_usd: float
    value_usd: float
    npv_usd: float
    roi: float
    payback_months: float | None
    threshold: float | None
    on_pareto_front: bool
    trials: tuple[int, ...]
    why: str
    drivers: str
    evidence: tuple[str, ...]
    method: str
    statement: str


@dataclass(frozen=True, slots=True)
class Investment:
    """One step up a lever from the recommended setting, with what it costs and returns.

    Attributes:
        from_setting: The recommended setting's key (the step starts there).
        lever: The lever.
        to: The lever's value after the step.
        to_setting: The setting after the step (its key, or the forecast amount).
        from_amount: The lever's amount before, in ``unit`` (NaN when it has none).
        to_amount: After.
        unit: What the amount counts.
        cost_usd: Extra training cost (labels + compute + energy) of the step.
        gain: Improvement of the study metric (positive is better).
        gain_low: Low end of the gain's interval.
        gain_high: High end.
        points: The gain in points (metrics in [0, 1]) or metric units.
        expected_npv_gain_usd: Mean NPV gained over staying, over the paired Monte Carlo
            (NaN without a value model).
        p_loss: P(the step loses money), or P(no gain) without a value model.
        basis: ``measured`` (the study ran the neighbour) or ``forecast``.
        extrapolation: How far beyond the largest measured amount a forecast reaches.
        warnings: The forecaster's warnings.
        evidence: The facts it rests on.
        method: How its numbers were obtained.
        statement: The step in plain words.
    """

    from_setting: str
    lever: str
    to: Any
    to_setting: str
    from_amount: float
    to_amount: float
    unit: str
    cost_usd: float
    gain: float
    gain_low: float
    gain_high: float
    points: float
    expected_npv_gain_usd: float
    p_loss: float
    basis: str
    extrapolation: float
    warnings: tuple[str, ...]
    evidence: tuple[str, ...]
    method: str
    statement: str

    @property
    def pays(self) -> bool:
        """Whether the step is worth making: expected NPV gain > 0 and P(loss) <= 0.5
        (without a value model: a gain, with P(no gain) <= 0.5)."""
        if math.isfinite(self.expected_npv_gain_usd):
            return self.expected_npv_gain_usd > 0 and self.p_loss <= 0.5
        return self.gain > 0 and self.p_loss <= 0.5


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What to do, in plain words, with the evidence: see :func:`recommend`.

    Attributes:
        study: The study's name.
        metric: The study's test metric column (the quality axis).
        target_metric: The target's metric column, or None without a target.
        target: The target value, or None.
        target_met: Whether a measured setting meets the target.
        budget_usd: The budget on TCO, or None.
        recommended: The setting to deploy, with why; None only when nothing fits the budget.
        meets_target: The cheapest setting that meets the target (measured, else
            forecast), or None.
        best_roi: The highest-NPV setting within the budget (with a value model; else the
            best metric); None when nothing fits the budget.
        ranked_by: ``npv`` or the metric column.
        next_investment: The step worth making from ``recommended``, or None.
        next_investment_why_none: Why there is none, when there is none.
        candidates: Every step considered from ``recommended``, best first.
        labels_answer: The answer to "more labels?" in one line.
        settings: One row a setting, as :meth:`as_dict` gives them.
        risk: The Monte Carlo of the recommended setting, or None.
        flags: Reasons to trust the results less.
        statements: The recommendation in plain words (the first screen).
        pilot: The pilot's findings in words (design: pilot), or None.
        pilot: The pilot's report (design: pilot), or None.
    """

    study: str
    metric: str
    target_metric: str | None
    target: float | None
    target_met: bool
    budget_usd: float | None
    recommended: Choice | None
    meets_target: Choice | None
    best_roi: Choice | None
    ranked_by: str
    next_investment: Investment | None
    next_investment_why_none: str
    candidates: tuple[Investment, ...]
    labels_answer: str
    settings: tuple[Mapping[str, Any], ...] = field(compare=False)
    risk: RiskResult | None = field(compare=False)
    flags: tuple[Flag, ...]
    statements: tuple[str, ...]
    value_configured: bool
    pilot: PilotView | None = None

    def __str__(self) -> str:
        return "\n".join(self.statements)

    @property
    def cheapest_meeting_target(self) -> Choice | None:
        """The cheapest measured setting that meets the target, or None."""
        c = self.meets_target
        return c if c is not None and c.kind == "measured" else None

    def as_dict(self) -> dict[str, Any]:
        """Return the recommendation as JSON-able values (NaN and infinity become None).

        The documented, stable keys: ``settings``, ``recommended``,
        ``cheapest_meeting_target``, ``best_roi``, ``next_investment`` (or None with
        ``next_investment_why_none``) and ``pilot``; more keys may be added.
        """
        nxt = self.next_investment
        out = {
            "study": self.study,
            "metric": self.metric,
            "target_metric": self.target_metric,
            "target": self.target,
            "target_met": self.target_met,
            "budget_usd": self.budget_usd,
            "value_configured": self.value_configured,
            "ranked_by": self.ranked_by,
            "settings": [dict(r) for r in self.settings],
            "recommended": _choice(self.recommended),
            "cheapest_meeting_target": _choice(self.cheapest_meeting_target),
            "forecast_to_target": _choice(self.meets_target)
            if self.meets_target is not None and self.meets_target.kind == "forecast"
            else None,
            "best_roi": _choice(self.best_roi),
            "next_investment": None if nxt is None else _investment_dict(nxt),
            "next_investment_why_none": self.next_investment_why_none or None,
            "candidates": [_investment_dict(c) for c in self.candidates],
            "labels_answer": self.labels_answer,
            "risk": self.risk.as_dict() if self.risk is not None else None,
            "flags": [dataclasses.asdict(f) for f in self.flags],
            "statements": list(self.statements),
            "pilot": self.pilot.as_dict() if self.pilot is not None else None,
        }
        return json_ready(out)


def _choice(c: Choice | None) -> dict[str, Any] | None:
    if c is None:
        return None
    d = dataclasses.asdict(c)
    return {"setting": d.pop("levers"), **d}


def _investment_dict(i: Investment) -> dict[str, Any]:
    return {**dataclasses.asdict(i), "pays": i.pays}


def parse_target_arg(
    target: str | Mapping[str, float] | None, config_target: Mapping[str, float]
) -> tuple[str, float] | None:
    """Return the (metric, value) of a ``--target`` or of the study file's ``target``.

    Raises:
        ConfigError: a malformed target.
    """
    from payoff.analysis._lever_curve import parse_target

    if target is not None:
        return parse_target(target)
    if not config_target:
        return None
    name, value = next(iter(config_target.items()))
    return str(name), float(value)


def _meets(value: float, target: float, maximize: bool) -> bool:
    return math.isfinite(value) and (value >= target if maximize else value <= target)


def _fmt_metric(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else "n/a"


def _seeds(s: SettingValue, metric: str) -> str:
    mean, std = s.test_metrics.get(metric, (s.metric_mean, s.metric_std))
    return (
        f"{metric} {_fmt_metric(mean)} (sd {std:.2g} over {s.n_seeds} seeds; "
        f"trials {', '.join(map(str, s.trials))})"
        if s.n_seeds > 1
        else f"{metric} {_fmt_metric(mean)} (1 seed; trial {s.trials[0]})"
    )


def _words(record: StudyRecord, s: SettingValue) -> str:
    return setting_words(s.levers, n_train=s.n_train, n_available=record.n_train_available)


def drivers(analysis: ValueAnalysis, s: SettingValue) -> str:
    """Say what a setting's ROI is made of, in one line."""
    m = analysis.model
    volume = m.predictions_per_month * m.horizon_months
    t = s.tco
    parts = sorted(
        (
            ("labels", t.labels_usd),
            ("training compute and energy", t.compute_usd + t.energy_usd),
            ("people", t.people_usd),
            ("serving", t.serving_usd),
        ),
        key=lambda p: -p[1],
    )
    big = ", ".join(f"{name} {fmt_usd(usd)}" for name, usd in parts if usd > 0) or "nothing"
    over = "" if m.baseline is None else f" over the {m.baseline.name}"
    return (
        f"{fmt_usd(s.value_per_prediction_usd)} of value a prediction{over} x "
        f"{fmt_count(volume)} predictions = {fmt_usd(s.economics.value_usd)}, against a TCO of "
        f"{fmt_usd(t.total_usd)} ({big}) over {m.horizon_months:g} months"
    )


def _cost_evidence(analysis: ValueAnalysis, s: SettingValue) -> str:
    t = s.tco
    return (
        f"TCO {fmt_usd(t.total_usd)} over {analysis.model.horizon_months:g} months = labels "
        f"{fmt_usd(t.labels_usd)} + compute {fmt_usd(t.compute_usd)} + energy "
        f"{fmt_usd(t.energy_usd)} (measured) + people {fmt_usd(t.people_usd)} + serving "
        f"{fmt_usd(t.serving_usd)} ({s.serving_method})"
    )


def _money_evidence(analysis: ValueAnalysis, s: SettingValue) -> str:
    e = s.economics
    payback = fmt_months(e.payback_months)
    return (
        f"value {fmt_usd(e.value_usd)}, ROI {fmt_roi(e.roi)}, NPV {fmt_usd(e.npv_usd)} at "
        f"{analysis.model.discount_rate:.0%}/year, payback {payback}; value from the model's "
        f"decisions on the test split ({s.value_rule})"
    )


def _measured_choice(
    record: StudyRecord,
    analysis: ValueAnalysis,
    s: SettingValue,
    front: ParetoFront,
    metric: str,
    why: str,
) -> Choice:
    mean, std = s.test_metrics.get(metric, (s.metric_mean, s.metric_std))
    on = front.contains(s.key)
    configured = analysis.model.configured
    evidence = [
        _seeds(s, metric),
        _cost_evidence(analysis, s),
        f"{'on' if on else 'not on'} the measured Pareto front of TCO against "
        f"{analysis.metric} ({len(front.front)} of {len(front.points)} settings are)",
    ]
    if configured:
        evidence.append(_money_evidence(analysis, s))
    e = s.economics
    words = _words(record, s)
    return Choice(
        kind="measured",
        key=s.key,
        levers=dict(s.levers),
        words=words,
        metric=metric,
        metric_value=mean,
        metric_low=mean - std,
        metric_high=mean + std,
        training_usd=s.tco.training_usd,
        tco_usd=s.tco.total_usd,
        upfront_usd=e.upfront_usd,
        value_usd=e.value_usd if configured else math.nan,
        npv_usd=e.npv_usd if configured else math.nan,
        roi=e.roi if configured else math.nan,
        payback_months=e.payback_months if configured else None,
        threshold=s.threshold if configured else None,
        on_pareto_front=on,
        trials=s.trials,
        why=why,
        drivers=drivers(analysis, s) if configured else "",
        evidence=tuple(evidence),
        method="measured: mean over seeds of the stored trials",
        statement=f"{why}: {words}, measured {metric} {_fmt_metric(mean)}, TCO "
        f"{fmt_usd(s.tco.total_usd)}",
    )


def _forecast_target(
    record: StudyRecord,
    analysis: ValueAnalysis,
    metric: str,
    target: float,
    *,
    level: float,
) -> tuple[Choice | None, list[str]]:
    """Return the cheapest lever amount forecast to reach the target, and what each lever
    says (for the statement when none reaches it)."""
    from payoff.analysis._lever_curve import LEVER_AXES, return_curve, target_lever
    from payoff.analysis._value import value_at

    config = record.config
    price = analysis.model.labels_usd_per_example
    name = metric.removeprefix("test_")
    notes: list[str] = []
    best: Choice | None = None
    for lever in analysis.levers:
        if lever not in LEVER_AXES:
            continue
        try:
            curve = return_curve(record.trials, config, lever, metric=name)
            result = target_lever(curve, target=target, level=level, labels_usd_per_example=price)
        except ConfigError as err:
            notes.append(f"{lever}: {err}")
            continue
        inv = result.inverse
        notes.append(f"{lever} ({curve.unit}): {inv.message}")
        cost = result.costs.get("cost_usd_total")
        base = _top_along(analysis, curve.held, lever, config.lever_values().get(lever, []))
        if not (inv.reachable and math.isfinite(inv.point)) or cost is None or base is None:
            continue
        extra = {
            part: result.costs[f"cost_usd_{part}"].value - getattr(base.tco, f"{part}_usd")
            for part in ("labels", "compute", "energy")
            if f"cost_usd_{part}" in result.costs
        }
        delta = sum(extra.values())
        training = base.tco.training_usd + delta
        vm = target if metric == analysis.model.value_metric else base.value_metric_mean
        econ = value_at(analysis, base, value_metric=vm, upfront_delta_usd=delta)
        held = ", ".join(f"{k}={v}" for k, v in curve.held.items())
        key = f"{lever}={inv.point:,.0f} {curve.unit}" + (f" ({held})" if held else "")
        interval = _interval_words(inv.low, inv.high, curve.unit, level, max(curve.xs))
        methods = "; ".join(
            f"{k.removeprefix('cost_usd_')}: {c.method}"
            for k, c in result.costs.items()
            if k.startswith("cost_usd_") and k != "cost_usd_total"
        )
        configured = analysis.model.configured
        best_candidate = Choice(
            kind="forecast",
            key=key,
            levers={**curve.held, lever: inv.point},
            words=key,
            metric=metric,
            metric_value=target,
            metric_low=math.nan,
            metric_high=math.nan,
            training_usd=training,
            tco_usd=base.tco.total_usd + delta,
            upfront_usd=base.economics.upfront_usd + delta,
            value_usd=econ.value_usd if configured else math.nan,
            npv_usd=econ.npv_usd if configured else math.nan,
            roi=econ.roi if configured else math.nan,
            payback_months=econ.payback_months if configured else None,
            threshold=None,
            on_pareto_front=False,
            trials=(),
            why=f"forecast to reach {metric} {target:g}",
            drivers="",
            evidence=(
                f"return curve of {metric} against {lever}: "
                + ", ".join(f"{p.x:,.0f} -> {p.mean:.4g}" for p in curve.points),
                f"needs {inv.point:,.0f} {curve.unit} ({interval}); {inv.message}",
                f"training cost there {fmt_usd(training)}: {fmt_usd(delta)} more than "
                f"{_words(record, base)} (estimate; {methods})",
                *(f"warning: {w}" for w in inv.warnings),
            ),
            method=f"forecast: inverse of the return curve ({inv.message})",
            statement=(
                f"forecast: {lever} at {inv.point:,.0f} {curve.unit} ({interval}) would reach "
                f"{metric} {target:g}, for about {fmt_usd(training)} of training, "
                f"{fmt_usd(delta)} more than {_words(record, base)} (estimate)"
            ),
        )
        if best is None or best_candidate.training_usd < best.training_usd:
            best = best_candidate
    return best, notes


def _interval_words(low: float, high: float, unit: str, level: float, largest: float) -> str:
    """Say an interval of lever amounts; ends beyond 1,000x the evidence are not counts."""
    far = 1000 * largest
    lo = "out of reach of this study's evidence" if low > far else f"{low:,.0f}"
    if math.isinf(high) or high > far:
        return f"{level:.0%} interval from {lo} {unit} to beyond this study's evidence"
    return f"{level:.0%} interval {lo} to {high:,.0f} {unit}"


def _top_along(
    analysis: ValueAnalysis, held: Mapping[str, Any], lever: str, values: Sequence[Any]
) -> SettingValue | None:
    from payoff.analysis._lever_curve import same_value
    from payoff.analysis._marginal import in_order

    along = [
        s
        for s in analysis.settings
        if all(same_value(s.levers.get(k), v) for k, v in held.items())
    ]
    if not along:
        return None
    return in_order(along, lever, values)[-1]


# --- the next investment, from the recommended setting -------------------------------------


def _steps_from(
    record: StudyRecord,
    analysis: ValueAnalysis,
    base: SettingValue,
    *,
    level: float,
    n_draws: int,
    seed: int,
) -> tuple[list[Investment], list[str]]:
    """Return one step up each lever from ``base`` (the others held), and notes on levers
    without one."""
    from payoff.analysis._lever_curve import LEVER_AXES, same_value
    from payoff.analysis._marginal import in_order

    steps: list[Investment] = []
    notes: list[str] = []
    values = record.config.lever_values()
    for lever in analysis.levers:
        if lever not in LEVER_AXES:
            notes.append(f"{lever}: not an amount to invest more in")
            continue
        others = {k: v for k, v in base.levers.items() if k != lever}
        along = [
            s
            for s in analysis.settings
            if all(same_value(s.levers.get(k), v) for k, v in others.items())
        ]
        order = in_order(along, lever, values.get(lever, []))
        at = next(i for i, s in enumerate(order) if s.key == base.key)
        if at + 1 < len(order):
            up = order[at + 1]
            steps.append(_measured_step(analysis, base, up, lever, level, n_draws, seed))
            continue
        step, why = _forecast_step(record, analysis, base, lever, level, n_draws, seed)
        if step is None:
            notes.append(f"{lever}: {why}")
        else:
            steps.append(step)
    return steps, notes


def _paired(
    analysis: ValueAnalysis,
    stay: SettingValue,
    go: SettingValue,
    *,
    n_draws: int,
    seed: int,
    level: float,
    metric: Any = None,
    extra: Mapping[str, float] | None = None,
) -> tuple[float, float, str]:
    """Return the expected NPV gain of ``go`` over ``stay`` and P(it loses money), from the
    risk section's Monte Carlo: every price and value draw shared, the seeds' noise apart."""
    from payoff.analysis._risk import simulate

    if not analysis.model.configured:
        return math.nan, math.nan, ""
    a = simulate(analysis, stay, n_draws=n_draws, seed=seed, level=level)
    b = simulate(
        analysis,
        go,
        metric=metric,
        extra=extra,
        n_draws=n_draws,
        seed=seed,
        level=level,
        metric_stream=1,
    )
    diff = b.npv_usd - a.npv_usd
    gain, p_loss = float(diff.mean()), float((diff < 0).mean())
    return (
        gain,
        p_loss,
        f"expected NPV gain {fmt_usd(gain)}, P(loses money) {p_loss:.0%}: {n_draws:,} paired "
        f"Monte Carlo draws (seed {seed}; prices and value inputs shared, seed noise apart)",
    )


def _p_no_gain(gain: float, low: float, level: float) -> float:
    z = NormalDist().inv_cdf(0.5 + level / 2)
    sd = (gain - low) / z if math.isfinite(low) else math.nan
    if not (math.isfinite(sd) and sd > 0):
        return 0.0 if gain > 0 else 1.0
    return float(NormalDist(gain, sd).cdf(0.0))


def _scale(metric: str) -> tuple[float, str]:
    from payoff.analysis._value import bounded

    return (100.0, "points") if bounded(metric) else (1.0, "units")


def _step_statement(analysis: ValueAnalysis, i: Investment, what: str, level: float) -> str:
    scale, unit = _scale(analysis.metric)
    money = (
        f", expected NPV gain {fmt_usd(i.expected_npv_gain_usd)}, P(loses money) {i.p_loss:.0%}"
        if math.isfinite(i.expected_npv_gain_usd)
        else f", P(no gain) {i.p_loss:.0%}"
    )
    interval = (
        f" ({level:.0%} interval {i.gain_low * scale:+.2f} to {i.gain_high * scale:+.2f})"
        if math.isfinite(i.gain_low) and math.isfinite(i.gain_high)
        else ""
    )
    return (
        f"{what}: {fmt_usd(i.cost_usd)} more training for {i.gain * scale:+.2f} {unit} of "
        f"{analysis.metric}{interval}, {i.basis}{money}"
    )


def _measured_step(
    analysis: ValueAnalysis,
    base: SettingValue,
    up: SettingValue,
    lever: str,
    level: float,
    n_draws: int,
    seed: int,
) -> Investment:
    from payoff.analysis._lever_curve import LEVER_AXES
    from payoff.analysis._marginal import _amount_of, _interval

    sign = 1.0 if analysis.maximize else -1.0
    gain = sign * (up.metric_mean - base.metric_mean)
    half = _interval(base, up, analysis.seed_std, level)
    cost = up.tco.training_usd - base.tco.training_usd
    npv_gain, p_loss, mc = _paired(analysis, base, up, n_draws=n_draws, seed=seed, level=level)
    if not math.isfinite(p_loss):
        p_loss = _p_no_gain(gain, gain - half, level)
    column, unit = LEVER_AXES[lever]
    inv = Investment(
        from_setting=base.key,
        lever=lever,
        to=up.levers[lever],
        to_setting=up.key,
        from_amount=_amount_of(base, column),
        to_amount=_amount_of(up, column),
        unit=unit,
        cost_usd=cost,
        gain=gain,
        gain_low=gain - half,
        gain_high=gain + half,
        points=gain * _scale(analysis.metric)[0],
        expected_npv_gain_usd=npv_gain,
        p_loss=p_loss,
        basis="measured",
        extrapolation=1.0,
        warnings=(),
        evidence=(
            f"measured: {_seeds(base, analysis.metric)} -> {_seeds(up, analysis.metric)}",
            f"training cost {fmt_usd(base.tco.training_usd)} -> {fmt_usd(up.tco.training_usd)}"
            " (measured)",
            *([mc] if mc else []),
        ),
        method=(
            f"measured: both settings ran ({base.n_seeds} and {up.n_seeds} seeds); interval from "
            "the seeds' spread (normal approximation)"
        ),
        statement="",
    )
    what = f"{lever} {base.levers[lever]} -> {up.levers[lever]}"
    return dataclasses.replace(inv, statement=_step_statement(analysis, inv, what, level))


def _forecast_step(
    record: StudyRecord,
    analysis: ValueAnalysis,
    base: SettingValue,
    lever: str,
    level: float,
    n_draws: int,
    seed: int,
) -> tuple[Investment | None, str]:
    """Return the step doubling ``lever`` beyond ``base`` (its largest measured amount)."""
    from payoff.analysis._lever_curve import cost_at, forecast_lever, return_curve
    from payoff.analysis._risk import metric_draw_from_forecast
    from payoff.analysis._value import bounded

    config = record.config
    held = {k: v for k, v in base.levers.items() if k != lever}
    price = analysis.model.labels_usd_per_example
    try:
        curve = return_curve(record.trials, config, lever, held=held)
        if len(curve.points) < 3:
            return None, (
                f"{len(curve.points)} measured settings along {lever} at the recommended "
                "setting: too few to forecast a step beyond it"
            )
        here_x = curve.points[-1].x
        to = here_x * 2
        f = forecast_lever(curve, to=to, level=level, labels_usd_per_example=price).forecast
        there, here = (cost_at(curve, x, labels_usd_per_example=price) for x in (to, here_x))
    except ConfigError as err:
        return None, str(err)
    sign = 1.0 if analysis.maximize else -1.0
    last = curve.points[-1].mean
    gain = sign * (f.point - last)
    low, high = sorted((sign * (f.low - last), sign * (f.high - last)))
    extra = {
        p: there[f"cost_usd_{p}"].value - here[f"cost_usd_{p}"].value
        for p in ("labels", "compute", "energy")
        if f"cost_usd_{p}" in there and f"cost_usd_{p}" in here
    }
    cost = sum(extra.values())
    npv_gain = p_loss = math.nan
    mc = ""
    if analysis.model.configured:
        vm_name = analysis.model.value_metric.removeprefix("test_")
        try:
            vcurve = return_curve(record.trials, config, lever, metric=vm_name, held=held)
            vf = forecast_lever(vcurve, to=to, level=level, labels_usd_per_example=price).forecast
        except ConfigError as err:
            return None, f"no forecast of {analysis.model.value_metric}: {err}"
        # The forecast's change of the value metric, applied to what the setting measured
        # under its decision rule (threshold, cost matrix): its error mix is kept.
        shift = base.value_metric_mean - vcurve.points[-1].mean
        bounds = (0.0, 1.0) if bounded(analysis.model.value_metric) else (0.0, math.inf)
        moved = dataclasses.replace(
            vf, point=vf.point + shift, low=vf.low + shift, high=vf.high + shift
        )
        draw = metric_draw_from_forecast(moved, bounds=bounds)
        npv_gain, p_loss, mc = _paired(
            analysis,
            base,
            base,
            n_draws=n_draws,
            seed=seed,
            level=level,
            metric=draw,
            extra=extra,
        )
    else:
        p_loss = _p_no_gain(gain, low, level)
    inv = Investment(
        from_setting=base.key,
        lever=lever,
        to=to,
        to_setting=f"{lever}={to:,.0f} {curve.unit}",
        from_amount=here_x,
        to_amount=to,
        unit=curve.unit,
        cost_usd=cost,
        gain=gain,
        gain_low=low,
        gain_high=high,
        points=gain * _scale(analysis.metric)[0],
        expected_npv_gain_usd=npv_gain,
        p_loss=p_loss,
        basis="forecast",
        extrapolation=f.extrapolation,
        warnings=f.warnings,
        evidence=(
            f"return curve of {analysis.metric} along {lever} at the recommended setting: "
            + ", ".join(f"{p.x:,.0f} -> {p.mean:.4g}" for p in curve.points),
            f"forecast at {to:,.0f} {curve.unit}: {f.point:.4g} ({level:.0%} interval "
            f"{f.low:.4g} to {f.high:.4g}); {f.method}",
            "cost of the step (estimate): "
            + "; ".join(f"{k} {fmt_usd(v)}" for k, v in extra.items()),
            *([mc] if mc else []),
            *(f"warning: {w}" for w in f.warnings),
        ),
        method=f"forecast: {f.method}",
        statement="",
    )
    what = f"{lever} {here_x:,.0f} -> {to:,.0f} {curve.unit}"
    return dataclasses.replace(inv, statement=_step_statement(analysis, inv, what, level)), ""


def _labels_answer(
    record: StudyRecord, steps: Sequence[Investment], analysis: ValueAnalysis
) -> str:
    if "data" not in analysis.levers:
        return "More labels? Not studied: the study does not vary the data lever."
    step = next((s for s in steps if s.lever == "data"), None)
    if step is None:
        return "More labels? Unknown: no step up the data lever from the recommended setting."
    scale, unit = _scale(analysis.metric)
    to = (
        f"{fmt_count(step.to_amount)} examples"
        if math.isfinite(step.to_amount)
        else f"data={step.to}"
    )
    money = (
        f", NPV {'+' if step.expected_npv_gain_usd >= 0 else ''}"
        f"{fmt_usd(step.expected_npv_gain_usd)}, P(loss) {step.p_loss:.0%}"
        if math.isfinite(step.expected_npv_gain_usd)
        else f", P(no gain) {step.p_loss:.0%}"
    )
    return (
        f"More labels? {'Yes' if step.pays else 'No'}: {fmt_usd(step.cost_usd)} for "
        f"{step.gain * scale:+.2f} {unit} of {analysis.metric} (to {to}, {step.basis}){money}."
    )


# --- the recommendation --------------------------------------------------------------------


def recommend(
    record: StudyRecord,
    *,
    target: str | Mapping[str, float] | None = None,
    budget_usd: float | None = None,
    level: float = 0.9,
    n_draws: int = 10_000,
    seed: int = 0,
) -> Recommendation:
    """Recommend what to do with a study's results.

    Args:
        record: The study's record (``study.record()``).
        target: ``accuracy=0.97`` or ``{"accuracy": 0.97}``; default: the study file's
            ``target``.
        budget_usd: The most the setting may cost over the horizon (its TCO).
        level: Coverage of intervals.
        n_draws: Monte Carlo draws.
        seed: Monte Carlo seed (the same seed, the same answer).

    Raises:
        ConfigError: a malformed target, an unknown target metric, a budget <= 0, or a
            study without completed trials.
    """
    from payoff.analysis._marginal import marginal_returns
    from payoff.analysis._value import value_analysis

    _check(budget_usd, level)
    analysis = value_analysis(record)
    marginals = marginal_returns(analysis, record.trials, record.config, level=level)
    return recommend_from(
        record,
        analysis,
        marginals,
        target=target,
        budget_usd=budget_usd,
        level=level,
        n_draws=n_draws,
        seed=seed,
    )


def _check(budget_usd: float | None, level: float) -> None:
    if budget_usd is not None and not budget_usd > 0:
        raise ConfigError(f"--budget-usd must be > 0, got {budget_usd!r}.")
    if not 0.5 <= level < 1:
        raise ConfigError(f"level must be in [0.5, 1), got {level!r}.")


def _target(analysis: ValueAnalysis, parsed: tuple[str, float]) -> tuple[str, float, bool]:
    from payoff.analysis._value import bounded, maximize

    name, value = parsed
    column = f"test_{name}" if not name.startswith("test_") else name
    known = set().union(*(s.test_metrics for s in analysis.settings))
    if column not in known:
        column = name if name in known else column
    if column not in known:
        raise ConfigError(
            f"target metric {name!r} is not among the trials' metrics: "
            f"{', '.join(sorted(m.removeprefix('test_') for m in known))}."
        )
    if bounded(column) and not 0.0 <= value <= 1.0:
        raise ConfigError(f"target {name}={value:g} is outside the metric's range [0, 1].")
    return column, value, maximize(column)


def npv_noise_usd(analysis: ValueAnalysis, s: SettingValue) -> float:
    """Return the standard error of a setting's NPV from its seeds' spread alone."""
    from payoff.analysis._value import annuity_factor

    m = analysis.model
    sd = s.value_metric_std if s.n_seeds > 1 else analysis.seed_std
    if not math.isfinite(sd):
        return math.nan
    slope = (
        m.usd_per_correct + s.error_cost_usd
        if m.kind == "classification"
        else (m.usd_per_error_unit)
    )
    per_month = m.predictions_per_month * slope * sd / math.sqrt(s.n_seeds)
    return per_month * annuity_factor(m.horizon_months, m.discount_rate)


def setting_rows(
    analysis: ValueAnalysis,
    *,
    target: tuple[str, float, bool] | None,
    budget_usd: float | None,
) -> tuple[dict[str, Any], ...]:
    """Return one JSON-able row a setting (see :meth:`Recommendation.as_dict`)."""
    configured = analysis.model.configured
    rows = []
    for s in analysis.settings:
        e = s.economics
        rows.append(
            {
                "setting": dict(s.levers),
                "key": s.key,
                "n_trials": s.n_seeds,
                "metric_mean": s.metric_mean,
                "metric_sd": s.metric_std if s.n_seeds > 1 else None,
                "tco_usd": s.tco.total_usd,
                "value_usd": e.value_usd if configured else None,
                "npv_usd": e.npv_usd if configured else None,
                "roi": e.roi if configured else None,
                "payback_months": e.payback_months if configured else None,
                "meets_target": None
                if target is None
                else _meets(s.test_metrics[target[0]][0], target[1], target[2]),
                "within_budget": budget_usd is None or s.tco.total_usd <= budget_usd,
                "threshold": s.threshold if configured else None,
                "value_per_prediction_usd": s.value_per_prediction_usd if configured else None,
                "value_rule": s.value_rule,
            }
        )
    return tuple(rows)


def _losing(record: StudyRecord, analysis: ValueAnalysis) -> str:
    """Say, with the arithmetic, that every prediction loses money (or beats no baseline)."""
    m = analysis.model
    s = max(analysis.settings, key=lambda s: s.value_per_prediction_usd)
    if m.kind == "classification":
        acc = s.value_metric_mean
        arithmetic = (
            f"{fmt_usd(m.usd_per_prediction)} + {acc:.3f} x {fmt_usd(m.usd_per_correct)} "
            f"- {1 - acc:.3f} x {fmt_usd(s.error_cost_usd)} an error"
        )
    else:
        arithmetic = (
            f"{fmt_usd(m.usd_per_prediction)} - {s.value_metric_mean:.4g} mean absolute error x "
            f"{fmt_usd(m.usd_per_error_unit)}"
        )
    if m.baseline is not None:
        return (
            f"No setting beats the baseline ({m.baseline.name}, {m.value_metric} "
            f"{m.baseline.value_metric:.4g}): even the best, {_words(record, s)}, is worth "
            f"{fmt_usd(s.value_per_prediction_usd)} a prediction over it, so no setting can pay "
            "back. Check value.baseline, or improve the model before deploying it."
        )
    return (
        "Under the value model every prediction loses money: even the best setting, "
        f"{_words(record, s)}, makes {arithmetic} = {fmt_usd(s.value_per_prediction_usd)} "
        "a prediction "
        f"(at {m.value_metric} {s.value_metric_mean:.4g}), so no setting can pay back. Check "
        "value.usd_per_correct and value.usd_per_error (or error_costs_usd)."
    )


def recommend_from(
    record: StudyRecord,
    analysis: ValueAnalysis,
    marginals: tuple[LeverMarginal, ...],
    *,
    target: str | Mapping[str, float] | None = None,
    budget_usd: float | None = None,
    level: float = 0.9,
    n_draws: int = 10_000,
    seed: int = 0,
) -> Recommendation:
    """Recommend from analyses already made (see :func:`recommend`)."""
    from payoff.analysis._pareto import pareto_front
    from payoff.analysis._risk import risk_flags, simulate

    _check(budget_usd, level)
    front = pareto_front(analysis, "tco_usd")
    configured = analysis.model.configured
    within = [s for s in analysis.settings if budget_usd is None or s.tco.total_usd <= budget_usd]
    ranked = _ranked(analysis, within)
    budget_txt = (
        f"within {fmt_usd(budget_usd)}" if budget_usd is not None else "with no budget set"
    )
    best_roi = None
    if ranked:
        why = f"highest NPV {budget_txt}" if configured else f"best {analysis.metric} {budget_txt}"
        best_roi = _measured_choice(record, analysis, ranked[0], front, analysis.metric, why)
    parsed = parse_target_arg(target, record.config.target)
    target_info = _target(analysis, parsed) if parsed is not None else None
    meets, meeting, target_sentence = _target_choice(
        record, analysis, front, target_info, budget_usd=budget_usd, level=level
    )
    recommended = _recommended(
        record, analysis, front, best_roi, meeting, within, target_info, budget_usd
    )
    steps: list[Investment] = []
    notes: list[str] = []
    if recommended is not None:
        base = analysis.setting(recommended.key)
        steps, notes = _steps_from(record, analysis, base, level=level, n_draws=n_draws, seed=seed)
        steps.sort(key=lambda i: _step_rank(i, configured))
    nxt = next((i for i in steps if i.pays), None)
    why_none = "" if nxt is not None else _why_none(recommended, steps, notes)
    labels = (
        _labels_answer(record, steps, analysis)
        if recommended is not None
        else "More labels? Unknown: no setting fits the budget."
    )
    risk = None
    if configured and recommended is not None:
        risk = simulate(analysis, analysis.setting(recommended.key), n_draws=n_draws, seed=seed)
    flags = risk_flags(record, analysis, marginals=marginals)

    statements: list[str] = []
    if configured and all(s.value_per_prediction_usd <= 0 for s in analysis.settings):
        statements.append(_losing(record, analysis))
    if recommended is not None:
        caution = [
            f"{f.kind.replace('_', '-')}: {f.message.rstrip('.')}"
            for f in flags
            if f.subject == recommended.key
        ]
        statements.append(
            _headline(analysis, recommended)
            + (f" Caution: {'; '.join(caution)}." if caution else "")
        )
        statements.append(labels)
        if configured:
            statements.append(_money_basis(analysis, analysis.setting(recommended.key)))
    else:
        cheapest = min(analysis.settings, key=lambda s: s.tco.total_usd)
        statements.append(
            f"No setting fits the budget {fmt_usd(budget_usd)}: the cheapest, "
            f"{_words(record, cheapest)}, costs {fmt_usd(cheapest.tco.total_usd)} over the "
            "horizon."
        )
    statements.append(
        target_sentence
        or "No target set (study file `target:` or --target metric=value): no cheapest "
        "setting to name."
    )
    if best_roi is not None and (recommended is None or best_roi.key != recommended.key):
        statements.append(_best_roi_sentence(analysis, best_roi, budget_txt))
    if configured and (noise := _within_noise(record, analysis, ranked)):
        statements.append(noise)
    if nxt is not None and recommended is not None:
        statements.append(f"Next investment, from {recommended.words}: {nxt.statement}.")
    elif recommended is not None:
        statements.append(f"Next investment: none — {why_none}.")
    if risk is not None and recommended is not None:
        statements.append(
            f"Risk of {recommended.words}: P(it loses money) {risk.p_loss:.0%}; NPV 5th/50th/95th "
            f"percentiles {fmt_usd(risk.npv_p5_usd)} / {fmt_usd(risk.npv_p50_usd)} / "
            f"{fmt_usd(risk.npv_p95_usd)}; most sensitive to "
            + ", ".join(b.label for b in risk.tornado[:2])
            + f" (Monte Carlo, {risk.n_draws:,} draws, seed {risk.seed})."
        )
    pilot = pilot_view(record.pilot)
    if pilot is not None:
        statements.extend(pilot.statements())
    if flags:
        kinds: dict[str, int] = {}
        for f in flags:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        statements.append(
            "Warnings: " + ", ".join(f"{n} {k.replace('_', '-')}" for k, n in kinds.items()) + "."
        )
    return Recommendation(
        study=record.name,
        metric=analysis.metric,
        target_metric=target_info[0] if target_info else None,
        target=target_info[1] if target_info else None,
        target_met=bool(meeting),
        budget_usd=budget_usd,
        recommended=recommended,
        meets_target=meets,
        best_roi=best_roi,
        ranked_by="npv" if configured else analysis.metric,
        next_investment=nxt,
        next_investment_why_none=why_none,
        candidates=tuple(steps),
        labels_answer=labels,
        settings=setting_rows(analysis, target=target_info, budget_usd=budget_usd),
        risk=risk,
        flags=flags,
        statements=tuple(statements),
        value_configured=configured,
        pilot=pilot,
    )


def _ranked(analysis: ValueAnalysis, within: Sequence[SettingValue]) -> list[SettingValue]:
    """Return the settings best first: by NPV (the metric without a value model), then TCO."""
    if analysis.model.configured:
        return sorted(within, key=lambda s: (-_finite(s.economics.npv_usd), s.tco.total_usd))
    sign = 1.0 if analysis.maximize else -1.0
    return sorted(within, key=lambda s: (-sign * s.metric_mean, s.tco.total_usd))


def _target_choice(
    record: StudyRecord,
    analysis: ValueAnalysis,
    front: ParetoFront,
    target_info: tuple[str, float, bool] | None,
    *,
    budget_usd: float | None,
    level: float,
) -> tuple[Choice | None, list[SettingValue], str]:
    """Return the cheapest choice meeting the target (measured, else forecast), the measured
    settings that meet it, and the sentence that says so."""
    if target_info is None:
        return None, [], ""
    column, value, up = target_info
    sign, direction = ("≥", 1.0) if up else ("≤", -1.0)
    meeting = [s for s in analysis.settings if _meets(s.test_metrics[column][0], value, up)]
    if meeting:
        cheapest = min(
            meeting, key=lambda s: (s.tco.total_usd, -direction * s.test_metrics[column][0])
        )
        why = f"cheapest setting with {column} {sign} {value:g}"
        meets = _measured_choice(record, analysis, cheapest, front, column, why)
        over = (
            f" That is over the budget of {fmt_usd(budget_usd)}."
            if budget_usd is not None and cheapest.tco.total_usd > budget_usd
            else ""
        )
        return (
            meets,
            meeting,
            f"Cheapest setting that meets {column} {sign} {value:g}: {meets.words} — measured "
            f"{_seeds(cheapest, column)}, TCO {fmt_usd(cheapest.tco.total_usd)} over "
            f"{analysis.model.horizon_months:g} months.{over}",
        )
    best = max(analysis.settings, key=lambda s: direction * s.test_metrics[column][0])
    measured = (
        f"No measured setting meets {column} {sign} {value:g}; the best measured is "
        f"{_words(record, best)} with {_seeds(best, column)}."
    )
    forecast, notes = _forecast_target(record, analysis, column, value, level=level)
    if forecast is not None:
        said = f"{forecast.statement[0].upper()}{forecast.statement[1:]}."
        return forecast, [], f"{measured} {said}"
    said = " ".join(n if n.endswith(".") else f"{n}." for n in notes)
    return (
        None,
        [],
        f"{measured} No setting meets the target, measured or forecast. What the forecasts "
        f"say: {said or 'no lever has a return curve.'}",
    )


def _recommended(
    record: StudyRecord,
    analysis: ValueAnalysis,
    front: ParetoFront,
    best_roi: Choice | None,
    meeting: Sequence[SettingValue],
    within: Sequence[SettingValue],
    target_info: tuple[str, float, bool] | None,
    budget_usd: float | None,
) -> Choice | None:
    """Return the setting to deploy: the best NPV of those meeting the target within the
    budget (the cheapest without a value model), else the best ROI."""
    in_budget = f" within {fmt_usd(budget_usd)}" if budget_usd is not None else ""
    keys = {s.key for s in within}
    candidates = [s for s in meeting if s.key in keys]
    if candidates:
        if analysis.model.configured:
            pick = max(candidates, key=lambda s: (_finite(s.economics.npv_usd), -s.tco.total_usd))
            why = f"highest NPV of the settings that meet the target{in_budget}"
        else:
            pick = min(candidates, key=lambda s: s.tco.total_usd)
            why = f"cheapest setting that meets the target{in_budget}"
        return _measured_choice(record, analysis, pick, front, analysis.metric, why)
    if best_roi is not None and target_info is not None:
        why = f"{best_roi.why}; no measured setting meets the target{in_budget}"
        return dataclasses.replace(best_roi, why=why)
    return best_roi


def _step_rank(i: Investment, configured: bool) -> float:
    if configured:
        return -_finite(i.expected_npv_gain_usd)
    return -(i.gain / i.cost_usd if i.cost_usd > 0 else math.copysign(math.inf, i.gain))


def _why_none(
    recommended: Choice | None, steps: Sequence[Investment], notes: Sequence[str]
) -> str:
    if recommended is None:
        return "no setting fits the budget"
    tried = sorted({i.lever for i in steps})
    on = f"on {' or '.join(tried)} " if tried else ""
    return (
        f"no further step {on}pays from {recommended.words}"
        + (f"; the best candidate: {steps[0].statement}" if steps else "")
        + (f" ({'; '.join(notes)})" if notes else "")
    )


def _headline(analysis: ValueAnalysis, c: Choice) -> str:
    if not analysis.model.configured:
        return (
            f"Deploy {c.words} ({c.why}): measured {c.metric} {_fmt_metric(c.metric_value)}, "
            f"TCO {fmt_usd(c.tco_usd)}. Add a `value:` section (predictions_per_month, "
            "usd_per_correct, usd_per_error) to rank by NPV and ROI."
        )
    payback = (
        "never pays back"
        if c.payback_months is None
        else f"pays back in {fmt_months(c.payback_months)}"
    )
    return (
        f"Deploy {c.words} ({c.why}): ROI {fmt_roi(c.roi)}, NPV {fmt_usd(c.npv_usd)}, "
        f"{payback}; measured {c.metric} {_fmt_metric(c.metric_value)}. ROI = {c.drivers}."
    )


def _money_basis(analysis: ValueAnalysis, s: SettingValue) -> str:
    m = analysis.model
    over = "no model" if m.baseline is None else f"the {m.baseline.name} ({m.baseline.method})"
    return (
        f"Quality is {analysis.metric} (the study's metric); money is the value of the "
        f"model's decisions on the test split ({s.value_rule}), over {over}."
    )


def _best_roi_sentence(analysis: ValueAnalysis, c: Choice, budget_txt: str) -> str:
    if not analysis.model.configured:
        return (
            f"Best {analysis.metric} {budget_txt}: {c.words} ({_fmt_metric(c.metric_value)}, "
            f"TCO {fmt_usd(c.tco_usd)})."
        )
    return (
        f"Best ROI {budget_txt}: {c.words} — NPV {fmt_usd(c.npv_usd)}, ROI {fmt_roi(c.roi)} "
        f"(ROI = {c.drivers})."
    )


def _within_noise(
    record: StudyRecord, analysis: ValueAnalysis, ranked: Sequence[SettingValue]
) -> str:
    if len(ranked) < 2:
        return ""
    a, b = ranked[0], ranked[1]
    na, nb = npv_noise_usd(analysis, a), npv_noise_usd(analysis, b)
    if not (math.isfinite(na) and math.isfinite(nb)):
        return ""
    gap = a.economics.npv_usd - b.economics.npv_usd
    if gap > 2 * math.hypot(na, nb):
        return ""
    return (
        f"The top two by NPV are within seed noise of each other: {_words(record, a)} "
        f"({fmt_usd(a.economics.npv_usd)}) and {_words(record, b)} "
        f"({fmt_usd(b.economics.npv_usd)}); their gap, {fmt_usd(gap)}, is less than twice "
        f"its seed noise (sd about {fmt_usd(math.hypot(na, nb))}). Either is a sound choice."
    )


def _finite(x: float) -> float:
    return x if math.isfinite(x) else (-math.inf if math.isnan(x) else x)
