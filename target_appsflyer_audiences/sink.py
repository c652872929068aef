"""The sink: each record of a stream becomes a staged member of the stream's audience.

Records are only normalised and staged here; the audience is sent once the input ends
(``TargetAppsFlyerAudiences.process_endofpipe``), because mirror needs the whole membership
before it may remove anyone. The staging belongs to the target, not the sink: singer-sdk
replaces a sink when a stream's schema changes mid-stream, and the members staged so far
must stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import RecordSink

from target_appsflyer_audiences.members import MemberBuilder

if TYPE_CHECKING:
    from target_appsflyer_audiences.target import TargetAppsFlyerAudiences


class AudienceSink(RecordSink):
    """Stages the members of one stream's audience."""

    def __init__(self, target: TargetAppsFlyerAudiences, *args: Any, **kwargs: Any) -> None:
        self.audiences_target = target
        super().__init__(target, *args, **kwargs)

    def setup(self) -> None:
        """Check the mapping against this schema (before any call) and join the run."""
        target = self.audiences_target
        mapping = target.settings.audience_for(self.stream_name)
        properties = list(self.schema.get("properties", {}))
        identifiers = mapping.resolve_identifiers(properties)
        self.run = target.run_for(mapping)
        self.builder = MemberBuilder(
            mapping.app_id, mapping.platform, identifiers, target.normaliser, self.run.intake
        )
        fields = ", ".join(f"{api}<-{field}" for api, field in identifiers)
        self.logger.info(
            "Stream '%s' -> audience %s (%s, %s): identifiers %s",
            self.stream_name,
            mapping.import_key,
            mapping.platform,
            mapping.mode,
            fields,
        )

    @property
    def validate_schema(self) -> bool:
        """Off unless ``validate_records`` is set: each identifier is checked anyway."""
        return bool(self.config.get("validate_records", False))

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Normalise the record's identifiers and stage the member (or count the skip)."""
        member = self.builder.build(record)
        if member is not None:
            self.run.staging.add(member)
