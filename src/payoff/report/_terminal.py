"""The report's first screen in the terminal: the recommendation and its key numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import RenderableType

    from payoff.report._collect import ReportData
    from payoff.study import Study

_STYLE = {"measured": "blue", "estimate": "yellow", "forecast": "red"}


def summary_of(data: ReportData) -> RenderableType:
    """Return the first screen for data already collected."""
    from payoff.report._collect import headline_numbers

    rec = data.recommendation
    lines = Text()
    for i, s in enumerate(rec.statements):
        if i:
            lines.append("\n")
        lines.append("• ", style="bold")
        lines.append(s)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("key number")
    table.add_column("value", justify="right")
    table.add_column("how")
    for t in headline_numbers(data):
        note = t.get("note", "")
        value = t["value"] + ("" if not note else f" {note}" if note[0] == "=" else f": {note}")
        table.add_row(t["label"], value, Text(t["kind"], style=_STYLE.get(t["kind"], "")))
    return Panel(
        Group(lines, Text(""), table),
        title=f"payoff: {data.record.name}",
        title_align="left",
    )


def terminal_summary(
    study: Study,
    *,
    target: str | Mapping[str, float] | None = None,
    budget_usd: float | None = None,
    seed: int = 0,
) -> RenderableType:
    """Return the report's first screen as a rich renderable (``console.print`` it).

    Raises:
        ConfigError: the study has no completed trial, or a bad target or budget.
    """
    from payoff.report._collect import collect

    data = collect(
        study.record(), storage=study.storage, target=target, budget_usd=budget_usd, seed=seed
    )
    return summary_of(data)
