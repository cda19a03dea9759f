from __future__ import annotations

import subprocess
import sys

import payoff


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name in dir(payoff)
        if not name.startswith("_")
        and name not in {"annotations"}
        and not isinstance(getattr(payoff, name), type(payoff))
    }
    assert public | {"__version__"} == set(payoff.__all__)


def test_import_payoff_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, payoff; "
        "heavy = ('torch', 'codecarbon', 'plotly', 'fastapi', 'scipy'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_forecasting_names_load_on_first_use() -> None:
    assert payoff.forecast_curve is payoff.analysis.forecast_curve
    assert payoff.Forecast.__name__ == "Forecast"
