"""The target's config JSON schema: types and descriptions (``--about``, Meltano, README).

Semantics (which identifiers a platform takes, one stream per audience ...) are checked in
``settings``, which names the stream and field at fault; this schema only types them.
"""

from __future__ import annotations

from singer_sdk import typing as th

from target_appsflyer_audiences.contract import (
    DEFAULT_API_URL,
    DEFAULT_MAX_DEVICES_PER_REQUEST,
    DEFAULT_REQUESTS_PER_MINUTE,
    IDENTIFIER_FIELDS,
    PLATFORMS,
)

MODES = ("mirror", "add", "remove")

AUDIENCE_SCHEMA = th.ObjectType(
    th.Property(
        "stream",
        th.StringType,
        required=True,
        description="Incoming stream (after stream maps) whose records are this audience's "
        "members, e.g. `public-new_installs_no_purchase` from tap-postgres.",
    ),
    th.Property(
        "import_key",
        th.StringType,
        required=True,
        description="The audience's import key (AppsFlyer Audiences dashboard, or the "
        "audience management API).",
    ),
    th.Property(
        "platform",
        th.StringType,
        required=True,
        allowed_values=list(PLATFORMS),
        description="The audience's platform: ios or android.",
    ),
    th.Property(
        "app_id",
        th.StringType,
        required=True,
        description="App id exactly as in the dashboard, sent with every device.",
    ),
    th.Property(
        "identifiers",
        th.ObjectType(additional_properties=th.StringType),
        description="API identifier -> record field, e.g. {idfv: device_idfv, cuid: user_id}; "
        f"identifiers: {', '.join(IDENTIFIER_FIELDS)}. The first device identifier present is "
        "the member's key. Default: the record fields named like an identifier (also `email`, "
        "`customer_user_id`).",
    ),
    th.Property(
        "mode",
        th.StringType,
        allowed_values=list(MODES),
        description="This audience's sync mode (default: the `mode` setting).",
    ),
)

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "api_token",
        th.StringType,
        required=True,
        secret=True,
        description="AppsFlyer V2 API token (JWT) of an account with Audiences.",
    ),
    th.Property(
        "audiences",
        th.ArrayType(AUDIENCE_SCHEMA),
        required=True,
        description="One audience per stream: stream, import_key, platform, app_id, "
        "identifiers, mode.",
    ),
    th.Property(
        "mode",
        th.StringType,
        default="mirror",
        allowed_values=list(MODES),
        description="mirror: after the run the audience holds exactly the stream's records; "
        "add: append them; remove: take them out.",
    ),
    th.Property(
        "membership_store",
        th.StringType,
        description="Where mirror remembers what it sent, to send only the difference: a "
        "SQLite file path, or a postgresql:// URL (needs the `postgres` extra). Without it, "
        "mirror overwrites the whole audience each run.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        description="API root. https only, except loopback (the sandbox).",
    ),
    th.Property(
        "max_devices_per_request",
        th.IntegerType,
        default=DEFAULT_MAX_DEVICES_PER_REQUEST,
        description="Devices per call (the API's cap is not published; halved for the run "
        "when the API names a lower one).",
    ),
    th.Property(
        "requests_per_minute",
        th.IntegerType,
        default=DEFAULT_REQUESTS_PER_MINUTE,
        description="Calls per minute for the whole run (evenly spaced).",
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=8,
        description="Retries per call on 429, 5xx, timeouts and dropped connections.",
    ),
    th.Property(
        "request_timeout",
        th.IntegerType,
        default=120,
        description="Seconds to wait for an answer.",
    ),
    th.Property(
        "max_removal_percent",
        th.IntegerType,
        default=100,
        description="Mirror refuses to remove more than this share of the audience in one run "
        "(a failed tap looks like an emptied table); 100: no limit.",
    ),
    th.Property(
        "hash_emails",
        th.BooleanType,
        default=True,
        description="Send e-mails as SHA-256 of the trimmed, lower-cased address (false: "
        "the normalised address).",
    ),
    th.Property(
        "hash_phones",
        th.BooleanType,
        default=True,
        description="Send `phone` as SHA-256 of its E.164 form (`phone_e164` is always "
        "the plain E.164 number).",
    ),
    th.Property(
        "phone_country_code",
        th.StringType,
        description="Calling code (digits, e.g. 1 or 44) for phone numbers written without "
        "one; without it such numbers are refused.",
    ),
    th.Property(
        "validate_records",
        th.BooleanType,
        default=False,
        description="Validate records against the stream's JSON schema first (off: each "
        "identifier is checked, and bad ones counted, anyway).",
    ),
).to_dict()
