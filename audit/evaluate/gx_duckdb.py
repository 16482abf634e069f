"""A SQLAlchemy dialect that lets Great Expectations' SQL engine run on DuckDB.

GX 1.24 has no DuckDB support, and over plain `duckdb_engine` its SQL engine
returns empty results: GX reads a result after the connection's rollback, and
duckdb_engine's cursor *is* the connection, so the rollback discards it. Here
every cursor is a real `connection.cursor()` (its own DuckDB session over the
same database), so a result outlives its connection's transaction.

The dialect is registered under its own name (`audit_duckdb`, entry point
`sqlalchemy.dialects` in pyproject.toml) and never replaces `duckdb`. Its URL
names a connection handed over in-process:

    url = share(con)            # 'audit_duckdb:///<handle>'
    engine = sqlalchemy.create_engine(url)

so GX queries the very database that holds the export's views. Keep
`create_temp_table=False` in GX: a temporary table lives in one cursor's
session only.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import duckdb
from duckdb_engine import ConnectionWrapper, CursorWrapper, Dialect
from sqlalchemy import pool
from sqlalchemy.dialects import postgresql

_SHARED: dict[str, duckdb.DuckDBPyConnection] = {}
_LOCK = threading.Lock()
_COUNTER = itertools.count(1)


def share(con: duckdb.DuckDBPyConnection) -> str:
    """Register `con` for the dialect; returns the SQLAlchemy URL that reaches it."""
    with _LOCK:
        handle = f"db{next(_COUNTER)}"
        _SHARED[handle] = con
    return f"audit_duckdb:///{handle}"


def unshare(url: str) -> None:
    with _LOCK:
        _SHARED.pop(url.rsplit("/", 1)[-1], None)


class _Connection(ConnectionWrapper):
    """A DB-API connection whose cursors are independent DuckDB cursors."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__(con)
        self._con = con

    def cursor(self) -> CursorWrapper:
        return CursorWrapper(self._con.cursor(), self)

    # Each cursor is its own autocommitting session: the shared connection itself
    # must never enter (or abort) a transaction on GX's behalf.
    def begin(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:  # the shared database outlives GX's connections
        self.closed = True


class AuditDuckDBDialect(Dialect):
    name = "audit_duckdb"
    driver = "audit_duckdb"
    supports_statement_cache = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # GX picks its regex syntax by `issubclass(engine.dialect.dialect, postgresql.dialect)`,
        # and DuckDB accepts PostgreSQL's `~`. SQLAlchemy 2.1's default PostgreSQL dialect
        # is psycopg 3's, while duckdb_engine derives from psycopg2's: name it on the
        # instance (the class attribute stays ours, for the entry point).
        self.dialect = postgresql.dialect

    def connect(self, *cargs: Any, **cparams: Any) -> _Connection:
        handle = cparams.get("database") or (cargs[0] if cargs else None)
        handle = (handle or "").lstrip("/")
        with _LOCK:
            con = _SHARED.get(handle)
        if con is None:
            raise duckdb.ConnectionException(f"no shared DuckDB connection named {handle!r}")
        return _Connection(con)

    def create_connect_args(self, url):
        return (), {"database": url.database}

    @classmethod
    def get_pool_class(cls, url):
        return pool.NullPool


# SQLAlchemy's entry-point loader returns `cls.dialect` when a loaded object has one.
AuditDuckDBDialect.dialect = AuditDuckDBDialect
