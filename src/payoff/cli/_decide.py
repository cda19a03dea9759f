"""`payoff recommend` and `payoff report`: the decision and the report from a stored study."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

import payoff
from payoff.cli._app import StorageOpt, _user_errors, app, console

TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target", help="METRIC=VALUE, e.g. accuracy=0.97 [default: the study file's target]."
    ),
]
BudgetOpt = Annotated[
    float | None,
    typer.Option("--budget-usd", help="The most a setting may cost over the horizon (TCO)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the Monte Carlo.")]


@app.command()
def recommend(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    target: TargetOpt = None,
    budget_usd: BudgetOpt = None,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    seed: SeedOpt = 0,
) -> None:
    """Recommend a setting: cheapest to meet the target, best ROI in budget, next investment."""
    with _user_errors():
        s = payoff.load(study, storage)
        rec = s.recommend(target=target, budget_usd=budget_usd, seed=seed)
        if as_json:
            print(json.dumps(rec.as_dict(), indent=1, default=str))
            return
        for line in rec.statements:
            console.print(Text("• ", style="bold") + Text(line))
        for title, choice in (
            ("target", rec.meets_target),
            (f"best {rec.ranked_by}", rec.best_roi),
            ("next investment", rec.next_investment),
        ):
            if choice is None:
                continue
            console.print(Text(f"evidence ({title}):", style="bold"))
            for e in choice.evidence:
                console.print(Text(f"  - {e}"))
        for f in rec.flags:
            console.print(Text(f"warning ({f.kind}, {f.subject}): {f.message}", style="yellow"))


@app.command()
def report(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    target: TargetOpt = None,
    budget_usd: BudgetOpt = None,
    storage: StorageOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Write a self-contained HTML report (works offline) and print its first screen."""
    with _user_errors():
        show_report(payoff.load(study, storage), output, target, budget_usd, seed)


def show_report(
    study: payoff.Study,
    output: Path,
    target: str | None = None,
    budget_usd: float | None = None,
    seed: int = 0,
) -> None:
    """Write the study's report to ``output`` and print its first screen and its path."""
    from payoff.report._collect import collect
    from payoff.report._html import render, write_html
    from payoff.report._terminal import summary_of

    data = collect(study, target=target, budget_usd=budget_usd, seed=seed)
    html = render(data)
    write_html(html, output)
    console.print(summary_of(data))
    console.print(
        f"report: {output.resolve()} ({len(html.encode()) / 1e6:.1f} MB)", highlight=False
    )
