"""The HTML report and the terminal summary, on a real study."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markupsafe import escape
from rich.console import Console
from typer.testing import CliRunner

import payoff
from payoff.cli import app
from payoff.report import terminal_summary, write_report
from tests.analysis.test_value import build_value_study

runner = CliRunner()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> payoff.Study:
    return build_value_study(tmp_path_factory)


@pytest.fixture(scope="module")
def html(study: payoff.Study, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = write_report(study, tmp_path_factory.mktemp("report") / "sub" / "report.html")
    assert path.name == "report.html" and path.exists()
    return path.read_text(encoding="utf-8")


def figures_of(html: str) -> dict[str, dict]:
    found = re.search(
        r'<script type="application/json" id="payoff-figures">(.*?)</script>', html, re.S
    )
    assert found
    return json.loads(found.group(1))


def test_self_contained_and_small(html: str) -> None:
    # The page outside its inline scripts (plotly.js holds URLs as strings it never loads
    # for these charts; the browser test checks that no request is made).
    page = re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S)
    # No external resource of any kind: every <script> is inline, no <link>, no <img>.
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link\b|<img\b|<iframe\b", page, re.I)
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.I)
    assert not re.search(r"@import|url\(", page, re.I)
    own = html[html.rindex("<script>") :]
    assert "http" not in own
    # plotly.js is embedded once.
    assert html.count("plotly.js v") >= 1
    assert html.count("<script>") == 2  # plotly.js, then the page's own
    assert len(html.encode("utf-8")) < 5_000_000


def test_every_chart_is_there_and_says_where_its_numbers_come_from(html: str) -> None:
    figs = figures_of(html)
    assert set(figs) == {"training", "returns", "pareto", "costs", "npv", "tornado"}
    for fig_id, fig in figs.items():
        assert f'id="fig-{fig_id}"' in html
        assert fig["data"], fig_id
    captions = re.findall(r'<p class="caption">(.*?)</p>', html, re.S)
    assert len(captions) >= len(figs)
    for caption in captions[: len(figs)]:
        assert re.search(r"Measured|measured|Estimate|estimate|forecast", caption), caption
    # Forecasts are labelled as such inside the charts too.
    names = {t.get("name", "") for t in figs["returns"]["data"]}
    assert "fit and forecast (estimate)" in names and "trials (measured)" in names
    # Training curves: one line per trial and panel (val metric, train loss).
    assert len(figs["training"]["data"]) == 2 * 12
    # The cost breakdown stacks the five kinds of cost.
    parts = [t["name"] for t in figs["costs"]["data"]]
    assert parts == ["compute", "energy", "labels", "people", "serving (estimate)"]


def test_first_screen_tables_and_appendix(html: str, study: payoff.Study) -> None:
    rec = study.recommend()
    start = html.index('id="summary"')
    first = html[start : html.index("</section>", start)]
    assert "Recommendation" in first
    for sentence in rec.statements:
        assert str(escape(sentence)) in first
    assert 'class="badge estimate"' in first and 'class="badge measured"' in first
    assert html.count('class="sortable"') == 3  # marginal returns, settings, trials
    assert "Appendix: assumptions and the price book" in html
    assert "engineer_usd_per_hour" in html and "electricity_usd_per_kwh" in html
    # Every trial is in the table.
    for number in range(12):
        assert f"<tr><td>{number}</td>" in html


def test_terminal_summary_is_the_first_screen(study: payoff.Study) -> None:
    console = Console(record=True, width=200)
    console.print(terminal_summary(study))
    text = console.export_text()
    rec = study.recommend()
    assert rec.statements[0][:40] in text
    assert "key number" in text and "measured" in text and "estimate" in text


def test_study_report_and_cli(study: payoff.Study, tmp_path: Path) -> None:
    path = study.report(tmp_path / "r.html")
    assert path.stat().st_size > 1_000_000
    out = runner.invoke(
        app, ["report", "value", "--storage", study.storage, "-o", str(tmp_path / "c.html")]
    )
    assert out.exit_code == 0, out.output
    assert (tmp_path / "c.html").exists() and "report:" in out.stdout
    bad = runner.invoke(
        app,
        [
            "report",
            "value",
            "--storage",
            study.storage,
            "-o",
            str(tmp_path / "c.html"),
            "--budget-usd",
            "-3",
        ],
    )
    assert bad.exit_code == 2 and "budget" in bad.output


def score_only(trial: payoff.Trial) -> dict[str, float]:
    """A trial function that reports its metric and nothing about inference."""
    return {"score": 0.5 + 0.1 * trial.lever("x")}


def test_a_cost_no_trial_measured_is_left_out_and_named(tmp_path: Path) -> None:
    from payoff.config import config_from_dict
    from payoff.report._collect import collect
    from payoff.report._figures import pareto

    config = config_from_dict(
        {
            "study": "score-only",
            "task": {"function": "tests.report.test_report:score_only", "metric": "score"},
            "levers": {"x": [1, 2, 3]},
        }
    )
    study = payoff.run(config, storage=tmp_path / "p.db")
    figure = pareto(collect(study.record(), n_draws=500))
    panels = [a.text for a in figure.figure.layout.annotations]
    assert panels and not any("latency" in p for p in panels)
    assert "Left out, as no trial measured it: inference latency" in figure.caption
