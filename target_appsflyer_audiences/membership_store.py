"""What mirror mode last sent, per audience, so a run can send only the difference.

A Singer target gets no state of its own from Meltano, so the membership lives in a store
the user names: a SQLite file (built in) or a PostgreSQL database (``postgres`` extra).

The store never claims more than the API was sent. Rows of a batch are written *pending*
before the batch is sent and made final (or deleted, for removals) only after the API said
200, so after a crash at any point every row the API may have changed is pending, and the
next run sends those again (``diff``). An audience's ``baseline`` flag says the store holds
its whole membership: it is set only when a full overwrite finished, and cleared by add or
remove runs (which change the audience behind mirror's back); without it, mirror falls back
to overwriting the audience.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from target_appsflyer_audiences.settings import AudienceConfigError


class MembershipStore(Protocol):
    """The operations a mirror run needs; every write is committed before it returns."""

    def has_baseline(self, import_key: str) -> bool:
        """True when the store holds the audience's whole membership."""
        ...

    def count(self, import_key: str) -> int:
        """How many members the store holds for the audience."""
        ...

    def members(self, import_key: str) -> Iterator[tuple[str, int, bool]]:
        """Every (key, fingerprint, pending) of the audience, in byte order of the key."""
        ...

    def start_baseline(self, import_key: str, platform: str) -> None:
        """Forget the audience's rows and baseline: an overwrite starts from nothing."""
        ...

    def finish_baseline(self, import_key: str) -> None:
        """Mark the rows written since ``start_baseline`` as the whole membership."""
        ...

    def drop_baseline(self, import_key: str) -> None:
        """The audience changed outside mirror: the next mirror run overwrites it."""
        ...

    def mark_pending(self, import_key: str, rows: Sequence[tuple[str, int]]) -> None:
        """Upsert (key, fingerprint) rows as pending: about to be sent."""
        ...

    def confirm(self, import_key: str, rows: Sequence[tuple[str, int]]) -> None:
        """Upsert (key, fingerprint) rows as final: the API accepted them."""
        ...

    def delete(self, import_key: str, keys: Sequence[str]) -> None:
        """Remove rows: the API accepted their removal (or they are no member's key)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def check_store_location(location: str) -> None:
    """Fail at start-up when the store cannot be opened at the end: no driver, no folder."""
    if location.startswith(POSTGRES_SCHEMES):
        try:
            import psycopg  # noqa: F401
        except ImportError:  # psycopg is an optional extra
            raise AudienceConfigError(
                "'membership_store'",
                "is a PostgreSQL URL, but the psycopg driver is not installed: install the "
                "target with its extra, e.g. pip install 'tap-appsflyer-cohort[postgres]'",
            ) from None
        return
    folder = Path(location).parent
    if not folder.is_dir():
        raise AudienceConfigError(
            "'membership_store'", f"the folder {str(folder)!r} does not exist"
        )


def open_store(location: str) -> MembershipStore:
    """A SQLite file path, or a ``postgresql://`` URL."""
    check_store_location(location)
    if location.startswith(POSTGRES_SCHEMES):
        from target_appsflyer_audiences.membership_store_postgres import PostgresStore

        return PostgresStore(location)
    return SqliteStore(Path(location))


class SqliteStore:
    """The membership store in one SQLite file (WAL; each batch its own transaction)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(
            """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            CREATE TABLE IF NOT EXISTS appsflyer_audiences (
                import_key TEXT PRIMARY KEY, platform TEXT NOT NULL,
                baseline INTEGER NOT NULL DEFAULT 0
            );
            CREATE TABLE IF NOT EXISTS appsflyer_audience_members (
                import_key TEXT NOT NULL, key TEXT NOT NULL, fp INTEGER NOT NULL,
                pending INTEGER NOT NULL, PRIMARY KEY (import_key, key)
            ) WITHOUT ROWID;
            """
        )

    def has_baseline(self, import_key: str) -> bool:
        """True when the store holds the audience's whole membership."""
        row = self._db.execute(
            "SELECT baseline FROM appsflyer_audiences WHERE import_key = ?", (import_key,)
        ).fetchone()
        return bool(row and row[0])

    def count(self, import_key: str) -> int:
        """How many members the store holds for the audience."""
        row = self._db.execute(
            "SELECT count(*) FROM appsflyer_audience_members WHERE import_key = ?", (import_key,)
        ).fetchone()
        return int(row[0])

    def members(self, import_key: str) -> Iterator[tuple[str, int, bool]]:
        """Every (key, fingerprint, pending) of the audience, in byte order of the key."""
        cursor = self._db.execute(
            "SELECT key, fp, pending FROM appsflyer_audience_members WHERE import_key = ? "
            "ORDER BY key",
            (import_key,),
        )
        for key, fp, pending in cursor:
            yield key, fp, bool(pending)

    def start_baseline(self, import_key: str, platform: str) -> None:
        """Forget the audience's rows and baseline: an overwrite starts from nothing."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM appsflyer_audience_members WHERE import_key = ?", (import_key,))
        db.execute(
            "INSERT INTO appsflyer_audiences (import_key, platform, baseline) VALUES (?, ?, 0) "
            "ON CONFLICT (import_key) DO UPDATE SET platform = excluded.platform, baseline = 0",
            (import_key, platform),
        )
        db.execute("COMMIT")

    def finish_baseline(self, import_key: str) -> None:
        """Mark the rows written since ``start_baseline`` as the whole membership."""
        self._db.execute(
            "UPDATE appsflyer_audiences SET baseline = 1 WHERE import_key = ?", (import_key,)
        )

    def drop_baseline(self, import_key: str) -> None:
        """The audience changed outside mirror: the next mirror run overwrites it."""
        self._db.execute(
            "UPDATE appsflyer_audiences SET baseline = 0 WHERE import_key = ?", (import_key,)
        )

    def _upsert(self, import_key: str, rows: Sequence[tuple[str, int]], pending: int) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO appsflyer_audience_members (import_key, key, fp, pending) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (import_key, key) "
            "DO UPDATE SET fp = excluded.fp, pending = excluded.pending",
            [(import_key, key, fp, pending) for key, fp in rows],
        )
        db.execute("COMMIT")

    def mark_pending(self, import_key: str, rows: Sequence[tuple[str, int]]) -> None:
        """Upsert (key, fingerprint) rows as pending: about to be sent."""
        self._upsert(import_key, rows, 1)

    def confirm(self, import_key: str, rows: Sequence[tuple[str, int]]) -> None:
        """Upsert (key, fingerprint) rows as final: the API accepted them."""
        self._upsert(import_key, rows, 0)

    def delete(self, import_key: str, keys: Sequence[str]) -> None:
        """Remove rows: the API accepted their removal (or they are no member's key)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "DELETE FROM appsflyer_audience_members WHERE import_key = ? AND key = ?",
            [(import_key, key) for key in keys],
        )
        db.execute("COMMIT")

    def close(self) -> None:
        """Release the connection."""
        self._db.close()
