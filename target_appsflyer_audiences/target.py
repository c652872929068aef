"""target-appsflyer-audiences: keeps AppsFlyer Audiences in step with Singer streams.

Each configured stream is one audience. Records are normalised and staged while the input
is read; when it ends, every audience is sent (``sync``), one summary line each. An audience
that fails does not stop the others; the run exits 1 if any failed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from functools import cached_property
from pathlib import Path
from typing import IO, Any, ClassVar

from singer_sdk import Target
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.helpers.capabilities import (
    CapabilitiesEnum,
    PluginCapabilities,
    TargetCapabilities,
)
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.plugin_base import _ConfigInput

from target_appsflyer_audiences.client import AudiencesClient
from target_appsflyer_audiences.errors import AudienceSyncError
from target_appsflyer_audiences.identifiers import Normaliser
from target_appsflyer_audiences.members import IntakeCounts
from target_appsflyer_audiences.membership_store import (
    MembershipStore,
    check_store_location,
    open_store,
)
from target_appsflyer_audiences.pacer import Pacer
from target_appsflyer_audiences.settings import AudienceMapping, TargetSettings, parse_settings
from target_appsflyer_audiences.settings_schema import CONFIG_SCHEMA
from target_appsflyer_audiences.sink import AudienceSink
from target_appsflyer_audiences.staging import Staging
from target_appsflyer_audiences.summary import summary_line
from target_appsflyer_audiences.sync import AudienceRun, AudienceSync, DeviceCap, SendCounts


class TokenRedactor(logging.Filter):
    """Blanks the API token out of every log line, whatever logger wrote it."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._pattern = re.compile(re.escape(token)) if len(token) >= 8 else None

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message (arguments merged in) when it holds the token."""
        if self._pattern is not None:
            message = record.getMessage()
            if self._pattern.search(message):
                record.msg = self._pattern.sub("[redacted]", message)
                record.args = None
        return True


class TargetAppsFlyerAudiences(Target):
    """Singer target for the AppsFlyer Audiences Import API V2."""

    name = "target-appsflyer-audiences"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = AudienceSink
    # singer-sdk's msgspec reader: about twice as fast as the json one on a million records.
    message_reader_class = MsgSpecReader
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
        TargetCapabilities.VALIDATE_RECORDS,
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        token = self.config.get("api_token")
        if isinstance(token, str) and token:
            redactor = TokenRedactor(token)
            for handler in logging.getLogger().handlers:
                handler.addFilter(redactor)
            self.logger.addFilter(redactor)
        _ = self.settings  # every config check runs at start-up, before any input
        if self.settings.membership_store is not None:
            check_store_location(self.settings.membership_store)
        self._runs: dict[str, AudienceRun] = {}
        #: Streams whose records skip the SDK's per-record work (see ``_is_plain``).
        self._plain: dict[str, AudienceSink] = {}
        self._scratch = tempfile.TemporaryDirectory(prefix="target-appsflyer-audiences-")

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, Any]) -> None:
        """Add stream maps and flattening only.

        Load method, batch size and record metadata mean nothing for an audience.
        """
        super(Target, cls).append_builtin_config(config_jsonschema)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Check the audiences first: their errors name the stream and field."""
        if raise_errors:
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                parse_settings(self._config)  # raises AudienceConfigError
        return super()._validate_config(raise_errors=raise_errors)

    @cached_property
    def settings(self) -> TargetSettings:
        """The checked settings."""
        return parse_settings(self.config)

    @cached_property
    def normaliser(self) -> Normaliser:
        """Identifier hygiene, shared by every stream."""
        return Normaliser(self.settings.hashing)

    def run_for(self, mapping: AudienceMapping) -> AudienceRun:
        """The run of ``mapping``'s audience (one per stream, whatever its sinks)."""
        run = self._runs.get(mapping.stream)
        if run is None:
            path = Path(self._scratch.name) / f"stage-{len(self._runs)}.sqlite"
            run = AudienceRun(mapping, Staging(path), IntakeCounts(), SendCounts())
            self._runs[mapping.stream] = run
        return run

    def _process_schema_message(self, message_dict: dict[str, Any]) -> None:
        """Register the stream (the SDK's way), then decide its record path once."""
        super()._process_schema_message(message_dict)
        stream = message_dict["stream"]
        sink = self._sinks_active.get(stream)
        if isinstance(sink, AudienceSink) and self._is_plain(stream, sink):
            self._plain[stream] = sink
        else:
            self._plain.pop(stream, None)

    def _is_plain(self, stream: str, sink: AudienceSink) -> bool:
        """True when the SDK's per-record work would change nothing the sink reads.

        That work (a copy, the stream map, metadata columns, validation, date-time parsing)
        costs more than the sink itself: about 15 s of a million records. Without a stream
        map, flattening, validation or metadata, the sink only reads identifier fields,
        which none of it touches; any of those settings keeps the SDK's path.
        """
        maps = self.mapper.stream_maps.get(stream, [])
        if len(maps) != 1 or type(maps[0]) is not SameRecordTransform:
            return False
        plain_map = not maps[0].flattening_enabled and maps[0].stream_alias == stream
        return plain_map and not sink.validate_schema and not sink.include_sdc_metadata_properties

    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        """Hand the record straight to its sink when the stream is plain; else the SDK's way."""
        sink = self._plain.get(message_dict.get("stream", ""))
        record = message_dict.get("record")
        if sink is None or not isinstance(record, dict):
            super()._process_record_message(message_dict)
            return
        sink.process_record(record, {})
        sink.record_counter_metric.increment()

    def process_endofpipe(self) -> None:
        """The input ended: every stream is complete, so each audience is sent now."""
        super().process_endofpipe()
        self.finish_audiences()

    def finish_audiences(self) -> None:
        """Send every audience; raise ``AudienceSyncError`` at the end if any failed."""
        settings = self.settings
        for audience in settings.audiences:
            if audience.stream not in self._runs:
                self.logger.info(
                    "Stream '%s' was not in the input: audience %s left unchanged",
                    audience.stream,
                    audience.import_key,
                )
        if not self._runs:
            return
        store: MembershipStore | None = None
        if settings.membership_store is not None:
            store = open_store(settings.membership_store)
        client = AudiencesClient(
            settings.api_url,
            settings.api_token,
            Pacer(settings.requests_per_minute),
            max_retries=settings.max_retries,
            timeout=settings.request_timeout,
            logger=self.logger,
        )
        sync = AudienceSync(
            client,
            store,
            DeviceCap(settings.max_devices_per_request, self.logger),
            settings.max_removal_percent,
            self.logger,
        )
        failures: list[str] = []
        try:
            for run in self._runs.values():
                try:
                    sync.finish(run)
                except AudienceSyncError as error:
                    self.logger.error("Audience failed: %s", error)
                    failures.append(run.mapping.stream)
                    self.logger.info(summary_line(run, "failed"))
                else:
                    self.logger.info(summary_line(run, "ok"))
                finally:
                    run.staging.close()
        finally:
            client.close()
            if store is not None:
                store.close()
        if failures:
            names = ", ".join(f"'{name}'" for name in failures)
            msg = f"{len(failures)} of {len(self._runs)} audience(s) failed (streams {names})"
            raise AudienceSyncError(msg)

    def close_scratch(self) -> None:
        """Delete the staging files (also when the run stopped on an error)."""
        for run in self._runs.values():
            with contextlib.suppress(Exception):
                run.staging.close()
        self._scratch.cleanup()

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: IO[str] | None = None,
    ) -> None:
        """Run the target (the SDK's flow), ending with one clear line on failure."""
        super(Target, cls).invoke(about=about, about_format=about_format)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        target = cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)
        try:
            target.listen(file_input)
        except AudienceSyncError as error:
            target.logger.error("Sync stopped: %s", error)
            raise SystemExit(1) from None
        finally:
            target.close_scratch()
