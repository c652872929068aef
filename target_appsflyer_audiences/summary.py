"""The one summary line per audience: what came in, what was sent, what was refused.

``key=value`` pairs, so a log search or a Meltano log parser can read them:

    Audience summary: stream=users import_key=KEY platform=ios mode=mirror form=incremental
    records=1000 members=950 duplicates=12 skipped=30 invalid=12 (emails=2, idfv=10)
    zero=3 (idfa=3) added=20 removed=5 unchanged=925 requests=2 status=ok
"""

from __future__ import annotations

from collections import Counter

from target_appsflyer_audiences.sync import AudienceRun


def _per_field(counter: Counter[str]) -> str:
    total = sum(counter.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{k}={v}' for k, v in sorted(counter.items()))})"


def summary_line(run: AudienceRun, status: str) -> str:
    """The summary of one audience; ``status`` is ``ok`` or ``failed``."""
    mapping, intake, sent = run.mapping, run.intake, run.sent
    members, duplicates = run.staging.counts()
    parts = [
        f"stream={mapping.stream}",
        f"import_key={mapping.import_key}",
        f"platform={mapping.platform}",
        f"mode={mapping.mode}",
        f"form={sent.form or '-'}",
        f"records={intake.records}",
        f"members={members}",
        f"duplicates={duplicates}",
        f"skipped={intake.skipped}",
        f"invalid={_per_field(intake.invalid)}",
        f"zero={_per_field(intake.zero)}",
        f"added={sent.added}",
        f"removed={sent.removed}",
    ]
    if sent.unchanged is not None:
        parts.append(f"unchanged={sent.unchanged}")
    parts += [f"requests={sent.requests}", f"status={status}"]
    return "Audience summary: " + " ".join(parts)
