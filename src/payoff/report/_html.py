"""The HTML report: one self-contained file (plotly.js embedded once, no network at all)."""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from payoff._files import write_atomic
from payoff.analysis._words import fmt_roi, fmt_usd

if TYPE_CHECKING:
    from collections.abc import Mapping

    from payoff.report._collect import ReportData
    from payoff.study import Study

_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>payoff report: {{ study }}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;
background:#f6f7f9}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.6rem;margin:.2em 0}h2{font-size:1.2rem;margin:1.6em 0 .4em}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:12px 16px;
margin:14px 0}
.sub{color:#5b6b7c;font-size:.9rem}
.rec li{margin:.35em 0;line-height:1.4}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:8px}
.tile{border:1px solid #dde2e8;border-radius:6px;padding:8px 10px;background:#fbfcfd}
.tile .l{font-size:.8rem;color:#5b6b7c}.tile .v{font-size:1.05rem;font-weight:600}
.tile .n{font-size:.8rem;color:#33414f;margin-top:2px}
.badge{display:inline-block;font-size:.7rem;padding:0 6px;border-radius:8px;margin-left:4px;
vertical-align:middle;font-weight:500}
.measured{background:#dcebf7;color:#1f4e79}.estimate{background:#fdebd3;color:#8a4b08}
.forecast{background:#f9dada;color:#8b1a1a}
.caption{font-size:.85rem;color:#4a5866;margin:.3em 0 0}
.chart{width:100%}
table{border-collapse:collapse;font-size:.8rem;width:100%}
th,td{border-bottom:1px solid #e5e8ec;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#eef1f4;cursor:pointer;position:sticky;top:0}
th.asc::after{content:" \25B2"}th.desc::after{content:" \25BC"}
td.t,th.t{text-align:left}
table.wrap td{white-space:normal}
.scroll{max-height:520px;overflow:auto}
details{margin:.3em 0}ul.ev{margin:.2em 0 .6em 1.2em;font-size:.85rem;color:#33404d}
.flag{color:#8a4b08}
</style>
<script>{{ plotlyjs }}</script>
</head>
<body>
<main>
<h1>payoff report: {{ study }}</h1>
<p class="sub">{{ n_complete }} completed and {{ n_failed }} failed trials in {{ storage }};
generated {{ generated }} by payoff {{ version }}. Numbers marked
<span class="badge measured">measured</span> come from stored trials,
<span class="badge estimate">estimate</span> from the value model, prices or Monte Carlo,
<span class="badge forecast">forecast</span> from return curves.</p>

<section id="summary">
<h2>Recommendation</h2>
<ul class="rec">
{% for s in statements %}<li>{{ s }}</li>
{% endfor %}</ul>
<div class="tiles">
{% for t in tiles %}<div class="tile"><div class="l">{{ t.label }}
<span class="badge {{ t.kind }}">{{ t.kind }}</span></div><div class="v">{{ t.value }}</div>
{% if t.get("note") %}<div class="n">{{ t.note }}</div>{% endif %}</div>
{% endfor %}</div>
{% for c in choices %}<details><summary>Evidence: {{ c.title }}
<span class="badge {{ c.kind }}">{{ c.kind }}</span></summary><ul class="ev">
{% for e in c.evidence %}<li>{{ e }}</li>{% endfor %}</ul></details>
{% endfor %}
</section>

{% if pilot %}<section id="pilot">
<h2>Pilot <span class="badge measured">measured</span>
<span class="badge forecast">forecast</span></h2>
<p>Stopped: {{ pilot.stop_reason }} ({{ pilot.n_rungs }} rungs, up to
{{ "{:,}".format(pilot.largest_n_train) }} training examples).</p>
<table class="wrap"><thead><tr><th class="t">question</th><th class="t">answer</th>
<th class="t">sure?</th></tr></thead><tbody>
{% for a in pilot.answers %}<tr><td class="t">{{ a.question }}</td><td class="t">{{ a.words }}</td>
<td class="t">{{ "yes" if a.sure else "not yet" }}</td></tr>
{% endfor %}</tbody></table>
<p class="caption">{{ pilot.spend_words() }}</p>
</section>
{% endif %}

{% for f in figures %}<section>
<h2>{{ f.title }}</h2>
<div id="fig-{{ f.id }}" class="chart" style="height:{{ f.height }}px"></div>
<p class="caption">{{ f.caption }}</p>
</section>
{% endfor %}

<section>
<h2>Marginal returns <span class="badge measured">measured</span>
<span class="badge forecast">forecast</span></h2>
<p class="caption">Metric gained per extra dollar of training (labels + compute + energy)
between neighbouring settings of each lever, the others held; the last row of a lever is the
forecast of one more step ({{ step }}x the largest measured amount), priced from fitted cost
curves.</p>
<div class="scroll"><table class="sortable">
<thead><tr><th class="t">lever</th><th class="t">kind</th><th class="t">step</th>
<th>extra USD</th><th>gain</th><th>low</th><th>high</th><th>gain per $1,000</th>
<th class="t">held</th></tr></thead><tbody>
{% for r in marginal_rows %}<tr>{% for c in r %}<td{% if c.cls %} class="t"{% endif %}
{% if c.v %} data-v="{{ c.v }}"{% endif %}>{{ c.text }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% for n in marginal_notes %}<p class="caption">{{ n }}</p>{% endfor %}
</section>

<section>
<h2>Warnings</h2>
{% if flags %}<ul>{% for f in flags %}<li class="flag"><b>{{ f.kind }}</b>
({{ f.subject }}): {{ f.message }}</li>{% endfor %}</ul>
{% else %}<p>No overfitting, unstable settings or far extrapolations found.</p>{% endif %}
</section>

<section>
<h2>Settings <span class="badge measured">measured</span>
<span class="badge estimate">estimate</span></h2>
<p class="caption">One row per setting (its seeds averaged). Metric and training costs are
measured; serving, value, ROI, NPV, payback and break-even are estimates from the value
model. Click a column to sort.</p>
<div class="scroll">{{ settings_table }}</div>
</section>

<section>
<h2>Trials <span class="badge measured">measured</span></h2>
<p class="caption">Every stored trial and its ledger. Click a column to sort.</p>
<div class="scroll">{{ trials_table }}</div>
</section>

<section id="appendix">
<h2>Appendix: assumptions and the price book</h2>
<h3>Value model and assumptions</h3>
<table class="wrap"><thead><tr><th class="t">input</th><th>value</th><th class="t">unit</th>
<th class="t">source</th></tr></thead><tbody>
{% for a in assumptions %}<tr><td class="t">{{ a.name }}</td><td>{{ a.value }}</td>
<td class="t">{{ a.unit }}</td><td class="t">{{ a.source }}</td></tr>
{% endfor %}</tbody></table>
<h3>Price book {{ book_version }}</h3>
<table class="wrap"><thead><tr><th class="t">item</th><th>value</th><th class="t">unit</th>
<th class="t">source</th><th class="t">as of</th></tr></thead><tbody>
{% for r in book_rows %}<tr><td class="t">{{ r.item }}</td><td>{{ r.value }}</td>
<td class="t">{{ r.unit }}</td><td class="t">{{ r.source }}</td><td class="t">{{ r.as_of }}</td>
</tr>{% endfor %}</tbody></table>
<h3>Methods</h3>
<ul class="ev">{% for m in methods %}<li>{{ m }}</li>{% endfor %}</ul>
</section>
</main>
<script type="application/json" id="payoff-figures">{{ figures_json }}</script>
<script>
(function(){
  var errors=[];
  window.addEventListener("error",function(e){errors.push(String(e.message));
    document.body.setAttribute("data-errors",errors.join(" | "));});
  var figs=JSON.parse(document.getElementById("payoff-figures").textContent);
  var ids=Object.keys(figs), done=0;
  ids.forEach(function(id){
    var f=figs[id];
    Plotly.newPlot("fig-"+id,f.data,f.layout,{responsive:true,displaylogo:false})
      .then(function(){done++;document.body.setAttribute("data-rendered",String(done));
        if(done===ids.length){document.title=document.title+" (ready)";}})
      .catch(function(e){errors.push(String(e));
        document.body.setAttribute("data-errors",errors.join(" | "));});
  });
  function key(td){var v=td.getAttribute("data-v");if(v===null){v=td.textContent.trim();}
    var n=Number(v);return (v!==""&&v!=="-"&&!isNaN(n))?n:v;}
  document.querySelectorAll("table.sortable").forEach(function(table){
    table.querySelectorAll("th").forEach(function(th,col){
      th.addEventListener("click",function(){
        var asc=!th.classList.contains("asc");
        table.querySelectorAll("th").forEach(function(h){h.classList.remove("asc","desc");});
        th.classList.add(asc?"asc":"desc");
        var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);
          if(typeof x==="number"&&typeof y==="number"){return asc?x-y:y-x;}
          if(typeof x==="number"){return -1;} if(typeof y==="number"){return 1;}
          return asc?String(x).localeCompare(String(y)):String(y).localeCompare(String(x));});
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
})();
</script>
</body>
</html>
"""


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.4g}" if 1e-3 <= abs(x) < 1e5 or x == 0 else f"{x:.3e}"
    return str(x)


def _cell(x: Any, text: str | None = None, *, left: bool = False) -> dict[str, str]:
    """Return a table cell; ``v`` (the sort key) only where the text alone would sort wrong."""
    shown = _fmt(x) if text is None else text
    v = ""
    if isinstance(x, int | float) and not isinstance(x, bool) and text is not None:
        v = repr(float(x)) if math.isfinite(float(x)) else ("1e308" if x > 0 else "-1e308")
    return {"text": shown, "v": v, "cls": "t" if left else ""}


def _table(headers: list[str], rows: list[list[dict[str, str]]], env: jinja2.Environment) -> str:
    tpl = env.from_string(
        '<table class="sortable"><thead><tr>{% for h in headers %}'
        '<th class="{{ h.cls }}">{{ h.text }}</th>{% endfor %}</tr></thead><tbody>'
        "{% for r in rows %}<tr>{% for c in r %}"
        '<td{% if c.cls %} class="t"{% endif %}{% if c.v %} data-v="{{ c.v }}"{% endif %}>'
        "{{ c.text }}</td>{% endfor %}</tr>\n{% endfor %}</tbody></table>"
    )
    left = {"setting", "state", "trials", "on front", "hardware", "energy_method"}
    heads = [{"text": h, "cls": "t" if h in left else ""} for h in headers]
    return tpl.render(headers=heads, rows=rows)


def _settings_table(data: ReportData, env: jinja2.Environment) -> str:
    front = next(f for f in data.fronts if f.x == "tco_usd")
    a = data.analysis
    # Money comes from the decisions the value model prices (a threshold, a cost matrix):
    # their own accuracy (or error) stands beside the value it earns.
    vm = a.model.value_metric.removeprefix("test_")
    priced = [f"{vm} of the priced decisions", "threshold"] if a.model.configured else []
    headers = [
        "setting",
        "seeds",
        f"{a.metric} mean",
        "sd",
        *priced,
        "training USD",
        "TCO USD",
        "value USD",
        "ROI",
        "NPV USD",
        "payback months",
        "break-even predictions/month",
        "kWh",
        "CO2 kg",
        "hours replaced",
        "on front",
        "trials",
    ]
    rows = []
    for s in sorted(a.settings, key=lambda s: s.tco.total_usd):
        e, f = s.economics, s.footprint
        rows.append(
            [
                _cell(s.key, left=True),
                _cell(s.n_seeds),
                _cell(s.metric_mean),
                _cell(s.metric_std),
                *([_cell(s.value_metric_mean), _cell(s.threshold)] if a.model.configured else []),
                _cell(s.tco.training_usd, fmt_usd(s.tco.training_usd)),
                _cell(s.tco.total_usd, fmt_usd(s.tco.total_usd)),
                _cell(e.value_usd, fmt_usd(e.value_usd)),
                _cell(e.roi, fmt_roi(e.roi)),
                _cell(e.npv_usd, fmt_usd(e.npv_usd)),
                _cell(
                    e.payback_months if e.payback_months is not None else math.inf,
                    "never" if e.payback_months is None else f"{e.payback_months:.3g}",
                ),
                _cell(
                    e.break_even_predictions_per_month
                    if e.break_even_predictions_per_month is not None
                    else math.inf,
                    "never"
                    if e.break_even_predictions_per_month is None
                    else f"{e.break_even_predictions_per_month:,.0f}",
                ),
                _cell(f.energy_kwh),
                _cell(f.co2_kg),
                _cell(f.hours_replaced),
                _cell("yes" if front.contains(s.key) else "", left=True),
                _cell(", ".join(map(str, s.trials)), left=True),
            ]
        )
    return _table(headers, rows, env)


_TRIAL_COLS = (
    "n_train",
    "epochs_run",
    "n_params",
    "latency_p50_s",
    "throughput_per_s",
    "wall_s",
    "flops",
    "energy_kwh",
    "co2_kg",
    "cost_usd_compute",
    "cost_usd_energy",
    "cost_usd_labels",
    "cost_usd_total",
)


def _trials_table(data: ReportData, env: jinja2.Environment) -> str:
    frame = data.frame
    metric = data.analysis.metric.removeprefix("test_")
    lead = ["number", "state", *data.analysis.levers, "seed"]
    cols = [c for c in lead if c in frame.columns]
    cols += [c for c in (f"val_{metric}", f"test_{metric}") if c in frame.columns]
    cols += [c for c in _TRIAL_COLS if c in frame.columns]
    extra = ["fail_reason"] if "fail_reason" in frame.columns else []
    rows = []
    for rec in frame.to_dict(orient="records"):
        row = []
        for c in cols + extra:
            v = rec.get(c)
            if isinstance(v, list):
                v = "x".join(map(str, v))
            if c == "fail_reason" and not isinstance(v, str):
                v = ""
            if c.startswith("cost_usd_") and isinstance(v, int | float):
                row.append(_cell(v, fmt_usd(v)))  # money in dollars, never 5.014e-06
                continue
            row.append(_cell(v, left=c in ("state", "fail_reason") or isinstance(v, str)))
        rows.append(row)
    return _table(cols + extra, rows, env)


def _marginal_rows(data: ReportData) -> tuple[list[list[dict[str, str]]], list[str]]:
    rows, notes = [], []
    for lm in data.marginals:
        held = ", ".join(f"{k}={v}" for k, v in lm.held.items())
        for st in (*lm.steps, *((lm.next,) if lm.next is not None else ())):
            frm = f"{st.from_amount:,.0f}" if math.isfinite(st.from_amount) else st.from_value
            to = f"{st.to_amount:,.0f}" if math.isfinite(st.to_amount) else st.to_value
            rows.append(
                [
                    _cell(lm.lever, left=True),
                    _cell(st.kind, left=True),
                    _cell(f"{frm} -> {to} {st.unit}", left=True),
                    _cell(st.delta_cost_usd, fmt_usd(st.delta_cost_usd)),
                    _cell(st.gain),
                    _cell(st.gain_low),
                    _cell(st.gain_high),
                    _cell(st.gain_per_1000_usd),
                    _cell(held, left=True),
                ]
            )
            if st.kind == "forecast":
                notes.append(f"{lm.lever}: {st.statement(data.analysis.metric)}. {st.method}.")
        if lm.next is None and lm.note:
            notes.append(f"{lm.lever}: no forecast step ({lm.note}).")
    return rows, notes


def _methods(data: ReportData) -> list[str]:
    frame = data.frame
    out = []
    for col, what in (
        ("energy_method", "energy and CO2 of training"),
        ("flops_method", "FLOPs"),
        ("peak_mem_method", "peak memory"),
        ("hardware", "hardware priced"),
        ("device", "device"),
    ):
        if col in frame.columns:
            vals = sorted({str(v) for v in frame[col].dropna()})
            if vals:
                out.append(f"{what}: {', '.join(vals)}")
    a = data.analysis
    out.append(f"serving: {a.model.serving_method}")
    if a.settings:
        out.append(f"serving energy: {a.settings[0].footprint.serving_method}")
        out.append(f"hours replaced: {a.settings[0].footprint.hours_method}")
    out.append(
        "value of a prediction: "
        + (
            "usd_per_prediction + accuracy x usd_per_correct - (1 - accuracy) x cost of an error"
            if a.model.kind == "classification"
            else "usd_per_prediction - usd_per_error_unit x mean absolute error"
        )
        + (
            f", over the {a.model.baseline.name} ({a.model.baseline.method})"
            if a.model.baseline is not None
            else ", over no model"
        )
        + "; accuracy and the cost of an error are counted from the decisions each trial's "
        "model makes on the test split (a binary classifier at the threshold that maximises "
        "value on the validation split)"
    )
    out.append(
        "ROI = (value - TCO) / TCO over the horizon (undiscounted); NPV discounts monthly "
        f"cash flows at {a.model.discount_rate:.1%}/year; payback: month the undiscounted "
        "cumulative cash flow turns positive; break-even: predictions a month at NPV 0"
    )
    for v in data.levers:
        if v.band is not None:
            out.append(f"forecast of {v.curve.lever}: {v.band.method}")
    if data.risk is not None:
        out.append(f"risk: {data.risk.method}")
    out.append(
        f"study spend {a.study_spend_usd:.4g} USD (compute + energy of every trial) is sunk "
        "and not part of any setting's TCO"
    )
    return out


def _choices(data: ReportData) -> list[dict[str, Any]]:
    rec = data.recommendation
    out = []
    for title, choice in (
        ("recommended", rec.recommended),
        ("target", rec.meets_target),
        ("best ROI (highest NPV)" if rec.value_configured else "best metric", rec.best_roi),
    ):
        if choice is not None:
            out.append(
                {
                    "title": f"{title} — {choice.words}",
                    "kind": choice.kind,
                    "evidence": choice.evidence,
                }
            )
    for step in rec.candidates:
        out.append(
            {
                "title": f"step from the recommended setting — {step.lever}"
                + (" (worth making)" if step is rec.next_investment else ""),
                "kind": step.basis,
                "evidence": (step.statement, *step.evidence),
            }
        )
    return out


def render(data: ReportData) -> str:
    """Return the report as one HTML document."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    import payoff
    from payoff.report._collect import headline_numbers
    from payoff.report._figures import all_figures

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    figures = all_figures(data)
    parts = [
        json.dumps(f"{f.id}") + ":" + pio.to_json(f.figure, validate=False, pretty=False)
        for f in figures
    ]
    # "</" inside a <script> would end it early; JSON allows the escaped form.
    figures_json = ("{" + ",".join(parts) + "}").replace("</", "<\\/")
    rows, notes = _marginal_rows(data)
    book = data.book
    return env.from_string(_TEMPLATE).render(
        study=data.record.name,
        storage=data.storage,
        version=payoff.__version__,
        generated=_dt.datetime.now().isoformat(timespec="seconds"),
        n_complete=data.n_complete,
        n_failed=data.n_failed,
        plotlyjs=Markup(get_plotlyjs()),
        statements=data.recommendation.statements,
        tiles=headline_numbers(data),
        choices=_choices(data),
        pilot=data.recommendation.pilot,
        figures=figures,
        figures_json=Markup(figures_json),
        step=2,
        marginal_rows=rows,
        marginal_notes=notes,
        flags=data.flags,
        settings_table=Markup(_settings_table(data, env)),
        trials_table=Markup(_trials_table(data, env)),
        assumptions=[
            {"name": x.name, "value": _fmt(x.value), "unit": x.unit, "source": x.source}
            for x in data.analysis.model.assumptions
        ],
        book_version=book.version,
        book_rows=book.rows(),
        methods=_methods(data),
    )


def write_report(
    study: Study,
    path: str | Path,
    *,
    target: str | Mapping[str, float] | None = None,
    budget_usd: float | None = None,
    seed: int = 0,
) -> Path:
    """Write the study's report: one self-contained HTML file that works offline.

    Args:
        study: A study with completed trials.
        path: Where to write (``.html``); parent folders are created.
        target: ``accuracy=0.97``; default: the study file's ``target``.
        budget_usd: The budget the best-ROI choice must fit (TCO).
        seed: The Monte Carlo's seed.

    Returns:
        The path written.

    Raises:
        ConfigError: the study has no completed trial; the path cannot be written.
    """
    from payoff.report._collect import collect

    data = collect(
        study.record(), storage=study.storage, target=target, budget_usd=budget_usd, seed=seed
    )
    return write_html(render(data), path)


def write_html(html: str, path: str | Path) -> Path:
    """Write ``html`` to ``path``, creating its folder; a write cut short leaves the previous
    report whole.

    Raises:
        ConfigError: the path cannot be written.
    """
    return write_atomic(path, html, what="the report")
