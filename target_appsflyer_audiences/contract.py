"""The AppsFlyer Audiences Import API V2 contract, as far as it is known, in one place.

The target and the sandbox (``tap_appsflyer_cohort/sandbox/audiences.py``) both follow these
facts. Sources: AppsFlyer's OpenAPI spec of the import API (``audience_import_api.yaml``) and
the contract notes in ``shared/reference`` (section 6). Each constant says how sure it is:
[V] vendor spec, [I] our inference (nothing states it).
"""

from __future__ import annotations

from typing import Final

DEFAULT_API_URL: Final = "https://hq1.appsflyer.com"
#: [V] ``POST {api_url}/api/audiences-import-api/v2/{action}``, Bearer V2 token.
API_PREFIX: Final = "/api/audiences-import-api/v2/"
#: [V] add, remove and overwrite (overwrite since 2023-11).
ACTIONS: Final = ("add", "remove", "overwrite")
PLATFORMS: Final = ("ios", "android")

#: [V] Every identifier field a device may carry (besides ``app_id``).
IDENTIFIER_FIELDS: Final = (
    "idfa",
    "idfv",
    "gaid",
    "oaid",
    "imei",
    "cuid",
    "braze_id",
    "amplitude_id",
    "emails",
    "phone",
    "phone_e164",
)

#: [V] A device must carry ``app_id`` plus one of these *device identifiers* for its
#: platform: Android gaid / oaid / imei / cuid / braze_id / amplitude_id, iOS idfv / cuid /
#: braze_id / amplitude_id. [I] ``idfa`` counts on iOS too: the spec's list omits it, but
#: Amplitude's AppsFlyer destination maps "iOS Advertiser ID" alone for iOS audiences, so
#: the API must accept an IDFA-only iOS device.
DEVICE_IDENTIFIERS: Final[dict[str, tuple[str, ...]]] = {
    "ios": ("idfv", "idfa", "cuid", "braze_id", "amplitude_id"),
    "android": ("gaid", "oaid", "imei", "cuid", "braze_id", "amplitude_id"),
}
#: [I] Contact identifiers ride along with a device identifier (they are in the spec's
#: field list but in neither platform's "one of" list): a device with only these is a 400
#: "does not contain a valid unique identifier". Accepted on both platforms.
CONTACT_IDENTIFIERS: Final = ("emails", "phone", "phone_e164")


def accepted_identifiers(platform: str) -> tuple[str, ...]:
    """Identifier fields a device of ``platform`` may carry (gaid is not an iOS field)."""
    return DEVICE_IDENTIFIERS[platform] + CONTACT_IDENTIFIERS


#: [I] The per-request device cap is not published ("Cannot process more than Y devices
#: per request"). 10,000 keeps a request near 1 MB; the target halves its batches for the
#: rest of the run when the API names a lower cap.
DEFAULT_MAX_DEVICES_PER_REQUEST: Final = 10_000
#: [I] No published rate limit for this API: AppsFlyer's other APIs allow 60 calls a minute
#: per account, so that is the default pace.
DEFAULT_REQUESTS_PER_MINUTE: Final = 60

#: [V] The 200 answer and the documented 400/403/429 messages (the sandbox sends these).
OK_MESSAGE: Final = "The request was successful"
EMPTY_DEVICES_MESSAGE: Final = "Device list cannot be empty"
TOO_MANY_DEVICES_MESSAGE: Final = (
    "Cannot process more than {cap} devices per request ({count} devices counted in this request)"
)
NO_APP_ID_MESSAGE: Final = (
    "{count} or more of your rows do not contain an app id. You must attach an app id to each row."
)
NO_IDENTIFIER_MESSAGE: Final = (
    "{count} or more of your rows does not contain a valid unique identifier"
)
UNKNOWN_ID_MESSAGE: Final = "We couldn\u2019t understand one or more of your device IDs"
REMOVE_ONE_ID_MESSAGE: Final = (
    "{count} or more of devices to remove contain more than one identifier per device"
)
PLATFORM_MISMATCH_MESSAGE: Final = (
    "Invalid audience platform, this audience is already configured for {platform}. To use a "
    "different platform, please create a new audience in the UI"
)
FORBIDDEN_MESSAGE: Final = "Forbidden"
TOO_MANY_REQUESTS_MESSAGE: Final = "Too many requests"

# Semantics nothing documents, decided as the API most likely behaves:
#: [I] ``remove`` of a device that is not in the audience is a no-op answered 200.
#: [I] ``add`` of a device already in the audience (sharing a device identifier) replaces it.
#: [I] A request answered 400 changed nothing (the whole request is refused).
#: [I] ``overwrite`` with an empty list is the documented 400 "Device list cannot be empty":
#:     an audience cannot be emptied with it, only by removing its members one by one.
