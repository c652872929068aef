"""One audience's members of this run, on disk: deduplicated, sorted, memory flat.

The membership is known only once the stream ends, and a million members do not belong in
memory, so they go into a scratch SQLite file, appended in arrival order, and come back
sorted by key through SQLite's external sorter (bounded memory; ten times faster than
inserting a million random keys into a b-tree). Deduplication happens on that sorted pass:
the first record of a key wins, the others are counted as duplicates. The same file holds
the planned operations of an incremental run, so the diff is streamed to disk and read back
in request-sized batches. The file is scratch: nothing in it must survive a crash.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from target_appsflyer_audiences.members import Member

#: Members buffered in memory before one ``executemany``.
FLUSH_EVERY = 5_000


class Staging:
    """One audience's scratch file: its staged members and its planned operations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -16000;
            PRAGMA temp_store = FILE;
            CREATE TABLE staged (key TEXT NOT NULL, fp INTEGER NOT NULL, device TEXT NOT NULL);
            CREATE TABLE other_ids (device_id TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE ops (
                seq INTEGER PRIMARY KEY, action TEXT NOT NULL, key TEXT NOT NULL,
                fp INTEGER NOT NULL, device TEXT
            );
            """
        )
        self._pending: list[tuple[str, int, str]] = []
        self._pending_ids: list[tuple[str]] = []
        self.duplicates = 0
        self.members = 0
        self._counted = False
        self._other_ids = False

    # -- intake ----------------------------------------------------------------------------

    def add(self, member: Member) -> None:
        """Stage one member (a repeated key is counted as a duplicate when flushed)."""
        self._pending.append((member.key, member.fingerprint, member.device))
        if len(member.device_ids) > 1:
            self._other_ids = True
            self._pending_ids.extend((i,) for i in member.device_ids if i != member.key)
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write the buffered members (duplicates included: they are dropped when read)."""
        if not self._pending:
            return
        db = self._db
        db.execute("BEGIN")
        db.executemany("INSERT INTO staged (key, fp, device) VALUES (?, ?, ?)", self._pending)
        if self._pending_ids:
            db.executemany("INSERT OR IGNORE INTO other_ids VALUES (?)", self._pending_ids)
        db.execute("COMMIT")
        self._pending.clear()
        self._pending_ids.clear()

    def is_empty(self) -> bool:
        """True when no member was staged."""
        self.flush()
        return self._db.execute("SELECT 1 FROM staged LIMIT 1").fetchone() is None

    # -- reading back ----------------------------------------------------------------------

    def staged(self) -> Iterator[tuple[str, int, str]]:
        """Every staged member (key, fingerprint, device) once, in key order.

        A full pass also sets ``members`` and ``duplicates``.
        """
        self.flush()
        members = duplicates = 0
        previous: str | None = None
        rows = self._db.execute("SELECT key, fp, device FROM staged ORDER BY key, rowid")
        for row in rows:
            if row[0] == previous:
                duplicates += 1
                continue
            previous = row[0]
            members += 1
            yield row
        self.members, self.duplicates = members, duplicates
        self._counted = True

    def counts(self) -> tuple[int, int]:
        """(members, duplicates), counted in SQL if no full pass was made (a failed run)."""
        if not self._counted:
            self.flush()
            distinct, total = self._db.execute(
                "SELECT count(DISTINCT key), count(*) FROM staged"
            ).fetchone()
            self.members, self.duplicates, self._counted = distinct, total - distinct, True
        return self.members, self.duplicates

    def held_by_other_member(self, key: str) -> bool:
        """True when a staged member carries ``key``'s identifier besides its own key."""
        if not self._other_ids:
            return False
        row = self._db.execute("SELECT 1 FROM other_ids WHERE device_id = ?", (key,)).fetchone()
        return row is not None

    # -- planned operations ------------------------------------------------------------------

    def plan(self, ops: Iterator[tuple[str, str, int, str | None]]) -> dict[str, int]:
        """Store planned (action, key, fingerprint, device) rows; return counts per action."""
        counts: dict[str, int] = {}
        batch: list[tuple[str, str, int, str | None]] = []
        db = self._db
        db.execute("BEGIN")
        for op in ops:
            batch.append(op)
            counts[op[0]] = counts.get(op[0], 0) + 1
            if len(batch) >= FLUSH_EVERY:
                db.executemany("INSERT INTO ops (action, key, fp, device) VALUES (?,?,?,?)", batch)
                batch.clear()
        if batch:
            db.executemany("INSERT INTO ops (action, key, fp, device) VALUES (?,?,?,?)", batch)
        db.execute("COMMIT")
        return counts

    def planned(self, action: str) -> Iterator[tuple[str, int, str | None]]:
        """The planned (key, fingerprint, device) rows of ``action``, in plan order."""
        # A plain loop, not ``yield from``: a generator abandoned after an error must not
        # close its cursor later, when the database may be closed already.
        rows = self._db.execute(
            "SELECT key, fp, device FROM ops WHERE action = ? ORDER BY seq", (action,)
        )
        for row in rows:  # noqa: UP028
            yield row

    def close(self) -> None:
        """Close and delete the scratch file."""
        self._db.close()
        self.path.unlink(missing_ok=True)
