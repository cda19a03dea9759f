"""The report's interactive charts (plotly), each with a caption saying where its numbers
come from: stored trials, a forecast, or an estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from payoff.report._collect import ReportData

_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12}
_COLORS = {
    "compute": "#4c78a8",
    "energy": "#f58518",
    "labels": "#54a24b",
    "people": "#b279a2",
    "serving": "#e45756",
}
_MEASURED = "#1f4e79"
_FORECAST = "#d62728"
_DIM = "#9aa5b1"
_MAX_CURVES = 200


@dataclass(frozen=True, slots=True)
class Figure:
    """One chart: its id in the page, title, caption (provenance) and plotly figure."""

    id: str
    title: str
    caption: str
    figure: go.Figure
    height: int


def _r(x: Any, digits: int = 6) -> Any:
    """Round for a small page; NaN and infinities become None (gaps)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    return float(f"{f:.{digits}g}")


def _rl(xs: Any, digits: int = 6) -> list[Any]:
    return [_r(x, digits) for x in xs]


def _layout(fig: go.Figure, height: int, **kw: Any) -> None:
    # template "none": plotly would otherwise embed its whole default template (~10 kB) in
    # every figure, and the page must stay small.
    fig.update_layout(
        height=height,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        font=_FONT,
        template="none",
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
        hovermode="closest",
        legend={"orientation": "h", "y": -0.18},
        **kw,
    )
    fig.update_xaxes(gridcolor="#e5e8ec", linecolor="#9aa5b1", zeroline=False)
    fig.update_yaxes(gridcolor="#e5e8ec", linecolor="#9aa5b1", zeroline=False)


def training_curves(data: ReportData) -> Figure | None:
    """Validation metric and training loss per epoch, one line per stored trial."""
    metric = data.analysis.metric.removeprefix("test_")
    val_col = f"val_{metric}"
    done = data.frame[data.frame["state"] == "COMPLETE"] if "state" in data.frame else data.frame
    keys = {n: s.key for s in data.analysis.settings for n in s.trials}
    fig = make_subplots(rows=1, cols=2, subplot_titles=(val_col, "train_loss"))
    n = 0
    numbers = list(done["number"])
    # Past a few hundred lines a chart says no more, and the page must stay small.
    shown = numbers[:_MAX_CURVES]
    for number in shown:
        curve = data.curves.get(int(number), [])
        if not curve:
            continue
        epochs = [p.get("epoch") for p in curve]
        regular = epochs == list(range(1, len(epochs) + 1))
        label = f"trial {int(number)}: {keys.get(int(number), '')}"
        for col, which in ((val_col, 1), ("train_loss", 2)):
            ys = [p.get(col) for p in curve]
            if not any(y is not None for y in ys):
                continue
            # Epochs 1, 2, ... go as x0/dx, not as a list: the page must stay small.
            where = {"x0": 1, "dx": 1} if regular else {"x": epochs}
            fig.add_trace(go.Scatter(y=_rl(ys, 4), name=label, **where), row=1, col=which)
            n += 1
    if n == 0:
        return None
    fig.update_xaxes(title_text="epoch")
    _layout(fig, 380)
    # One style for every line, set once in the figure's template rather than per trace.
    fig.update_layout(
        template={
            "data": {
                "scatter": [
                    {
                        "mode": "lines",
                        "line": {"width": 1},
                        "opacity": 0.6,
                        "showlegend": False,
                        "hovertemplate": "%{fullData.name}<br>epoch %{x}: %{y}<extra></extra>",
                    }
                ]
            }
        }
    )
    return Figure(
        "training",
        "Training curves",
        f"Measured: the per-epoch curve stored with each of {len(done)} completed trials "
        "(hover for the trial number and setting)"
        + (
            f"; the first {len(shown)} are drawn (the trials table lists all)."
            if len(shown) < len(numbers)
            else "."
        ),
        fig,
        380,
    )


def return_curves(data: ReportData) -> Figure | None:
    """Metric against each quantitative lever: measured means with seed error bars, and the
    fitted curve with its forecast band beyond the largest measured amount."""
    views = data.levers
    if not views:
        return None
    fig = make_subplots(
        rows=1,
        cols=len(views),
        subplot_titles=[f"{v.curve.metric} vs {v.curve.lever} ({v.curve.unit})" for v in views],
    )
    methods = []
    for i, v in enumerate(views, start=1):
        c = v.curve
        held = ", ".join(f"{k}={x}" for k, x in c.held.items()) or "nothing else varied"
        if v.band is not None:
            b = v.band
            xs = list(b.xs)
            fig.add_trace(
                go.Scatter(
                    x=_rl(xs + xs[::-1]),
                    y=_rl(list(b.high) + list(b.low)[::-1], 4),
                    fill="toself",
                    fillcolor="rgba(214,39,40,0.12)",
                    line={"width": 0},
                    hoverinfo="skip",
                    name=f"forecast {b.level:.0%} interval",
                    legendgroup="band",
                    showlegend=i == 1,
                ),
                row=1,
                col=i,
            )
            fig.add_trace(
                go.Scatter(
                    x=_rl(xs),
                    y=_rl(b.point, 4),
                    mode="lines",
                    line={"color": _FORECAST, "dash": "dash"},
                    name="fit and forecast (estimate)",
                    legendgroup="fit",
                    showlegend=i == 1,
                    hovertemplate="forecast at %{x:,.0f}: %{y:.4f}<extra></extra>",
                ),
                row=1,
                col=i,
            )
            fig.add_vline(x=b.x_max, line={"color": _DIM, "dash": "dot"}, row=1, col=i)
            methods.append(
                f"{c.lever}: {b.method}" + (f" ({'; '.join(b.warnings)})" if b.warnings else "")
            )
        fig.add_trace(
            go.Scatter(
                x=_rl(c.xs),
                y=_rl(c.ys, 4),
                mode="markers",
                marker={"color": _DIM, "size": 5},
                name="trials (measured)",
                legendgroup="trials",
                showlegend=i == 1,
                hovertemplate=f"trial at %{{x:,.0f}}: %{{y:.4f}}<br>held: {held}<extra></extra>",
            ),
            row=1,
            col=i,
        )
        fig.add_trace(
            go.Scatter(
                x=_rl([p.x for p in c.points]),
                y=_rl([p.mean for p in c.points], 4),
                error_y={"type": "data", "array": _rl([p.std for p in c.points], 3)},
                mode="markers+lines",
                marker={"color": _MEASURED, "size": 8},
                line={"color": _MEASURED},
                name="mean over seeds (measured, +-sd)",
                legendgroup="mean",
                showlegend=i == 1,
                hovertemplate="%{x:,.0f}: %{y:.4f} (mean)<extra></extra>",
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(type="log", title_text=c.unit, row=1, col=i)
    _layout(fig, 400)
    caption = (
        "Measured points are stored trials (other levers held as named in the hover). The "
        "dashed line and shaded band are the return-curve fit and its forecast, an estimate; "
        "the dotted line marks the largest measured amount. Methods: " + "; ".join(methods)
    )
    return Figure("returns", "Return curves and forecasts", caption, fig, 400)


def pareto(data: ReportData) -> Figure:
    """Cost against return for every setting, the non-dominated front highlighted."""
    # A cost no trial measured (latency of a trial function that does not report it) is
    # left out and named, never drawn as an empty panel.
    fronts = [f for f in data.fronts if f.points]
    unmeasured = [f.x_label for f in data.fronts if not f.points]
    titles = [f.x_label for f in fronts]
    n_rows = max(1, math.ceil(len(fronts) / 2))
    fig = make_subplots(rows=n_rows, cols=2, subplot_titles=titles, vertical_spacing=0.16)
    rec = data.recommendation
    chosen = {c.key for c in (rec.recommended, rec.meets_target, rec.best_roi) if c is not None}
    for i, f in enumerate(fronts):
        row, col = divmod(i, 2)
        pts = f.points
        fig.add_trace(
            go.Scatter(
                x=_rl([p.x for p in pts]),
                y=_rl([p.y for p in pts], 4),
                # Error bars take the marker's colour by default, and an array of colours
                # is no colour to them: give them their own.
                error_y={
                    "type": "data",
                    "array": _rl([p.y_std for p in pts], 3),
                    "color": _DIM,
                    "thickness": 1,
                },
                error_x={
                    "type": "data",
                    "array": [_r(p.x_std, 3) or 0 for p in pts],
                    "visible": any(_r(p.x_std) for p in pts),
                    "color": _DIM,
                    "thickness": 1,
                },
                mode="markers",
                marker={
                    "color": [_MEASURED if p.on_front else _DIM for p in pts],
                    "size": [12 if p.key in chosen else 7 for p in pts],
                    "symbol": ["star" if p.key in chosen else "circle" for p in pts],
                },
                text=[
                    f"{p.key}<br>trials {', '.join(map(str, p.trials))}"
                    + ("<br>on the front" if p.on_front else "")
                    + ("<br>recommended" if p.key in chosen else "")
                    for p in pts
                ],
                hovertemplate="%{text}<br>x %{x:.4g}, y %{y:.4f}<extra></extra>",
                name="settings (mean +-sd over seeds)",
                showlegend=i == 0,
            ),
            row=row + 1,
            col=col + 1,
        )
        front = f.front
        fig.add_trace(
            go.Scatter(
                x=_rl([p.x for p in front]),
                y=_rl([p.y for p in front], 4),
                mode="lines",
                line={"color": _MEASURED, "shape": "hv" if f.maximize else "linear"},
                hoverinfo="skip",
                name="Pareto front",
                showlegend=i == 0,
            ),
            row=row + 1,
            col=col + 1,
        )
        positive = [p.x for p in pts if p.x > 0]
        if positive and max(positive) / min(positive) > 20 and len(positive) == len(pts):
            fig.update_xaxes(type="log", row=row + 1, col=col + 1)
        fig.update_yaxes(title_text=f.y, row=row + 1, col=col + 1)
    _layout(fig, 320 * n_rows)
    caption = (
        "Each point is a setting: mean and standard deviation over its seeds' stored trials; "
        "dark points are on the Pareto front (no setting is cheaper and better); stars are "
        "the recommended settings. Sources: "
        + "; ".join(f"{f.x_label}: {f.method}" for f in fronts)
        + f". Serving: {data.analysis.model.serving_method}."
        + (f" Left out, as no trial measured it: {', '.join(unmeasured)}." if unmeasured else "")
    )
    return Figure("pareto", "Pareto fronts: cost against return", caption, fig, 320 * n_rows)


def cost_breakdown(data: ReportData) -> Figure:
    """Stacked TCO by kind for every setting (horizontal bars), cheapest on top."""
    settings = sorted(data.analysis.settings, key=lambda s: s.tco.total_usd, reverse=True)
    keys = [s.key for s in settings]
    fig = go.Figure()
    for part, attr in (
        ("compute", "compute_usd"),
        ("energy", "energy_usd"),
        ("labels", "labels_usd"),
        ("people", "people_usd"),
        ("serving", "serving_usd"),
    ):
        xs = [getattr(s.tco, attr) for s in settings]
        fig.add_trace(
            go.Bar(
                y=keys,
                x=_rl(xs, 4),
                orientation="h",
                name=part + (" (estimate)" if part == "serving" else ""),
                marker_color=_COLORS[part],
                hovertemplate=f"%{{y}}<br>{part}: %{{x:.4g}} USD<extra></extra>",
            )
        )
    height = min(140 + 18 * len(keys), 1400)
    _layout(fig, height, barmode="stack", xaxis_title="USD over the horizon")
    fig.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    fig.update_yaxes(automargin=True, tickfont={"size": 10})
    m = data.analysis.model
    caption = (
        f"TCO over {m.horizon_months:g} months. Compute, energy and labels: measured per "
        "trial and averaged over seeds (one training run). People: value.engineer_hours x "
        f"${m.engineer_usd_per_hour:g}/hour. Serving: {m.serving_method} — an estimate until "
        "a load test measures it."
    )
    return Figure("costs", "Cost breakdown (TCO)", caption, fig, height)


def npv_distribution(data: ReportData) -> Figure | None:
    """Histogram of the Monte Carlo NPV of the headline setting (binned: a small page)."""
    r = data.risk
    if r is None:
        return None
    counts, edges = np.histogram(r.npv_usd, bins=60)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(
        go.Bar(
            x=_rl(centres),
            y=[int(c) for c in counts],
            width=_r(edges[1] - edges[0]),
            marker_color=_MEASURED,
            name="draws",
            hovertemplate="NPV %{x:,.0f} USD: %{y} draws<extra></extra>",
        )
    )
    for x, label, color in (
        (r.npv_p5_usd, "5%", _DIM),
        (r.npv_p50_usd, "median", _FORECAST),
        (r.npv_p95_usd, "95%", _DIM),
        (0.0, "break-even", "#000000"),
    ):
        fig.add_vline(
            x=x,
            line={"color": color, "dash": "dash"},
            annotation_text=label,
            annotation_position="top",
        )
    _layout(fig, 360, xaxis_title="NPV (USD)", yaxis_title="draws", showlegend=False)
    caption = (
        f"Estimate: NPV of {r.key} over {r.n_draws:,} draws; P(ROI < 0) = {r.p_loss:.1%}. "
        f"{r.method}."
    )
    return Figure("npv", "NPV distribution (Monte Carlo)", caption, fig, 360)


def tornado(data: ReportData) -> Figure | None:
    """NPV at the low and high end of each input, one at a time, widest swing on top."""
    r = data.risk
    if r is None or not r.tornado:
        return None
    bars = list(reversed(r.tornado))
    base = r.base_npv_usd
    labels = [b.label for b in bars]
    fig = go.Figure()
    for side, attr, color in (
        ("low", "npv_low_usd", "#4c78a8"),
        ("high", "npv_high_usd", "#f58518"),
    ):
        vals = [getattr(b, attr) - base for b in bars]
        ends = [b.low if side == "low" else b.high for b in bars]
        fig.add_trace(
            go.Bar(
                y=labels,
                x=_rl(vals),
                base=_r(base),
                orientation="h",
                marker_color=color,
                name=f"input at its {side} end",
                text=[f"{e:.4g}" for e in ends],
                hovertemplate="%{y} at %{text}: NPV %{base:,.0f} + %{x:,.0f} USD<extra></extra>",
                textposition="none",
            )
        )
    fig.add_vline(x=base, line={"color": "#000000"})
    _layout(fig, 120 + 34 * len(bars), barmode="overlay", xaxis_title="NPV (USD)")
    fig.update_yaxes(automargin=True)
    caption = (
        f"Estimate: sensitivity of the NPV of {r.key} (base {base:,.0f} USD) to each uncertain "
        "input moved alone to the ends of its range (prices and value inputs: multipliers of "
        "the base; the metric: its seed or forecast interval)."
    )
    return Figure("tornado", "Sensitivity (tornado)", caption, fig, 120 + 34 * len(bars))


def all_figures(data: ReportData) -> list[Figure]:
    """Return every chart the data supports, in page order."""
    made = [
        training_curves(data),
        return_curves(data),
        pareto(data),
        cost_breakdown(data),
        npv_distribution(data),
        tornado(data),
    ]
    return [f for f in made if f is not None]
