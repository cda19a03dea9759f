"""A pilot's report in budget-owner words: its answers, why it stopped, what it spent.

The pilot (design: pilot) stores a plain report on the study; this module says it for
``recommend``, the report and the end of ``payoff run``, so all three say the same thing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payoff.analysis._words import fmt_count, fmt_usd

# An interval end this many times beyond the largest size the pilot measured is not
# evidence of anything: the pilot says so instead of printing a nine-digit count.
EVIDENCE_REACH = 1000.0


@dataclass(frozen=True, slots=True)
class PilotAnswerView:
    """One answer of the pilot, in words.

    Attributes:
        question: ``accuracy=0.9`` (data reaching a target) or ``accuracy at 1,257 examples``.
        sure: Whether the pilot's interval is tight enough to act on.
        words: The answer in one sentence.
        point: The answer (training examples, or the metric for a forecast).
        low: The low end of its interval.
        high: The high end of its interval.
        plan: Training examples to plan by (reaches the target with 75% probability).
    """

    question: str
    sure: bool
    words: str
    point: float = math.nan
    low: float = math.nan
    high: float = math.nan
    plan: float = math.nan


@dataclass(frozen=True, slots=True)
class PilotView:
    """What a pilot ran, why it stopped, what it answers and what it spent.

    Attributes:
        stop_reason: Why the pilot stopped.
        n_rungs: Rungs of the ladder it ran.
        largest_n_train: The most training examples any of its trials used.
        answers: Its answers, in words.
        spent_compute_usd: Compute and energy dollars it spent.
        spent_labels_usd: The labels it used (the largest rung's), at the study's price.
        spent_hours: Trial hours it spent.
        grid_trials: Trials of the full grid of the study's levers it stands in for.
        grid_cost_usd_estimate: That grid's compute dollars (an estimate, see ``grid_method``).
        grid_labels_usd_estimate: The labels of that grid's largest data setting.
        grid_hours_estimate: That grid's trial hours (the same estimate).
        grid_method: How the grid's cost is estimated.
    """

    stop_reason: str
    n_rungs: int
    largest_n_train: int
    answers: tuple[PilotAnswerView, ...]
    spent_compute_usd: float
    spent_labels_usd: float
    spent_hours: float
    grid_trials: int
    grid_cost_usd_estimate: float
    grid_hours_estimate: float
    grid_method: str
    grid_labels_usd_estimate: float = 0.0

    @property
    def grid_share(self) -> float:
        """The pilot's compute spend as a share of the grid's estimate."""
        g = self.grid_cost_usd_estimate
        return self.spent_compute_usd / g if g > 0 else math.nan

    def spend_words(self) -> str:
        """Say what the pilot spent and what the grid it stands in for would cost."""
        share = self.grid_share
        share_words = f", {share:.0%} of it" if math.isfinite(share) else ""
        labels = self.grid_labels_usd_estimate
        labels_share = f", {self.spent_labels_usd / labels:.0%} of it" if labels > 0 else ""
        return (
            f"Pilot spent {fmt_usd(self.spent_compute_usd)} of compute "
            f"({_duration(self.spent_hours)}) and {fmt_usd(self.spent_labels_usd)} of labels "
            f"(the {fmt_count(self.largest_n_train)} examples of its largest rung). The full "
            f"grid of {self.grid_trials} trials it stands in for would cost about "
            f"{fmt_usd(self.grid_cost_usd_estimate)} of compute "
            f"({_duration(self.grid_hours_estimate)}{share_words}; estimated from "
            f"{self.grid_method}) and {fmt_usd(labels)} of labels (its largest data "
            f"setting{labels_share})."
        )

    def statements(self) -> list[str]:
        """Return the pilot's findings as sentences: why it stopped, each answer, the spend."""
        lines = [
            f"Pilot stopped: {self.stop_reason} ({self.n_rungs} rungs, up to "
            f"{fmt_count(self.largest_n_train)} training examples)."
        ]
        lines += [f"Pilot, {a.question}: {a.words}" for a in self.answers]
        lines.append(self.spend_words())
        return lines

    def as_dict(self) -> dict[str, Any]:
        """Return the view as JSON-ready data (the stored report's figures with words)."""
        return {
            "stop_reason": self.stop_reason,
            "n_rungs": self.n_rungs,
            "largest_n_train": self.largest_n_train,
            "answers": [dataclasses.asdict(a) for a in self.answers],
            "spent_compute_usd": self.spent_compute_usd,
            "spent_labels_usd": self.spent_labels_usd,
            "spent_hours": self.spent_hours,
            "grid_trials": self.grid_trials,
            "grid_cost_usd_estimate": self.grid_cost_usd_estimate,
            "grid_hours_estimate": self.grid_hours_estimate,
            "grid_method": self.grid_method,
            "grid_labels_usd_estimate": self.grid_labels_usd_estimate,
        }


def pilot_view(report: Mapping[str, Any] | None) -> PilotView | None:
    """Say a stored pilot report in words; None when there is none."""
    if not report:
        return None
    largest = int(report.get("largest_n_train", 0))
    notes = list(report.get("notes", []))
    method = notes[0].removeprefix("estimate: ") if notes else "the pilot's cost curve"
    return PilotView(
        stop_reason=str(report.get("stop_reason", "")),
        n_rungs=int(report.get("n_rungs", 0)),
        largest_n_train=largest,
        answers=tuple(
            _answer(a, largest, float(report.get("level", 0.9))) for a in report.get("answers", [])
        ),
        spent_compute_usd=float(report.get("spent_usd", math.nan)),
        spent_labels_usd=float(report.get("spent_labels_usd", 0.0)),
        spent_hours=float(report.get("spent_hours", math.nan)),
        grid_trials=int(report.get("grid_trials", 0)),
        grid_cost_usd_estimate=float(report.get("grid_cost_usd_estimate", math.nan)),
        grid_hours_estimate=float(report.get("grid_hours_estimate", math.nan)),
        grid_method=method,
        grid_labels_usd_estimate=float(report.get("grid_labels_usd_estimate", 0.0)),
    )


def _answer(a: Mapping[str, Any], largest: int, level: float) -> PilotAnswerView:
    question = str(a["question"])
    sure = bool(a.get("sure"))
    point, low, high, plan = (float(a.get(k, math.nan)) for k in ("point", "low", "high", "plan"))
    how_sure = "sure" if sure else "not sure yet"
    if " at " in question:  # a forecast of the metric, not a size
        words = f"{point:.4g} ({level:.0%} interval {low:.4g} to {high:.4g}); {how_sure}."
        return PilotAnswerView(question, sure, words, point, low, high)
    if not a.get("reachable", True):
        why = str(a.get("message") or "the curve levels off below the target")
        return PilotAnswerView(question, sure, f"out of reach: {why}; {how_sure}.")
    # Sizes beyond the evidence are not figures anyone should plan by: they become null.
    reach = EVIDENCE_REACH * max(largest, 1)
    point, low, high, plan = (x if x <= reach else math.nan for x in (point, low, high, plan))
    if not math.isfinite(point):
        words = (
            f"out of reach of this study's evidence (more than {fmt_count(reach)} examples, "
            f"{EVIDENCE_REACH:,.0f}x the largest the pilot measured)."
        )
        return PilotAnswerView(question, False, words)
    high_words = (
        fmt_count(high)
        if math.isfinite(high)
        else (f"beyond {fmt_count(reach)} (out of reach of this study's evidence)")
    )
    words = (
        f"about {fmt_count(point)} training examples "
        f"({level:.0%} interval {fmt_count(low)} to {high_words})"
    )
    if math.isfinite(plan):
        words += f"; plan for {fmt_count(plan)} (reaches it with 75% probability)"
    return PilotAnswerView(question, sure, f"{words}; {how_sure}.", point, low, high, plan)


def _duration(hours: float) -> str:
    if not math.isfinite(hours):
        return "time n/a"
    seconds = hours * 3600
    if seconds < 120:
        return f"{seconds:.0f} s"
    if hours < 2:
        return f"{seconds / 60:.0f} min"
    return f"{hours:.1f} h"
