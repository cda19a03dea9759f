"""Files payoff writes for people (reports, exported models): whole or not at all.

A file is written beside its destination under a temporary name, flushed to disk and renamed
over it, so a process killed mid-write leaves the previous file intact, never a truncated one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

from payoff._errors import ConfigError


def write_atomic(path: str | Path, data: bytes | str, *, what: str = "the file") -> Path:
    """Write ``data`` to ``path`` atomically, creating its folder; return the path.

    Raises:
        ConfigError: the folder cannot be made or written (read-only, no permission, full).
    """
    out = Path(path)
    body = data.encode("utf-8") if isinstance(data, str) else data
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except OSError as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        why = "the disk is full" if err.errno == errno.ENOSPC else err.strerror or str(err)
        raise ConfigError(
            f"cannot write {what} to {out}: {why}. Choose a folder you can write to (-o PATH)."
        ) from None
    return out


def safe_stem(name: str) -> str:
    """Return a study's name as a file name that stays in its folder.

    Names made by payoff already are (``^[\\w.-]+$``), but a storage shared with Optuna or
    other tools may hold any name: ``../../x`` must not become a path outside the folder.
    """
    stem = re.sub(r"[^\w.-]+", "_", name).lstrip(".") or "study"
    return stem[:200]
