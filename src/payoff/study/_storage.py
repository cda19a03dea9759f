"""Where studies live: an Optuna storage (SQLite file by default) plus an artifact folder."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import optuna
from optuna.artifacts import FileSystemArtifactStore

from payoff._errors import ConfigError, StudyNotFoundError
from payoff._files import write_atomic

DEFAULT_STORAGE = "sqlite:///payoff.db"


def storage_url(storage: str | Path | None) -> str:
    """Return a storage URL: a URL as given, a file path as SQLite, None as ``payoff.db``."""
    if storage is None:
        return DEFAULT_STORAGE
    text = str(storage)
    return text if "://" in text else f"sqlite:///{text}"


def _sqlite_path(url: str) -> Path | None:
    """The SQLite file a URL names (``sqlite:///p.db``, ``sqlite:///file:p.db?mode=ro&uri=true``)."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url.removeprefix("sqlite:///")
    if rest.startswith("file:"):
        rest = rest.removeprefix("file:").split("?", 1)[0]
    return Path(rest)


def open_storage(url: str, *, create: bool) -> optuna.storages.BaseStorage:
    """Open an Optuna storage; without ``create``, a missing SQLite file is an error.

    Raises:
        StudyNotFoundError: ``create`` is false and the SQLite file does not exist.
        ConfigError: the URL cannot be opened.
    """
    path = _sqlite_path(url)
    if path is not None and not create and not path.is_file():
        raise StudyNotFoundError(
            f"no storage at {str(path)!r}: run a study first (payoff run STUDY_FILE) or pass "
            "--storage with the file or URL it was run with."
        )
    # SQLite waits for a busy writer instead of failing at once when several processes write.
    kwargs = {"connect_args": {"timeout": 60}} if path is not None else {}
    try:
        # Opening creates the tables when missing: two first runs must not both do it.
        with study_lock(url, "tables"):
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except ConfigError:
        raise
    except Exception as err:  # SQLAlchemy raises many kinds; all mean "cannot open this URL"
        detail = str(getattr(err, "orig", None) or err).splitlines()[0]  # not SQLAlchemy's SQL
        if "file is not a database" in detail:
            detail += " (not an SQLite file, or a damaged one)"
        raise ConfigError(f"cannot open storage {url!r}: {detail}.") from None
    if path is not None:
        _write_locked(storage.engine)
    return storage


def _write_locked(engine: Any) -> None:
    """Make every SQLite transaction take the write lock when it begins.

    Optuna reads a row, then updates it (``SELECT ... FOR UPDATE``, which SQLite ignores):
    two workers could both see a queued trial as waiting and both run it. ``BEGIN
    IMMEDIATE`` serialises those read-then-write transactions, as PostgreSQL's row locks do.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver's own BEGIN would come first

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners were set


def artifacts_dir(url: str, artifacts: str | Path | None = None) -> Path:
    """Return the folder for trial weights: as given, beside SQLite, or ./payoff-artifacts."""
    if artifacts is not None:
        return Path(artifacts)
    path = _sqlite_path(url)
    return path.with_name(path.stem + "-artifacts") if path else Path("payoff-artifacts")


class _AtomicStore(FileSystemArtifactStore):
    """Optuna's file store, writing each artifact whole: a trial killed mid-upload leaves
    a temporary file, never a truncated artifact under its id."""

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        write_atomic(self._get_filepath(artifact_id), content_body.read(), what="an artifact")


def artifact_store(url: str, artifacts: str | Path | None = None) -> FileSystemArtifactStore:
    """Return (creating its folder) the Optuna artifact store that keeps trial weights."""
    folder = artifacts_dir(url, artifacts)
    folder.mkdir(parents=True, exist_ok=True)
    return _AtomicStore(str(folder))


@contextlib.contextmanager
def study_lock(url: str, name: str, *, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold a lock named ``name`` (a study's, or ``tables``) across processes while the block
    reads, then writes: two runs never queue one trial twice nor both create the tables.
    Not reentrant: never nest two.

    SQLite: an exclusive lock on one file beside the database, whatever the name (its
    processes share a machine). PostgreSQL: an advisory lock per name, which the server
    holds for any host. Other storages: no lock.
    """
    path = _sqlite_path(url)
    if path is not None:
        import fcntl

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(f"{path}.lock", "a+b")  # noqa: SIM115 - closed below
        except OSError:
            lock = None  # a read-only folder: nothing will be written there to race on
        if lock is None:
            yield
            return
        with lock as f:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ConfigError(
                            f"another payoff process has held {path}.lock for "
                            f"{timeout_s:.0f} s; is one stuck?"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    key = int.from_bytes(
        hashlib.sha256(f"payoff:{name}".encode()).digest()[:8], "big", signed=True
    )
    try:
        with engine.connect() as con:
            con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


@contextlib.contextmanager
def open_artifact(store: FileSystemArtifactStore, artifact_id: str, what: str) -> Iterator[Any]:
    """Open a stored artifact for reading.

    Raises:
        ConfigError: it is not in the store (a study moved without its artifacts folder).
    """
    from optuna.artifacts.exceptions import ArtifactNotFound

    try:
        reader = store.open_reader(artifact_id)
    except ArtifactNotFound:
        raise ConfigError(
            f"{what} (artifact {artifact_id}) is not in the artifact folder "
            f"{store._base_path}: a study file moved without the payoff-artifacts folder "
            "beside it? Move that folder with it."
        ) from None
    with reader as f:
        yield f


def load_optuna_study(url: str, name: str) -> optuna.Study:
    """Load an existing study by name.

    Raises:
        StudyNotFoundError: no study of that name; the message lists those that exist.
    """
    from payoff.config import suggest

    storage = open_storage(url, create=False)
    names = [
        s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
    ]
    if name not in names:
        listed = ", ".join(names) if names else "none"
        raise StudyNotFoundError(
            f"no study {name!r} in {url} (studies there: {listed}).{suggest(name, names)}"
        )
    return optuna.load_study(study_name=name, storage=storage)
