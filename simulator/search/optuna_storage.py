"""Where an Optuna study lives, chosen by one `storage:` setting, and how to say it without its password.

- absent / None: in memory (the default, and the fastest for cheap trials; gone when the process ends);
- a file path (``studies/quickstart.log``): Optuna's JournalStorage with a file backend, an append-only log
  that a run killed at any moment can resume from (completed trials are kept, none is written twice);
- ``postgresql://user:password@host:5432/db`` (or any other SQLAlchemy URL such as ``mysql+pymysql://`` or
  ``sqlite:///study.db``): Optuna's RDBStorage, which many processes on many machines can share;
- ``redis://host:6379/0``: Optuna's JournalStorage with a Redis backend (needs the ``redis`` package).

A URL's password never leaves this module unmasked: results, logs and error messages carry `mask_secrets`'s
form (``postgresql://user:***@host/db``). The password is best given in the environment anyway: libpq reads
PGPASSWORD and ~/.pgpass when the URL has none.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from hardware_models.errors import UserError

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

StorageKind = Literal["memory", "journal", "rdb", "redis"]

# scheme://user:password@  (user may be empty, as in redis://:password@host)
_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@\s/]*)@")
# ?password=... in a query string (libpq accepts it)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&\s]*)", re.IGNORECASE)
MASK = "***"
JOURNAL_LOCK_GRACE_S = 3


@overload
def mask_secrets(text: str) -> str: ...
@overload
def mask_secrets(text: None) -> None: ...
def mask_secrets(text: str | None) -> str | None:
    """`text` with the password of every URL in it replaced by ***: safe for results, logs and messages."""
    if text is None:
        return None
    text = _CREDENTIALS.sub(lambda m: m["head"] + MASK + "@", str(text))
    return _QUERY_PASSWORD.sub(lambda m: m["head"] + MASK, text)


def storage_kind(spec: str | None) -> StorageKind:
    """Which storage `spec` names: memory (None or empty), redis, rdb (any other URL) or journal (a path)."""
    if spec is None or not str(spec).strip():
        return "memory"
    spec = str(spec).strip()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return "redis"
    if "://" in spec:
        return "rdb"
    return "journal"


def open_storage(spec: str | BaseStorage | None) -> BaseStorage | None:
    """The Optuna storage `spec` names (None for in memory: Optuna's default of a fresh InMemoryStorage); a
    storage already opened is passed through.

    A journal file's folder is created if needed; an RDB or Redis server is contacted now, so that a wrong
    URL, password or database fails here with a one-line UserError (password masked) rather than mid-study.
    """
    if spec is not None and not isinstance(spec, str):
        return spec
    kind = storage_kind(spec)
    if kind == "memory":
        return None
    spec = str(spec).strip()
    try:
        if kind == "journal":
            return _journal_file(spec)
        if kind == "redis":
            return _redis(spec)
        return _rdb(spec)
    except UserError:
        raise
    except Exception as exc:  # driver, network and authentication errors: one line, password masked
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(f"storage {mask_secrets(spec)}: cannot open: {mask_secrets(message)[:300]}") from None


def _journal_file(path_text: str) -> BaseStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    path = Path(path_text).expanduser()
    if path.is_dir():
        raise UserError(f"storage {path_text}: is a directory; give a file path such as {path / 'study.log'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A process killed while appending leaves its lock behind; an append takes milliseconds, so a lock older
    # than JOURNAL_LOCK_GRACE_S is stale and is broken (Optuna's default waits 30 s before resuming).
    lock = JournalFileSymlinkLock(str(path), grace_period=JOURNAL_LOCK_GRACE_S)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


def _redis(url: str) -> BaseStorage:
    try:
        import redis  # noqa: F401  (Optuna's Redis backend needs it)
    except ImportError:
        raise UserError(f"storage {mask_secrets(url)}: the redis package is not installed "
                        "(pip install redis), or use a journal file or postgresql:// storage") from None
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalRedisBackend

    return JournalStorage(JournalRedisBackend(url))


def _rdb(url: str) -> BaseStorage:
    from optuna.storages import RDBStorage

    # pool_pre_ping: a worker that sat idle past a server or proxy timeout reconnects instead of failing.
    # No heartbeat: it only works with Study.optimize, and the search asks and tells in batches.
    return RDBStorage(url, engine_kwargs={"pool_pre_ping": True})


def describe(spec: str | None) -> str:
    """One line for humans: 'in memory', 'journal file PATH', 'rdb postgresql://user:***@host/db'."""
    kind = storage_kind(spec)
    if kind == "memory":
        return "in memory"
    label = {"journal": "journal file", "rdb": "RDB", "redis": "Redis journal"}[kind]
    return f"{label} {mask_secrets(str(spec).strip())}"
