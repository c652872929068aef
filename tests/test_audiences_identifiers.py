"""Identifier hygiene, one rule at a time: the canonical spelling, or the reason for refusal."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_appsflyer_audiences.identifiers import HashingRules, Normaliser, Refusal
from target_appsflyer_audiences.members import IntakeCounts, MemberBuilder

N = Normaliser()
UUID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("field", ["idfa", "idfv", "gaid"])
@pytest.mark.parametrize(
    "raw",
    [UUID, UUID.upper(), f"  {UUID}  ", UUID.replace("-", ""), UUID.replace("-", "").upper()],
)
def test_uuid_ids_become_lowercase_hyphenated(field: str, raw: str) -> None:
    assert N.normalise(field, raw) == UUID


@pytest.mark.parametrize("field", ["idfa", "idfv", "gaid"])
@pytest.mark.parametrize("raw", ["00000000-0000-0000-0000-000000000000", "0" * 32])
def test_all_zero_uuid_is_no_id(field: str, raw: str) -> None:
    # The IDFA of a user who denied tracking (and GAID opted out) is all zeros.
    assert N.normalise(field, raw) is Refusal.ZERO


@pytest.mark.parametrize(
    "raw", ["not-a-uuid", UUID[:-1], UUID + "0", "g" * 32, "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4"]
)
def test_malformed_uuid_is_invalid(raw: str) -> None:
    assert N.normalise("idfa", raw) is Refusal.INVALID


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing_values_are_missing_not_invalid(raw: object) -> None:
    assert N.normalise("idfv", raw) is Refusal.MISSING
    assert N.normalise("cuid", raw) is Refusal.MISSING


@pytest.mark.parametrize("raw", [1.5, True, ["a"], {"a": 1}])
def test_non_text_values_are_invalid(raw: object) -> None:
    assert N.normalise("cuid", raw) is Refusal.INVALID


def test_text_ids_are_trimmed_and_keep_their_case() -> None:
    assert N.normalise("cuid", "  User-42 ") == "User-42"
    assert N.normalise("amplitude_id", 123456789) == "123456789"  # integer columns
    assert N.normalise("braze_id", "x" * 257) is Refusal.INVALID
    assert N.normalise("cuid", "a\tb") is Refusal.INVALID


def test_oaid_and_imei() -> None:
    assert N.normalise("oaid", "ABCDEF0123456789") == "abcdef0123456789"
    assert N.normalise("oaid", UUID.upper()) == UUID
    assert N.normalise("oaid", "0" * 16) is Refusal.ZERO
    assert N.normalise("oaid", "xyz") is Refusal.INVALID
    assert N.normalise("imei", "35-209900-176148-1") == "352099001761481"
    assert N.normalise("imei", "12345") is Refusal.INVALID
    assert N.normalise("imei", "0" * 15) is Refusal.ZERO


def test_emails_are_trimmed_lowercased_and_hashed() -> None:
    assert N.normalise("emails", "  Jane.Doe@Example.COM ") == sha("jane.doe@example.com")
    # Already a SHA-256 digest: passed through, never hashed twice.
    assert N.normalise("emails", sha("a@b.co").upper()) == sha("a@b.co")
    for bad in ("jane", "jane@", "@example.com", "a@b", "a b@c.de", "a@@b.de"):
        assert N.normalise("emails", bad) is Refusal.INVALID, bad


def test_emails_unhashed_when_hash_emails_is_off() -> None:
    plain = Normaliser(HashingRules(hash_emails=False))
    assert plain.normalise("emails", " Jane@Example.com") == "jane@example.com"
    assert plain.normalise("emails", sha("x@y.z")) is Refusal.INVALID


def test_phones_to_e164() -> None:
    assert N.normalise("phone_e164", "+1 (415) 555-2671") == "+14155552671"
    assert N.normalise("phone_e164", "0044 20 7946 0958") == "+442079460958"
    assert N.normalise("phone_e164", "415 555 2671") is Refusal.INVALID  # no calling code
    assert N.normalise("phone_e164", "+0123456789") is Refusal.INVALID
    assert N.normalise("phone_e164", "+1 415 CALL NOW") is Refusal.INVALID
    uk = Normaliser(HashingRules(phone_country_code="44"))
    assert uk.normalise("phone_e164", "020 7946 0958") == "+442079460958"


def test_phone_is_hashed_e164_unless_hash_phones_is_off() -> None:
    assert N.normalise("phone", "+1 415-555-2671") == sha("+14155552671")
    plain = Normaliser(HashingRules(hash_phones=False))
    assert plain.normalise("phone", "+1 415-555-2671") == "+14155552671"


@given(st.uuids())
def test_every_spelling_of_a_uuid_is_one_id(value: object) -> None:
    text = str(value)
    spellings = {text, text.upper(), text.replace("-", ""), f" {text.upper()} "}
    results = {N.normalise("idfa", s) for s in spellings}
    assert len(results) == 1
    (only,) = results
    assert only is Refusal.ZERO if text.strip("0-") == "" else only == text


@given(st.text(max_size=60))
def test_normalise_never_raises(text: str) -> None:
    for field in ("idfa", "oaid", "imei", "cuid", "emails", "phone", "phone_e164"):
        result = N.normalise(field, text)
        assert isinstance(result, (str, Refusal))


def test_member_key_is_the_first_device_id_and_contacts_ride_along() -> None:
    counts = IntakeCounts()
    builder = MemberBuilder(
        "id1", "ios", (("idfv", "v"), ("cuid", "c"), ("emails", "e")), N, counts
    )
    member = builder.build({"v": UUID.upper(), "c": "u1", "e": "A@B.co"})
    assert member is not None
    assert member.key == f"idfv:{UUID}"
    assert member.device == (
        f'{{"app_id":"id1","idfv":"{UUID}","cuid":"u1","emails":"{sha("a@b.co")}"}}'
    )
    assert member.device_ids == (f"idfv:{UUID}", "cuid:u1")
    # No IDFV: the next device identifier is the key.
    fallback = builder.build({"v": None, "c": "u2", "e": None})
    assert fallback is not None
    assert fallback.key == "cuid:u2"
    # Only a contact identifier: no device id, skipped (never sent), and counted.
    assert builder.build({"v": "0" * 32, "c": "", "e": "x@y.zz"}) is None
    assert builder.build({"v": "junk", "c": None, "e": "junk"}) is None
    assert counts.records == 4
    assert counts.skipped == 2
    assert counts.zero == {"idfv": 1}
    assert counts.invalid == {"idfv": 1, "emails": 1}


def test_fingerprint_follows_every_field_sent() -> None:
    builder = MemberBuilder("id1", "ios", (("idfv", "v"), ("emails", "e")), N, IntakeCounts())
    one = builder.build({"v": UUID, "e": "a@b.co"})
    same = builder.build({"v": UUID.upper(), "e": " A@B.CO"})
    other = builder.build({"v": UUID, "e": "c@d.co"})
    assert one is not None
    assert same is not None
    assert other is not None
    assert one.fingerprint == same.fingerprint
    assert one.fingerprint != other.fingerprint
    assert one.key == other.key
