"""What a test does when the machine lacks a server it needs: fail, by default.

`make test` checks first (scripts/test-needs) and names what is missing, so a
suite that quietly skips its PostgreSQL, Redis or browser tests cannot pass for
a green one. Outside CI a developer may choose to skip them: TAKT_TEST_ALLOW_SKIP=1.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skipping_allowed() -> bool:
    return not in_ci() and bool(os.environ.get("TAKT_TEST_ALLOW_SKIP"))


def unavailable(reason: str) -> NoReturn:
    if not skipping_allowed():
        pytest.fail(
            f"{reason} (needed: scripts/test-needs --install; to skip on purpose outside CI,"
            " TAKT_TEST_ALLOW_SKIP=1)",
            pytrace=False,
        )
    pytest.skip(reason)
