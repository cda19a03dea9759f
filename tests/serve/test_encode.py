"""The NumPy record encoder gives exactly what the fitted scikit-learn transformer gives."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from payoff.serve import TrainedModel
from payoff.serve._encode import RecordEncoder
from payoff.tasks import Task, load_task


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the service gets them: Python floats and strings, None where missing."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [
        {k: (float(v) if isinstance(v, int | float) else v) for k, v in r.items()} for r in rows
    ]


def _same(encoder: RecordEncoder, records: list[dict[str, Any]]) -> None:
    fast, slow = encoder.encode(records), encoder.transform(records)
    assert fast.dtype == slow.dtype == np.float32 and fast.flags.c_contiguous
    np.testing.assert_array_equal(fast, slow)  # bit for bit, inf included


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Task, pd.DataFrame]:
    """A table with missing values, 3 categorical columns (one of 150 categories, over the
    encoder's 100-column cap, so rare ones share an 'infrequent' column) and a label."""
    rng = np.random.default_rng(0)
    n = 900
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10, 1, n),
            "age": rng.integers(18, 90, n).astype(float),
            "debt": rng.normal(0, 5e3, n),
            "home": rng.choice(["rent", "owner", "parents", "other"], n, p=[0.4, 0.4, 0.15, 0.05]),
            "job": rng.choice(["fixed", "freelance", "partime"], n),
            "city": [f"city-{int(i)}" for i in rng.zipf(1.3, n) % 150],
            "status": rng.choice(["good", "bad"], n),
        }
    )
    for column, share in (("income", 0.1), ("debt", 0.05), ("home", 0.05), ("job", 0.02)):
        frame.loc[rng.random(n) < share, column] = np.nan
    path = tmp_path_factory.mktemp("encode") / "credit.csv"
    frame.to_csv(path, index=False)
    task = load_task(f"csv:{path}", label="status")
    return task, pd.read_csv(path).drop(columns=["status"])


def test_table_rows_encode_identically(table: tuple[Task, pd.DataFrame]) -> None:
    task, frame = table
    onehot = task.preprocessor.named_transformers_["categorical"].named_steps["onehot"]
    assert any(c is not None for c in onehot.infrequent_categories_)  # the cap is exercised
    encoder = RecordEncoder(task)
    assert encoder.fast
    _same(encoder, _records(frame))  # every row, missing values included


def test_unknown_and_odd_values_encode_identically(table: tuple[Task, pd.DataFrame]) -> None:
    task, frame = table
    encoder = RecordEncoder(task)
    rng = np.random.default_rng(1)
    base = _records(frame.head(300))
    odd: list[dict[str, Any]] = []
    for i, record in enumerate(base):
        r = dict(record)
        r["home"] = ["castle", "", "RENT", " rent", "nan", None][i % 6]  # unknown or missing
        r["city"] = f"city-{rng.integers(0, 400)}"  # known, infrequent or unknown
        r["income"] = [0.0, -1e12, 1e300, None, math.nan, float(rng.normal())][i % 6]
        r["debt"] = float(rng.normal(0, 1e6))
        odd.append(r)
    _same(encoder, odd)
    _same(encoder, odd[:1])  # one record, the commonest request


def test_image_rows_encode_identically(trained: TrainedModel) -> None:
    """The served study's numeric task, on its rows and on noisy, huge and missing values."""
    from payoff.serve._model import raw_frame

    task = trained.task
    encoder = RecordEncoder(task)
    assert encoder.fast
    frame = raw_frame(task, np.concatenate([task.X_train, task.X_val, task.X_test]))
    rng = np.random.default_rng(2)
    noisy = frame * rng.lognormal(0, 1, frame.shape)
    noisy.iloc[::7, 0] = np.nan
    noisy.iloc[::11, 1] = 1e308  # overflows float32 after scaling: inf, as the transformer
    _same(encoder, _records(frame))
    _same(encoder, _records(noisy))


def test_unrecognised_preprocessor_falls_back(
    trained: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    from sklearn.preprocessing import StandardScaler

    from payoff.serve._model import raw_frame

    frame = raw_frame(trained.task, trained.task.X_test)
    task = dataclasses.replace(trained.task, preprocessor=StandardScaler().fit(frame))
    with caplog.at_level(logging.WARNING, logger="payoff.serve._encode"):
        encoder = RecordEncoder(task)
    assert not encoder.fast
    assert "scikit-learn transformer" in caplog.text
    _same(encoder, _records(frame))


def test_service_uses_the_fast_path(client: Any) -> None:
    assert client.app.state.encoder.fast


def test_fast_path_is_faster(table: tuple[Task, pd.DataFrame]) -> None:
    import time

    task, frame = table
    encoder = RecordEncoder(task)
    records = _records(frame.head(1))

    def per_call(fn: Any) -> float:
        fn(records)
        start = time.perf_counter()
        for _ in range(20):
            fn(records)
        return (time.perf_counter() - start) / 20

    assert per_call(encoder.encode) * 5 < per_call(encoder.transform)
