"""The report: one self-contained HTML file with interactive charts, and a terminal summary."""

from __future__ import annotations

from payoff.report._html import write_report
from payoff.report._terminal import terminal_summary

__all__ = ["terminal_summary", "write_report"]
