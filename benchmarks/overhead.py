"""What payoff's metering costs: the same training with and without it, interleaved.

Trains the same model on the same data (sklearn:digits, a CNN) bare and under payoff's
meters (clock, CPU, peak memory, CodeCarbon energy, sampled FLOP counting, the per-epoch
curve), alternating A-B-B-A so drift on a noisy machine cancels, and prints the throughput
ratio (metered / bare). The last line is `overhead ratio: X.XXX`; the bar is >= 0.97.

    .venv/bin/python benchmarks/overhead.py [--pairs 6] [--epochs 25]
"""

from __future__ import annotations

import argparse
import statistics
import time

from payoff.levers import RunPlan
from payoff.meter import EnergyMeter, measure
from payoff.tasks import load_task, nested_subset
from payoff.train import train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args()

    task = load_task("sklearn:digits")
    plan = RunPlan(
        n_train=len(task.y_train),
        model_size="medium",
        epochs=args.epochs,
        lr=3e-3,
        patience=None,
    )
    rows = nested_subset(task.y_train, plan.n_train, seed=0)
    n_examples = plan.n_train * plan.epochs
    energy = EnergyMeter()
    energy.warm_up()
    curve: list[dict[str, float]] = []

    def bare() -> float:
        start = time.perf_counter()
        train_model(
            task, plan, family="cnn", metric="accuracy", seed=0, rows=rows, measure_flops=False
        )
        return n_examples / (time.perf_counter() - start)

    def metered() -> float:
        start = time.perf_counter()
        with measure("overhead", energy=energy) as meter:
            train_model(
                task,
                plan,
                family="cnn",
                metric="accuracy",
                seed=0,
                rows=rows,
                on_epoch=lambda epoch, point: curve.append(point),
            )
        assert meter.reading.energy_kwh >= 0
        return n_examples / (time.perf_counter() - start)

    # One untimed run of each warms torch's kernels and the FLOP counter's first use.
    bare()
    metered()
    ratios = []
    for i in range(args.pairs):
        if i % 2 == 0:
            a, b = bare(), metered()
        else:
            b, a = metered(), bare()
        ratios.append(b / a)
        print(f"pair {i + 1}: bare {a:,.0f} ex/s  metered {b:,.0f} ex/s  ratio {b / a:.3f}")
    print(
        f"runs: {args.pairs} bare + {args.pairs} metered, {plan.epochs} epochs of "
        f"{plan.n_train} examples each, CNN medium on sklearn:digits"
    )
    print(f"overhead ratio: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
