from __future__ import annotations

import subprocess
import sys

import payoff.meter


def test_all_matches_public_names() -> None:
    public = {n for n in vars(payoff.meter) if not n.startswith("_")} - {"annotations"}
    assert set(payoff.meter.__all__) == public


def test_import_loads_neither_torch_nor_codecarbon() -> None:
    code = (
        "import sys, payoff.meter, payoff.prices; "
        "print(sorted(m for m in ('torch', 'codecarbon') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
