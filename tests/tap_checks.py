"""Checks that must not print what they look for (pytest echoes failed assertions)."""

from __future__ import annotations

import pytest


def assert_token_absent(token: str, *texts: str) -> None:
    """Fail, without showing either, when ``token`` appears in any of ``texts``."""
    for index, text in enumerate(texts):
        if token in text:
            pytest.fail(f"the API token appears in output #{index}", pytrace=False)


def assert_is_bearer(header: str | None, token: str) -> None:
    """Fail, without showing the token, unless ``header`` is ``Bearer <token>``."""
    if header != f"Bearer {token}":
        pytest.fail("the Authorization header is not 'Bearer <the token>'", pytrace=False)
