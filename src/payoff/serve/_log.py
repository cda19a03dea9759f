"""The prediction log: every served input and prediction, in SQLite, for drift monitoring."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from payoff._errors import ConfigError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_s REAL NOT NULL,
    trial INTEGER NOT NULL,
    record TEXT NOT NULL,
    prediction TEXT NOT NULL,
    synthetic INTEGER NOT NULL DEFAULT 0,
    confidence REAL
)
"""
# Columns added since the first logs: a log from before gets them on opening.
_ADDED = {
    "synthetic": "synthetic INTEGER NOT NULL DEFAULT 0",
    "confidence": "confidence REAL",
}
# Requests carrying this header (payoff loadtest sends it) are logged as synthetic traffic,
# which the drift monitor leaves out unless asked.
SYNTHETIC_HEADER = "X-Payoff-Synthetic"


def _columns(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(predictions)")}


# Rows the log keeps by default: about a week of a busy service, a few hundred MB.
MAX_ROWS = 1_000_000


class PredictionLog:
    """SQLite log of ``(time, trial, record, prediction)`` rows, newest ``max_rows`` kept;
    thread-safe."""

    def __init__(self, path: str | Path, *, max_rows: int = MAX_ROWS) -> None:
        """Open (creating, readable by its owner only) the log at ``path``.

        Raises:
            ConfigError: the folder cannot be written, or the file is not a prediction log.
        """
        self.path = Path(path)
        self.max_rows = max_rows
        self._appends = 0
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The log holds what users sent: private from the start (SQLite gives its WAL
            # files the same mode).
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            present = _columns(self._db)
            for name, column in _ADDED.items():
                if name not in present:
                    self._db.execute(f"ALTER TABLE predictions ADD COLUMN {column}")
            self._db.commit()
        except (OSError, sqlite3.Error) as err:
            raise ConfigError(
                f"cannot open the prediction log at {self.path}: {err}. Give a file in a "
                "folder you can write (serve's log sits beside the study's SQLite file)."
            ) from None

    def append(
        self,
        trial: int,
        records: Sequence[dict[str, Any]],
        predictions: Sequence[Any],
        *,
        synthetic: bool = False,
        confidence: Sequence[float] | None = None,
    ) -> None:
        """Log one request's records and their predictions (``synthetic``: a load test's;
        ``confidence``: a classifier's highest class probability, a record)."""
        now = time.time()
        sure = confidence if confidence is not None else [None] * len(records)
        rows = [
            (now, trial, json.dumps(r), json.dumps(p), int(synthetic), c)
            for r, p, c in zip(records, predictions, sure, strict=True)
        ]
        with self._lock:
            self._db.executemany(
                "INSERT INTO predictions (time_s, trial, record, prediction, synthetic, "
                "confidence) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._appends += 1
            if self._appends % 100 == 0:  # retention, checked every 100 requests
                self._db.execute(
                    "DELETE FROM predictions WHERE id <= (SELECT MAX(id) FROM predictions) - ?",
                    (self.max_rows,),
                )
            self._db.commit()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _select(
    path: str | Path,
    columns: str,
    *,
    trial: int | None,
    limit: int | None,
    synthetic: bool,
) -> list[tuple[Any, ...]]:
    """The newest rows' ``columns`` (oldest first), of one trial or all, with or without
    load-test traffic."""
    db = sqlite3.connect(Path(path))
    try:
        present = _columns(db)
        wanted = [c.strip() for c in columns.split(",")]
        query = "SELECT " + ", ".join(c if c in present or not present else "NULL" for c in wanted)
        query += " FROM predictions"
        where: list[str] = []
        params: list[Any] = []
        if trial is not None:
            where.append("trial = ?")
            params.append(trial)
        if not synthetic and "synthetic" in present:
            where.append("synthetic = 0")
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        rows = db.execute(query, params).fetchall()
    except sqlite3.Error as err:
        raise ConfigError(
            f"{path} is not a payoff prediction log ({err}): give the file `payoff serve` "
            "wrote (--log)."
        ) from None
    finally:
        db.close()
    rows.reverse()
    return rows


def read_log(
    path: str | Path,
    *,
    trial: int | None = None,
    limit: int | None = None,
    synthetic: bool = False,
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Return the newest logged records and predictions (oldest first), optionally one
    trial's; load-test traffic only with ``synthetic``."""
    rows = _select(path, "record, prediction", trial=trial, limit=limit, synthetic=synthetic)
    return [json.loads(r) for r, _ in rows], [json.loads(p) for _, p in rows]


def read_confidences(
    path: str | Path,
    *,
    trial: int | None = None,
    limit: int | None = None,
    synthetic: bool = False,
) -> list[float | None]:
    """Return the confidences logged with the rows `read_log` returns (None where a row
    has none: a regression, or a log from before confidences)."""
    rows = _select(path, "confidence", trial=trial, limit=limit, synthetic=synthetic)
    return [r[0] for r in rows]


def latest_trial(path: str | Path) -> int | None:
    """Return the trial that served the newest logged record, or None for an empty log."""
    db = sqlite3.connect(Path(path))
    try:
        row = db.execute("SELECT trial FROM predictions ORDER BY id DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return None if row is None else int(row[0])
