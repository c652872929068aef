"""Bringing one audience in step once its stream has ended: the modes, in request batches.

- mirror, stateless (no membership store, or no complete baseline in it): the first batch
  is an ``overwrite``, the rest ``add``. With a store, each accepted batch is recorded, and
  the baseline is marked complete only after the last one: a crash leaves no baseline, and
  the next run overwrites again.
- mirror, incremental (the store has a baseline): only the difference is sent, additions
  first (members stay in the audience throughout), then removals. Each batch is written
  *pending* to the store before it is sent and made final after the 200 (``diff`` sends
  pending rows again), so a crash anywhere leaves a store the next run can repair from.
- add / remove: every member is sent with that action; the store's baseline of the
  audience (if any) is dropped first, since mirror no longer knows the audience.

Nothing is sent before the whole input has been read: a tap that dies half-way, before
its stream ended, changes no audience.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import msgspec

from target_appsflyer_audiences.client import AudiencesClient
from target_appsflyer_audiences.diff import REMOVE, membership_changes
from target_appsflyer_audiences.errors import (
    DeviceCapError,
    EmptyMirrorError,
    RemovalGuardError,
)
from target_appsflyer_audiences.members import IntakeCounts, split_key
from target_appsflyer_audiences.membership_store import MembershipStore
from target_appsflyer_audiences.settings import AudienceMapping
from target_appsflyer_audiences.staging import FLUSH_EVERY, Staging

FORGET = "forget"
_encode = msgspec.json.Encoder().encode

#: (key, fingerprint, device JSON or None) as the staging table hands rows back.
Row = tuple[str, int, "str | None"]


@dataclass
class SendCounts:
    """What was sent for one audience."""

    form: str = ""
    added: int = 0
    removed: int = 0
    unchanged: int | None = None
    requests: int = 0


@dataclass
class AudienceRun:
    """One audience's intake during the run, and what finishing it did."""

    mapping: AudienceMapping
    staging: Staging
    intake: IntakeCounts
    sent: SendCounts


class DeviceCap:
    """Devices per request: the configured cap, lowered for the run when the API says so."""

    def __init__(self, configured: int, logger: logging.Logger) -> None:
        self.value = configured
        self._logger = logger

    def lower(self, error: DeviceCapError, batch: int) -> None:
        """Halve (or take the API's figure, if lower); give up below one device."""
        proposed = batch // 2 if error.cap is None or error.cap >= batch else error.cap
        if proposed < 1:
            raise error
        self.value = min(self.value, proposed)
        self._logger.warning(
            "The API refused %d devices in one request (%s); sending at most %d per request "
            "for the rest of the run",
            batch,
            error.server_text,
            self.value,
        )


class AudienceSync:
    """Finishes audience runs: one client, one cap and (optionally) one store per run."""

    def __init__(
        self,
        client: AudiencesClient,
        store: MembershipStore | None,
        cap: DeviceCap,
        max_removal_percent: int,
        logger: logging.Logger,
    ) -> None:
        self.client = client
        self.store = store
        self.cap = cap
        self.max_removal_percent = max_removal_percent
        self.logger = logger

    def finish(self, run: AudienceRun) -> None:
        """Send what the mode needs; raise an ``AudienceSyncError`` when it cannot."""
        run.staging.flush()
        mode = run.mapping.mode
        requests_before = self.client.requests
        try:
            if mode == "mirror":
                if self.store is not None and self.store.has_baseline(run.mapping.import_key):
                    self._incremental(run, self.store)
                else:
                    self._stateless(run)
            else:
                self._append_or_remove(run, mode)
        finally:
            run.sent.requests = self.client.requests - requests_before

    # -- the modes -------------------------------------------------------------------------

    def _stateless(self, run: AudienceRun) -> None:
        mapping, store = run.mapping, self.store
        run.sent.form = "overwrite"
        if run.staging.is_empty():
            raise EmptyMirrorError(mapping.where)
        if store is not None:
            store.start_baseline(mapping.import_key, mapping.platform)

        def record(batch: Sequence[Row]) -> None:
            run.sent.added += len(batch)
            if store is not None:
                store.confirm(mapping.import_key, [(key, fp) for key, fp, _ in batch])

        self._send(run, run.staging.staged(), "overwrite", "add", after=record)
        if store is not None:
            store.finish_baseline(mapping.import_key)

    def _incremental(self, run: AudienceRun, store: MembershipStore) -> None:
        mapping, staging = run.mapping, run.staging
        key = mapping.import_key
        run.sent.form = "incremental"
        committed = store.count(key)

        def planned() -> Iterator[tuple[str, str, int, str | None]]:
            for change in membership_changes(staging.staged(), store.members(key)):
                action = change.action
                if action == REMOVE and staging.held_by_other_member(change.key):
                    action = FORGET  # the key's id now rides on another member: no removal
                yield action, change.key, change.fingerprint, change.device

        counts = staging.plan(planned())
        adds, removals = counts.get("add", 0), counts.get(REMOVE, 0)
        if committed and 100 * removals > self.max_removal_percent * committed:
            raise RemovalGuardError(mapping.where, removals, committed, self.max_removal_percent)
        run.sent.unchanged = staging.members - adds

        def pending(batch: Sequence[Row]) -> None:
            store.mark_pending(key, [(k, fp) for k, fp, _ in batch])

        def added(batch: Sequence[Row]) -> None:
            store.confirm(key, [(k, fp) for k, fp, _ in batch])
            run.sent.added += len(batch)

        def removed(batch: Sequence[Row]) -> None:
            store.delete(key, [k for k, _, _ in batch])
            run.sent.removed += len(batch)

        self._send(run, staging.planned("add"), "add", "add", before=pending, after=added)
        forgotten = [k for k, _, _ in staging.planned(FORGET)]
        for start in range(0, len(forgotten), FLUSH_EVERY):
            store.delete(key, forgotten[start : start + FLUSH_EVERY])
        self._send(run, staging.planned(REMOVE), "remove", "remove", before=pending, after=removed)

    def _append_or_remove(self, run: AudienceRun, mode: str) -> None:
        mapping = run.mapping
        run.sent.form = mode
        if self.store is not None:
            self.store.drop_baseline(mapping.import_key)

        def record(batch: Sequence[Row]) -> None:
            if mode == "add":
                run.sent.added += len(batch)
            else:
                run.sent.removed += len(batch)

        self._send(run, run.staging.staged(), mode, mode, after=record)

    # -- batches ---------------------------------------------------------------------------

    def _send(
        self,
        run: AudienceRun,
        rows: Iterator[Row],
        first_action: str,
        action: str,
        *,
        before: Callable[[Sequence[Row]], None] | None = None,
        after: Callable[[Sequence[Row]], None],
    ) -> None:
        """Send ``rows`` in batches of the cap: ``before`` each send, ``after`` each 200."""
        mapping = run.mapping
        number = 0
        for chunk in self._chunks(rows):
            queue = [chunk]
            while queue:
                batch = queue.pop(0)
                verb = first_action if number == 0 else action
                number += 1
                if before is not None:
                    before(batch)
                where = (
                    f"{mapping.where} (import_key '{mapping.import_key}'), {verb} batch "
                    f"{number} ({len(batch)} devices)"
                )
                devices = [self._payload(mapping, row, verb) for row in batch]
                try:
                    self.client.send(verb, mapping.import_key, mapping.platform, devices, where)
                except DeviceCapError as error:
                    self.cap.lower(error, len(batch))
                    size = self.cap.value
                    queue[:0] = [batch[i : i + size] for i in range(0, len(batch), size)]
                    number -= 1
                    continue
                after(batch)

    def _chunks(self, rows: Iterator[Row]) -> Iterator[list[Row]]:
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.cap.value:
                yield batch
                batch = []
        if batch:
            yield batch

    @staticmethod
    def _payload(mapping: AudienceMapping, row: Row, verb: str) -> str:
        """The device JSON as staged; a removal carries its key identifier alone.

        [V] The API refuses removals "with more than one identifier per device".
        """
        if verb != "remove" and row[2] is not None:
            return row[2]
        api_field, value = split_key(row[0])
        return _encode({"app_id": mapping.app_id, api_field: value}).decode()
