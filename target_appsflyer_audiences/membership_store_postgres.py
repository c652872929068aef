"""The membership store in PostgreSQL (needs psycopg: the ``postgres`` extra).

Same tables and contract as ``SqliteStore``. Keys are compared with ``COLLATE "C"`` (byte
order), the order the diff expects, whatever the database's default collation. Batches of
rows go through ``COPY`` into a temporary table and one set-based statement, so a 10,000-row
batch costs one round trip, not 10,000.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import psycopg

_SCHEMA = """
CREATE TABLE IF NOT EXISTS appsflyer_audiences (
    import_key text PRIMARY KEY, platform text NOT NULL, baseline boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS appsflyer_audience_members (
    import_key text NOT NULL, key text COLLATE "C" NOT NULL, fp bigint NOT NULL,
    pending boolean NOT NULL, PRIMARY KEY (import_key, key)
);
"""


class PostgresStore:
    """Membership rows in two tables of the database the URL names."""

    def __init__(self, url: str) -> None:
        self._db = psycopg.connect(url, autocommit=True)
        with self._db.transaction():
            # Two targets starting at once must not race to create the tables.
            self._db.execute("SELECT pg_advisory_xact_lock(727170)")
            self._db.execute(_SCHEMA)
        self._db.execute(
            'CREATE TEMPORARY TABLE IF NOT EXISTS batch_rows (key text COLLATE "C", fp bigint)'
        )

    def has_baseline(self, import_key: str) -> bool:
        """True when the store holds the audience's whole membership."""
        row = self._db.execute(
            "SELECT baseline FROM appsflyer_audiences WHERE import_key = %s", (import_key,)
        ).fetchone()
        return bool(row and row[0])

    def count(self, import_key: str) -> int:
        """How many members the store holds for the audience."""
        row = self._db.execute(
            "SELECT count(*) FROM appsflyer_audience_members WHERE import_key = %s", (import_key,)
        ).fetchone()
        return int(row[0]) if row else 0

    def members(self, import_key: str) -> Iterator[tuple[str, int, bool]]:
        """Every (key, fingerprint, pending) of the audience, in byte order of the key."""
        with self._db.transaction(), self._db.cursor(name="audience_members") as cursor:
            cursor.itersize = 20_000
            cursor.execute(
                "SELECT key, fp, pending FROM appsflyer_audience_members WHERE import_key = %s "
                'ORDER BY key COLLATE "C"',
                (import_key,),
            )
            for row in cursor:  # noqa: UP028 (no close() forwarded to a finished cursor)
                yield row

    def start_baseline(self, import_key: str, platform: str) -> None:
        """Forget the audience's rows and baseline: an overwrite starts from nothing."""
        with self._db.transaction():
            self._db.execute(
                "DELETE FROM appsflyer_audience_members WHERE import_key = %s", (import_key,)
            )
            self._db.execute(
                "INSERT INTO appsflyer_audiences (import_key, platform, baseline) "
                "VALUES (%s, %s, false) ON CONFLICT (import_key) "
                "DO UPDATE SET platform = excluded.platform, baseline = false",
                (import_key, platform),
            )

    def finish_baseline(self, import_key: str) -> None:
        """Mark the rows written since ``start_baseline`` as the whole membership."""
        self._db.execute(
            "UPDATE appsflyer_audiences SET baseline = true WHERE import_key = %s", (import_key,)
        )

    def drop_baseline(self, import_key: str) -> None:
        """The audience changed outside mirror: the next mirror run overwrites it."""
        self._db.execute(
            "UPDATE appsflyer_audiences SET baseline = false WHERE import_key = %s", (import_key,)
        )

    def _load(self, rows: Sequence[tuple[str, int]]) -> None:
        self._db.execute("TRUNCATE batch_rows")
        with self._db.cursor().copy("COPY batch_rows (key, fp) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _upsert(self, import_key: str, rows: Sequence[tuple[str, int]], *, pending: bool) -> None:
        with self._db.transaction():
            self._load(rows)
            self._db.execute(
                "INSERT INTO appsflyer_audience_members (import_key, key, fp, pending) "
                "SELECT %s, key, fp, %s FROM batch_rows ON CONFLICT (import_key, key) "
                "DO UPDATE SET fp = excluded.fp, pending = excluded.pending",
                (import_key, pending),
            )

    def mark_pending(self, import_key: str, rows: Sequence[tuple[str, int]]) -> None:
        """Upsert (key, fingerprint) rows as pending: about to be sent."""
        self._upsert(import_key, rows, pending=True)

    def confirm(self, import_key: str, rows: Sequence[tuple[str, int]]) -> None:
        """Upsert (key, fingerprint) rows as final: the API accepted them."""
        self._upsert(import_key, rows, pending=False)

    def delete(self, import_key: str, keys: Sequence[str]) -> None:
        """Remove rows: the API accepted their removal (or they are no member's key)."""
        with self._db.transaction():
            self._load([(key, 0) for key in keys])
            self._db.execute(
                "DELETE FROM appsflyer_audience_members m USING batch_rows b "
                "WHERE m.import_key = %s AND m.key = b.key",
                (import_key,),
            )

    def close(self) -> None:
        """Release the connection."""
        self._db.close()
