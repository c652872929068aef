"""The sandbox's Audiences Import API V2 answers as the vendor spec documents (over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from target_appsflyer_audiences import contract
from tests.audiences_support import ANDROID_APP, IOS_APP, device, idfv

PATH = "/api/audiences-import-api/v2/"


def post(
    server: SandboxServer, action: str, body: Any, token: str | None = None
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or server.token}"}
    return requests.post(server.base_url + PATH + action, json=body, headers=headers, timeout=10)


def body(*devices: dict[str, str], key: str = "K", platform: str = "ios") -> dict[str, Any]:
    return {"import_key": key, "platform": platform, "devices": list(devices)}


def ios(number: int, **extra: str) -> dict[str, str]:
    return {"app_id": IOS_APP, "idfv": idfv(number), **extra}


def test_add_remove_overwrite_change_the_audience(sandbox: SandboxServer) -> None:
    api = sandbox.audiences
    answer = post(sandbox, "add", body(ios(1), ios(2)))
    assert answer.status_code == 200
    assert answer.json() == {"message": contract.OK_MESSAGE}
    assert api.members("K") == {device(idfv=idfv(1)), device(idfv=idfv(2))}
    assert api.platform("K") == "ios"
    assert post(sandbox, "remove", body(ios(1), ios(99))).status_code == 200  # 99: no-op
    assert api.members("K") == {device(idfv=idfv(2))}
    assert post(sandbox, "overwrite", body(ios(3))).status_code == 200
    assert api.members("K") == {device(idfv=idfv(3))}
    log = api.request_log
    assert [(r.action, r.devices, r.status) for r in log] == [
        ("add", 2, 200),
        ("remove", 2, 200),
        ("overwrite", 1, 200),
    ]


def test_add_upserts_a_device_sharing_an_identifier(sandbox: SandboxServer) -> None:
    post(sandbox, "add", body(ios(1, cuid="u1")))
    post(sandbox, "add", body(ios(1, cuid="u1", emails="e" * 64)))
    assert sandbox.audiences.members("K") == {device(idfv=idfv(1), cuid="u1", emails="e" * 64)}
    # Removing by any one of its device identifiers removes the device.
    post(sandbox, "remove", body({"app_id": IOS_APP, "cuid": "u1"}))
    assert sandbox.audiences.members("K") == set()


@pytest.mark.parametrize(
    ("action", "devices", "message"),
    [
        ("add", [], contract.EMPTY_DEVICES_MESSAGE),
        ("overwrite", [], contract.EMPTY_DEVICES_MESSAGE),
        ("add", [{"idfv": idfv(1)}], contract.NO_APP_ID_MESSAGE.format(count=1)),
        (
            "add",
            [{"app_id": IOS_APP, "emails": "e" * 64}],
            contract.NO_IDENTIFIER_MESSAGE.format(count=1),
        ),
        ("add", [{"app_id": IOS_APP, "gaid": idfv(1)}], contract.UNKNOWN_ID_MESSAGE),
        ("add", [{"app_id": IOS_APP, "idfv": "not-a-uuid"}], contract.UNKNOWN_ID_MESSAGE),
        (
            "remove",
            [ios(1, cuid="u1"), ios(2, cuid="u2")],
            contract.REMOVE_ONE_ID_MESSAGE.format(count=2),
        ),
    ],
)
def test_documented_400s_change_nothing(
    sandbox: SandboxServer, action: str, devices: list[dict[str, str]], message: str
) -> None:
    post(sandbox, "add", body(ios(7)))
    answer = post(sandbox, action, body(*devices))
    assert answer.status_code == 400
    assert answer.json() == {"message": message}
    assert sandbox.audiences.members("K") == {device(idfv=idfv(7))}


def test_device_cap_is_configurable_and_names_both_numbers(sandbox: SandboxServer) -> None:
    sandbox.audiences.max_devices = 3
    assert post(sandbox, "add", body(*(ios(n) for n in range(3)))).status_code == 200
    answer = post(sandbox, "add", body(*(ios(n) for n in range(4))))
    assert answer.status_code == 400
    assert answer.json()["message"] == contract.TOO_MANY_DEVICES_MESSAGE.format(cap=3, count=4)


def test_platform_is_fixed_by_the_first_call(sandbox: SandboxServer) -> None:
    post(sandbox, "add", body(ios(1)))
    answer = post(
        sandbox, "add", body({"app_id": ANDROID_APP, "gaid": idfv(2)}, platform="android")
    )
    assert answer.status_code == 400
    assert answer.json()["message"] == contract.PLATFORM_MISMATCH_MESSAGE.format(platform="iOS")


def test_wrong_or_missing_token_is_403(sandbox: SandboxServer) -> None:
    answer = post(sandbox, "add", body(ios(1)), token="wrong")
    assert answer.status_code == 403
    assert answer.json() == {"message": contract.FORBIDDEN_MESSAGE}
    bare = requests.post(sandbox.base_url + PATH + "add", json=body(ios(1)), timeout=10)
    assert bare.status_code == 403
    assert sandbox.audiences.size("K") == 0


def test_429_on_demand_and_by_rate(sandbox: SandboxServer) -> None:
    sandbox.audiences.script("429")
    answer = post(sandbox, "add", body(ios(1)))
    assert answer.status_code == 429
    assert answer.json() == {"message": contract.TOO_MANY_REQUESTS_MESSAGE}
    assert sandbox.audiences.size("K") == 0
    sandbox.audiences.requests_per_minute = 2
    statuses = [post(sandbox, "add", body(ios(n))).status_code for n in range(3)]
    assert statuses == [200, 200, 429]


def test_applied_reset_applies_then_drops_the_connection(sandbox: SandboxServer) -> None:
    sandbox.audiences.script("applied-reset", "reset")
    with pytest.raises(requests.ConnectionError):
        post(sandbox, "add", body(ios(1)))
    with pytest.raises(requests.ConnectionError):
        post(sandbox, "add", body(ios(2)))
    assert sandbox.audiences.members("K") == {device(idfv=idfv(1))}


def test_unknown_action_and_method(sandbox: SandboxServer) -> None:
    assert post(sandbox, "merge", body(ios(1))).status_code == 404
    answer = requests.get(sandbox.base_url + PATH + "add", timeout=10)
    assert answer.status_code == 405


def test_unknown_import_key_without_auto_create(sandbox: SandboxServer) -> None:
    sandbox.audiences.auto_create = False
    assert post(sandbox, "add", body(ios(1), key="NEW")).status_code == 400
    sandbox.audiences.create("NEW", "ios")
    assert post(sandbox, "add", body(ios(1), key="NEW")).status_code == 200


def test_cohort_api_still_answers(sandbox: SandboxServer) -> None:
    # The audiences branch must not catch the Cohort API's own path.
    answer = requests.post(
        f"{sandbox.base_url}/api/cohorts/v1/data/app/{IOS_APP}",
        json={},
        headers={"Authorization": f"Bearer {sandbox.token}"},
        timeout=10,
    )
    assert answer.status_code == 422
