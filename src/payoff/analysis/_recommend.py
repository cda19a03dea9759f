"""Recommendations: the cheapest setting that meets a target, the best ROI within a budget,
and the next investment worth making, each with the evidence behind it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from payoff._errors import ConfigError
from payoff.analysis._value import fmt_roi, fmt_usd

if TYPE_CHECKING:
    import pandas as pd

    from payoff.analysis._forecast import Forecast
    from payoff.analysis._marginal import LeverMarginal, MarginalStep
    from payoff.analysis._pareto import ParetoFront
    from payoff.analysis._risk import Flag, RiskResult
    from payoff.analysis._value import SettingValue, ValueAnalysis
    from payoff.study import Study


@dataclass(frozen=True, slots=True)
class Choice:
    """A recommended setting, measured or forecast, with its numbers and evidence.

    Attributes:
        kind: ``measured`` (trials ran it) or ``forecast`` (a return curve says a larger
            amount of a lever would get there).
        key: The setting (``data=1 model=large compute=15``), or for a forecast the lever
            amount it needs on top of the held levers.
        levers: The lever values (for a forecast, the held levers and the lever's amount).
        metric: The metric the choice is judged on.
        metric_value: Its mean over seeds, or the forecast's point.
        metric_low: Mean - sd (measured), or the low end of the forecast interval.
        metric_high: Mean + sd, or the high end.
        training_usd: Labels + compute + energy of one training run.
        tco_usd: Total cost of ownership over the horizon.
        upfront_usd: Paid before the first prediction.
        npv_usd: Net present value.
        roi: Return on investment (NaN without a value model).
        payback_months: Month the cash flow turns positive, or None.
        on_pareto_front: Whether it is on the measured front of TCO against the metric.
        trials: The trials behind it.
        evidence: The facts it rests on, one per line.
        method: How its numbers were obtained.
        statement: The choice in plain words.
    """

    kind: str
    key: str
    levers: dict[str, Any]
    metric: str
    metric_value: float
    metric_low: float
    metric_high: float
    training_usd: float
    tco_usd: float
    upfront_usd: float
    npv_usd: float
    roi: float
    payback_months: float | None
    on_pareto_front: bool
    trials: tuple[int, ...]
    evidence: tuple[str, ...]
    method: str
    statement: str


@dataclass(frozen=True, slots=True)
class Investment:
    """The next investment worth making: one more step up a lever, forecast.

    Attributes:
        lever: The lever.
        from_amount: Its largest measured amount.
        to_amount: The amount invested in.
        unit: What the amount counts.
        cost_usd: Extra training cost (labels + compute + energy), an estimate.
        gain: Forecast improvement of the metric (positive is better).
        gain_low: Low end of the gain's interval.
        gain_high: High end.
        points: The gain in points (metrics in [0, 1]) or metric units.
        npv_gain_usd: Expected NPV gained over staying at ``from_amount`` (NaN without a
            value model).
        p_loss: Probability the step loses money (NPV gain < 0), or that it brings no gain
            when there is no value model.
        extrapolation: How far beyond the largest measured amount the forecast reaches.
        warnings: The forecaster's warnings.
        evidence: The facts it rests on.
        method: How its numbers were obtained.
        statement: The investment in plain words.
    """

    lever: str
    from_amount: float
    to_amount: float
    unit: str
    cost_usd: float
    gain: float
    gain_low: float
    gain_high: float
    points: float
    npv_gain_usd: float
    p_loss: float
    extrapolation: float
    warnings: tuple[str, ...]
    evidence: tuple[str, ...]
    method: str
    statement: str


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What to do, in plain words, with the evidence: see :func:`recommend`.

    Attributes:
        study: The study's name.
        metric: The study's test metric column.
        target_metric: The target's metric column, or None without a target.
        target: The target value, or None.
        target_met: Whether a measured setting meets the target.
        budget_usd: The budget on TCO, or None.
        meets_target: The cheapest setting that meets the target (measured, else
            forecast), or None when none does (see ``statements``).
        best_roi: The best setting within the budget: by ROI with a value model, else by
            the metric (``ranked_by`` says which); None when nothing fits the budget.
        ranked_by: ``roi`` or the metric column.
        next_investment: The next step worth taking, or None when none is forecast to pay.
        risk: The Monte Carlo of the headline choice, or None.
        flags: Reasons to trust the results less.
        statements: The recommendation in plain words (the report's first screen).
        value_configured: Whether the study has a value model (volume and value).
        front_axis: The Pareto front the choices are checked against.
    """

    study: str
    metric: str
    target_metric: str | None
    target: float | None
    target_met: bool
    budget_usd: float | None
    meets_target: Choice | None
    best_roi: Choice | None
    ranked_by: str
    next_investment: Investment | None
    risk: RiskResult | None = field(compare=False)
    flags: tuple[Flag, ...]
    statements: tuple[str, ...]
    value_configured: bool
    front_axis: str = "tco_usd"

    def __str__(self) -> str:
        return "\n".join(self.statements)

    def as_dict(self) -> dict[str, Any]:
        """Return the recommendation as JSON-able values (NaN and infinity become None)."""
        out = {
            "study": self.study,
            "metric": self.metric,
            "target_metric": self.target_metric,
            "target": self.target,
            "target_met": self.target_met,
            "budget_usd": self.budget_usd,
            "meets_target": _plain(self.meets_target),
            "best_roi": _plain(self.best_roi),
            "ranked_by": self.ranked_by,
            "next_investment": _plain(self.next_investment),
            "risk": self.risk.as_dict() if self.risk is not None else None,
            "flags": [_plain(f) for f in self.flags],
            "statements": list(self.statements),
            "value_configured": self.value_configured,
            "front_axis": self.front_axis,
        }
        return _clean(out)


def _plain(obj: Any) -> Any:
    return None if obj is None else dataclasses.asdict(obj)


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if hasattr(x, "item"):  # numpy scalars
        return _clean(x.item())
    return x


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
    payback = "never" if e.payback_months is None else f"{e.payback_months:.2g} months"
    return (
        f"value {fmt_usd(e.value_usd)}, ROI {fmt_roi(e.roi)}, NPV {fmt_usd(e.npv_usd)} at "
        f"{analysis.model.discount_rate:.0%}/year, payback {payback} (value model: "
        f"{analysis.model.value_metric} x study file prices)"
    )


def _measured_choice(
    analysis: ValueAnalysis, s: SettingValue, front: ParetoFront, metric: str, why: str
) -> Choice:
    mean, std = s.test_metrics.get(metric, (s.metric_mean, s.metric_std))
    on = front.contains(s.key)
    evidence = [
        _seeds(s, metric),
        _cost_evidence(analysis, s),
        f"{'on' if on else 'not on'} the measured Pareto front of TCO against "
        f"{analysis.metric} ({len(front.front)} of {len(front.points)} settings are)",
    ]
    if analysis.model.configured:
        evidence.append(_money_evidence(analysis, s))
    e = s.economics
    return Choice(
        kind="measured",
        key=s.key,
        levers=dict(s.levers),
        metric=metric,
        metric_value=mean,
        metric_low=mean - std,
        metric_high=mean + std,
        training_usd=s.tco.training_usd,
        tco_usd=s.tco.total_usd,
        upfront_usd=e.upfront_usd,
        npv_usd=e.npv_usd if analysis.model.configured else math.nan,
        roi=e.roi if analysis.model.configured else math.nan,
        payback_months=e.payback_months if analysis.model.configured else None,
        on_pareto_front=on,
        trials=s.trials,
        evidence=tuple(evidence),
        method="measured: mean over seeds of the stored trials",
        statement=f"{why}: {s.key}, measured {metric} {_fmt_metric(mean)}, TCO "
        f"{fmt_usd(s.tco.total_usd)}",
    )


def _forecast_target(
    study_frame: pd.DataFrame,
    analysis: ValueAnalysis,
    metric: str,
    target: float,
    *,
    level: float,
    config: Any,
) -> tuple[Choice | None, list[str]]:
    """Return the cheapest lever amount forecast to reach the target, and what each lever
    says (for the statement when none reaches it)."""
    from payoff.analysis._lever_curve import LEVER_AXES, return_curve, target_lever
    from payoff.prices import load_price_book
    from payoff.study._ledger import labels_usd_per_example

    price = labels_usd_per_example(config, load_price_book(config.prices))
    name = metric.removeprefix("test_")
    notes: list[str] = []
    best: Choice | None = None
    for lever in analysis.levers:
        if lever not in LEVER_AXES:
            continue
        try:
            curve = return_curve(study_frame, config, lever, metric=name)
            result = target_lever(curve, target=target, level=level, labels_usd_per_example=price)
        except ConfigError as err:
            notes.append(f"{lever}: {err}")
            continue
        inv = result.inverse
        notes.append(f"{lever} ({curve.unit}): {inv.message}")
        if not (inv.reachable and math.isfinite(inv.point)):
            continue
        cost = result.costs.get("cost_usd_total")
        if cost is None:
            continue
        base = _base_setting(analysis, curve.held, lever)
        if base is None:
            continue
        extra = {
            part: result.costs[f"cost_usd_{part}"].value - getattr(base.tco, f"{part}_usd")
            for part in ("labels", "compute", "energy")
            if f"cost_usd_{part}" in result.costs
        }
        delta = sum(extra.values())
        training = base.tco.training_usd + delta
        econ = _forecast_economics(analysis, base, metric, target, delta)
        held = ", ".join(f"{k}={v}" for k, v in curve.held.items())
        key = f"{lever}={inv.point:,.0f} {curve.unit}" + (f" ({held})" if held else "")
        high = "never (within reach)" if math.isinf(inv.high) else f"{inv.high:,.0f}"
        methods = "; ".join(
            f"{k.removeprefix('cost_usd_')}: {c.method}"
            for k, c in result.costs.items()
            if k.startswith("cost_usd_") and k != "cost_usd_total"
        )
        evidence = (
            f"return curve of {metric} against {lever}: "
            + ", ".join(f"{p.x:,.0f} -> {p.mean:.4g}" for p in curve.points),
            f"needs {inv.point:,.0f} {curve.unit} ({level:.0%} interval {inv.low:,.0f} to "
            f"{high}); {inv.message}",
            f"training cost there {fmt_usd(training)}: {fmt_usd(delta)} more than {base.key} "
            f"(estimate; {methods})",
            *(f"warning: {w}" for w in inv.warnings),
        )
        choice = Choice(
            kind="forecast",
            key=key,
            levers={**curve.held, lever: inv.point},
            metric=metric,
            metric_value=target,
            metric_low=math.nan,
            metric_high=math.nan,
            training_usd=training,
            tco_usd=base.tco.total_usd + delta,
            upfront_usd=base.economics.upfront_usd + delta,
            npv_usd=econ.npv_usd if analysis.model.configured else math.nan,
            roi=econ.roi if analysis.model.configured else math.nan,
            payback_months=econ.payback_months if analysis.model.configured else None,
            on_pareto_front=False,
            trials=(),
            evidence=evidence,
            method=f"forecast: inverse of the return curve ({inv.message})",
            statement=(
                f"forecast: {lever} at {inv.point:,.0f} {curve.unit} ({level:.0%} interval "
                f"{inv.low:,.0f} to {high}) would reach {metric} {target:g}, for about "
                f"{fmt_usd(training)} of training, {fmt_usd(delta)} more than {base.key} "
                "(estimate)"
            ),
        )
        if best is None or choice.training_usd < best.training_usd:
            best = choice
    return best, notes


def _base_setting(
    analysis: ValueAnalysis, held: Mapping[str, Any], lever: str
) -> SettingValue | None:
    from payoff.analysis._marginal import _order

    along = [
        s
        for s in analysis.settings
        if all(repr(s.levers.get(k)) == repr(v) for k, v in held.items())
    ]
    if not along:
        return None
    top = _order([s.levers[lever] for s in along], [])[-1]
    return next(s for s in along if repr(s.levers[lever]) == repr(top))


def _forecast_economics(
    analysis: ValueAnalysis, base: SettingValue, metric: str, value: float, delta: float
) -> Any:
    from payoff.analysis._value import value_at

    vm = value if metric == analysis.model.value_metric else base.value_metric_mean
    return value_at(analysis, base, value_metric=vm, upfront_delta_usd=delta)


def _value_forecast(
    frame: pd.DataFrame, analysis: ValueAnalysis, config: Any, step: MarginalStep, level: float
) -> Forecast | None:
    """Return the forecast of the value metric at the step's amount."""
    from payoff.analysis._lever_curve import forecast_lever, return_curve

    name = analysis.model.value_metric.removeprefix("test_")
    try:
        curve = return_curve(frame, config, step.lever, metric=name)
        return forecast_lever(
            curve, to=step.to_amount, level=level, labels_usd_per_example=0.0
        ).forecast
    except ConfigError:
        return None


def _investment(
    frame: pd.DataFrame,
    analysis: ValueAnalysis,
    config: Any,
    lm: LeverMarginal,
    *,
    level: float,
    n_draws: int,
    seed: int,
) -> Investment | None:
    from payoff.analysis._lever_curve import LEVER_AXES, cost_at, return_curve
    from payoff.analysis._risk import metric_draw_from_forecast, simulate
    from payoff.analysis._value import bounded

    step = lm.next
    if step is None or lm.top is None:
        return None
    base = analysis.setting(lm.top)
    metric = analysis.metric
    z = NormalDist().inv_cdf(0.5 + level / 2)
    evidence = [
        f"measured along {lm.lever} (held: "
        + (", ".join(f"{k}={v}" for k, v in lm.held.items()) or "nothing")
        + "): "
        + "; ".join(s.statement(metric) for s in lm.steps),
        f"forecast at {step.to_amount:,.0f} {step.unit} ({step.extrapolation:.1f}x the largest "
        f"measured): {metric} {step.to_metric:.4g} ({level:.0%} interval "
        f"{step.from_metric + step.gain_low * (1 if analysis.maximize else -1):.4g} to "
        f"{step.from_metric + step.gain_high * (1 if analysis.maximize else -1):.4g})",
        f"cost of the step {fmt_usd(step.delta_cost_usd)} (estimate: {step.method})",
        *(f"warning: {w}" for w in step.warnings),
    ]
    npv_gain = p_loss = math.nan
    if analysis.model.configured:
        vf = _value_forecast(frame, analysis, config, step, level)
        if vf is not None:
            bounds = (0.0, 1.0) if bounded(analysis.model.value_metric) else (0.0, math.inf)
            try:
                curve = return_curve(frame, config, step.lever)
                price = analysis.model.labels_usd_per_example
                there = cost_at(curve, step.to_amount, labels_usd_per_example=price)
                here = cost_at(curve, step.from_amount, labels_usd_per_example=price)
                extra = {
                    p: there[f"cost_usd_{p}"].value - here[f"cost_usd_{p}"].value
                    for p in ("labels", "compute", "energy")
                    if f"cost_usd_{p}" in there and f"cost_usd_{p}" in here
                }
            except ConfigError:
                extra = {"labels": step.delta_cost_usd}
            if step.lever in LEVER_AXES:
                stay = simulate(analysis, base, n_draws=n_draws, seed=seed, level=level)
                go = simulate(
                    analysis,
                    base,
                    metric=metric_draw_from_forecast(vf, bounds=bounds),
                    extra=extra,
                    n_draws=n_draws,
                    seed=seed,
                    level=level,
                    key=f"{lm.lever}={step.to_amount:,.0f}",
                )
                diff = go.npv_usd - stay.npv_usd
                npv_gain = float(diff.mean())
                p_loss = float((diff < 0).mean())
                evidence.append(
                    f"NPV gain {fmt_usd(npv_gain)} on average over {n_draws:,} paired Monte "
                    f"Carlo draws (seed {seed}); P(the step loses money) {p_loss:.0%}"
                )
    if math.isnan(p_loss):
        sd = max(step.gain - step.gain_low, 1e-12) / z
        p_loss = float(NormalDist(step.gain, sd).cdf(0.0)) if math.isfinite(sd) else math.nan
    scale, unit = (100.0, "points") if bounded(metric) else (1.0, "units")
    value_part = (
        f"; expected NPV gain {fmt_usd(npv_gain)}, P(loses money) {p_loss:.0%}"
        if math.isfinite(npv_gain)
        else f"; P(no gain) {p_loss:.0%}"
    )
    statement = (
        f"{lm.lever} {step.from_amount:,.0f} -> {step.to_amount:,.0f} {step.unit} costs about "
        f"{fmt_usd(step.delta_cost_usd)} (estimate) and is forecast to bring "
        f"{step.gain * scale:+.2f} {unit} of {metric} ({level:.0%} interval "
        f"{step.gain_low * scale:+.2f} to {step.gain_high * scale:+.2f})" + value_part
    )
    return Investment(
        lever=lm.lever,
        from_amount=step.from_amount,
        to_amount=step.to_amount,
        unit=step.unit,
        cost_usd=step.delta_cost_usd,
        gain=step.gain,
        gain_low=step.gain_low,
        gain_high=step.gain_high,
        points=step.points,
        npv_gain_usd=npv_gain,
        p_loss=p_loss,
        extrapolation=step.extrapolation,
        warnings=step.warnings,
        evidence=tuple(evidence),
        method=step.method,
        statement=statement,
    )


def recommend(
    study: Study,
    *,
    target: str | Mapping[str, float] | None = None,
    budget_usd: float | None = None,
    level: float = 0.9,
    n_draws: int = 10_000,
    seed: int = 0,
) -> Recommendation:
    """Recommend what to do with a study's results.

    Args:
        study: A study with completed trials.
        target: ``accuracy=0.97`` or ``{"accuracy": 0.97}``; default: the study file's
            ``target``.
        budget_usd: The most the setting may cost over the horizon (its TCO).
        level: Coverage of forecast intervals.
        n_draws: Monte Carlo draws.
        seed: Monte Carlo seed (the same seed, the same answer).

    Returns:
        The cheapest setting meeting the target (measured, else forecast, else a plain
        statement of what it would take), the best ROI within the budget, the next
        investment worth making, the risk of the headline choice and warning flags.

    Raises:
        ConfigError: a malformed target, an unknown target metric, a budget <= 0, or a
            study without completed trials.
    """
    from payoff.analysis._marginal import marginal_returns
    from payoff.analysis._value import value_analysis

    if budget_usd is not None and not budget_usd > 0:
        raise ConfigError(f"--budget-usd must be > 0, got {budget_usd!r}.")
    if not 0.5 <= level < 1:
        raise ConfigError(f"level must be in [0.5, 1), got {level!r}.")
    frame = study.trials_frame()
    analysis = value_analysis(study, frame=frame)
    marginals = marginal_returns(analysis, frame, study.config, level=level)
    return recommend_from(
        study,
        frame,
        analysis,
        marginals,
        target=target,
        budget_usd=budget_usd,
        level=level,
        n_draws=n_draws,
        seed=seed,
    )


def recommend_from(
    study: Study,
    frame: pd.DataFrame,
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
    from payoff.analysis._value import bounded, maximize

    if budget_usd is not None and not budget_usd > 0:
        raise ConfigError(f"--budget-usd must be > 0, got {budget_usd!r}.")
    config = study.config
    front = pareto_front(analysis, "tco_usd")
    flags = risk_flags(study, analysis, frame=frame, marginals=marginals)
    configured = analysis.model.configured
    statements: list[str] = []

    parsed = parse_target_arg(target, config.target)
    meets: Choice | None = None
    target_metric: str | None = None
    target_value: float | None = None
    met = False
    if parsed is not None:
        name, target_value = parsed
        target_metric = f"test_{name}" if not name.startswith("test_") else name
        known = set().union(*(s.test_metrics for s in analysis.settings))
        if target_metric not in known:
            target_metric = name if name in known else target_metric
        if target_metric not in known:
            raise ConfigError(
                f"target metric {name!r} is not among the trials' metrics: "
                f"{', '.join(sorted(m.removeprefix('test_') for m in known))}."
            )
        if bounded(target_metric) and not 0.0 <= target_value <= 1.0:
            raise ConfigError(
                f"target {name}={target_value:g} is outside the metric's range [0, 1]."
            )
        up = maximize(target_metric)
        sign = "≥" if up else "≤"
        hits = [
            s
            for s in analysis.settings
            if _meets(s.test_metrics[target_metric][0], target_value, up)
        ]
        if hits:
            met = True
            direction = 1.0 if up else -1.0
            cheapest = min(
                hits,
                key=lambda s: (s.tco.total_usd, -direction * s.test_metrics[target_metric][0]),
            )
            meets = _measured_choice(
                analysis,
                cheapest,
                front,
                target_metric,
                f"cheapest setting with {target_metric} {sign} {target_value:g}",
            )
            over = (
                f" That is over the budget of {fmt_usd(budget_usd)}."
                if budget_usd is not None and cheapest.tco.total_usd > budget_usd
                else ""
            )
            statements.append(
                f"Cheapest setting that meets {target_metric} {sign} {target_value:g}: "
                f"{cheapest.key} — measured {_seeds(cheapest, target_metric)}, TCO "
                f"{fmt_usd(cheapest.tco.total_usd)} over {analysis.model.horizon_months:g} "
                f"months.{over}"
            )
        else:
            best = max(
                analysis.settings,
                key=lambda s: (1 if up else -1) * s.test_metrics[target_metric][0],
            )
            measured = (
                f"No measured setting meets {target_metric} {sign} {target_value:g}; the best "
                f"measured is {best.key} with {_seeds(best, target_metric)}."
            )
            meets, notes = _forecast_target(
                frame, analysis, target_metric, target_value, level=level, config=config
            )
            if meets is not None:
                statements.append(f"{measured} {meets.statement[0].upper()}{meets.statement[1:]}.")
            else:
                said = " ".join(f"{n}." if not n.endswith(".") else n for n in notes)
                statements.append(
                    f"{measured} No setting meets the target, measured or forecast. "
                    f"What the forecasts say: {said or 'no lever has a return curve.'}"
                )
    else:
        statements.append(
            "No target set (study file `target:` or --target metric=value): no cheapest "
            "setting to name."
        )

    within = [
        s
        for s in analysis.settings
        if front.contains(s.key) and (budget_usd is None or s.tco.total_usd <= budget_usd)
    ]
    best_roi: Choice | None = None
    ranked_by = "roi" if configured else analysis.metric
    budget_txt = f"within {fmt_usd(budget_usd)}" if budget_usd is not None else "(no budget)"
    if within:
        if configured:
            top = max(
                within,
                key=lambda s: (_finite(s.economics.roi), _finite(s.economics.npv_usd)),
            )
            why = f"best ROI {budget_txt}"
        else:
            sign_m = 1.0 if analysis.maximize else -1.0
            top = max(within, key=lambda s: (sign_m * s.metric_mean, -s.tco.total_usd))
            why = f"best {analysis.metric} {budget_txt} (no value model: ROI unknown)"
        best_roi = _measured_choice(analysis, top, front, analysis.metric, why)
        if configured:
            e = top.economics
            payback = (
                "never pays back"
                if e.payback_months is None
                else f"pays back in {e.payback_months:.2g} months"
            )
            loses = (
                " Every setting on the front within the budget loses money under the value model."
                if e.roi < 0
                else ""
            )
            statements.append(
                f"Best ROI {budget_txt}: {top.key} — ROI {fmt_roi(e.roi)}, NPV "
                f"{fmt_usd(e.npv_usd)}, {payback} (measured {analysis.metric} "
                f"{_fmt_metric(top.metric_mean)}).{loses}"
            )
        else:
            statements.append(
                f"Best {analysis.metric} {budget_txt}: {top.key} "
                f"({_fmt_metric(top.metric_mean)}, TCO {fmt_usd(top.tco.total_usd)}). Add a "
                "`value:` section (predictions_per_month, usd_per_correct, usd_per_error) to "
                "rank by ROI."
            )
    else:
        cheapest_any = min(analysis.settings, key=lambda s: s.tco.total_usd)
        statements.append(
            f"No setting fits the budget {fmt_usd(budget_usd)}: the cheapest, "
            f"{cheapest_any.key}, costs {fmt_usd(cheapest_any.tco.total_usd)} over the horizon."
        )

    investments = [
        inv
        for lm in marginals
        if (
            inv := _investment(
                frame, analysis, config, lm, level=level, n_draws=n_draws, seed=seed
            )
        )
        is not None
    ]
    nxt: Investment | None = None
    if configured:
        worth = [i for i in investments if math.isfinite(i.npv_gain_usd) and i.npv_gain_usd > 0]
        if worth:
            nxt = max(worth, key=lambda i: i.npv_gain_usd)
    else:
        worth = [i for i in investments if i.gain > 0]
        if worth:
            nxt = max(
                worth,
                key=lambda i: i.gain / i.cost_usd if i.cost_usd > 0 else math.inf,
            )
    if nxt is not None:
        statements.append(f"Next investment: {nxt.statement}.")
    elif investments:
        statements.append(
            "No further investment is forecast to pay: "
            + "; ".join(i.statement for i in investments)
            + "."
        )
    else:
        statements.append(
            "No next investment to forecast: no varied data, compute or model lever has a "
            "return curve."
        )

    headline = meets if meets is not None and meets.kind == "measured" else best_roi
    risk = None
    if configured and headline is not None and headline.kind == "measured":
        risk = simulate(analysis, analysis.setting(headline.key), n_draws=n_draws, seed=seed)
        statements.append(
            f"Risk of {headline.key}: P(ROI < 0) {risk.p_loss:.0%}; NPV 5th/50th/95th "
            f"percentiles {fmt_usd(risk.npv_p5_usd)} / {fmt_usd(risk.npv_p50_usd)} / "
            f"{fmt_usd(risk.npv_p95_usd)}; most sensitive to "
            + ", ".join(b.label for b in risk.tornado[:2])
            + f" (Monte Carlo, {risk.n_draws:,} draws, seed {risk.seed})."
        )
    if flags:
        kinds: dict[str, int] = {}
        for f in flags:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        statements.append(
            "Warnings: " + ", ".join(f"{n} {k.replace('_', '-')}" for k, n in kinds.items()) + "."
        )
    return Recommendation(
        study=study.name,
        metric=analysis.metric,
        target_metric=target_metric,
        target=target_value,
        target_met=met,
        budget_usd=budget_usd,
        meets_target=meets,
        best_roi=best_roi,
        ranked_by=ranked_by,
        next_investment=nxt,
        risk=risk,
        flags=flags,
        statements=tuple(statements),
        value_configured=configured,
    )


def _finite(x: float) -> float:
    return x if math.isfinite(x) else (-math.inf if math.isnan(x) else x)
