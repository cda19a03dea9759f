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
            ("recommended", rec.recommended),
            ("target", rec.meets_target),
            ("best ROI" if rec.value_configured else f"best {rec.metric}", rec.best_roi),
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

    data = collect(
        study.record(), storage=study.storage, target=target, budget_usd=budget_usd, seed=seed
    )
    html = render(data)
    write_html(html, output)
    console.print(summary_of(data))
    console.print(
        f"report: {output.resolve()} ({len(html.encode()) / 1e6:.1f} MB)", highlight=False
    )


@app.command("whatif")
def what_if(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    on: Annotated[
        list[str],
        typer.Option("--on", help="Price-book hardware to estimate for (repeat the option)."),
    ],
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Estimate each trial's time and cost on other hardware (a roofline, labelled estimate)."""
    from rich.table import Table

    from payoff.analysis import what_if_frame
    from payoff.prices import load_price_book

    with _user_errors():
        s = payoff.load(study, storage)
        book = load_price_book(s.config.prices)
        frame = what_if_frame(
            s.trials_frame(include_failed=False), book, on, batch_size=s.config.train.batch_size
        )
    if as_json:
        print(frame.to_json(orient="records", indent=1))
        return
    table = Table(title=f"{s.name}: measured, and estimated on other hardware (roofline)")
    for col in ("trial", "measured on", "measured s", "measured $", "on", "est. s", "est. $"):
        table.add_column(col, justify="right" if col.startswith(("m", "e")) else "left")
    table.add_column("bound")
    for _, row in frame.iterrows():
        table.add_row(
            str(row["number"]),
            str(row["hardware"]),
            f"{row['wall_s']:.3g}",
            f"{row['cost_usd_compute']:.3g}",
            str(row["target"]),
            f"{row['est_time_s']:.3g}",
            f"{row['est_cost_usd']:.3g}",
            row["bound"] if isinstance(row["bound"], str) else f"skipped: {row['skip_reason']}",
        )
    console.print(table)
    console.print(
        "estimates: time = max(FLOPs / (target peak FLOP/s x measured efficiency), bytes / "
        "target memory bandwidth); cost = time x the target's $/hour (compute only).",
        highlight=False,
    )
    caveats = {c for cs in frame["caveats"].dropna() for c in str(cs).split("; ") if c}
    for caveat in sorted(caveats):
        console.print(Text(f"caveat: {caveat}", style="yellow"))
