"""Fixtures for the page tests: one real `survey-ingest serve` and one headless Debian chromium
per session (install both with infra/pages/install.sh). Without chromium the tests skip on a
workstation and fail under CI=true."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.embedded_server import EmbeddedServer
from tests.pages.pages_kit import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    DISPLAY,
    DISPLAY_CODES,
    HOSTILE,
    SURVEY,
    chromium_path,
    hostile_campaign,
    survey_campaign,
    unavailable,
)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path_factory.mktemp("pages") / "data").start()
    try:
        for definition in (survey_campaign(SURVEY), survey_campaign(DISPLAY, DISPLAY_CODES),
                           hostile_campaign(HOSTILE)):
            r = srv.define(definition)
            assert r.status_code == 200, r.text
        yield srv
    finally:
        srv.stop()


# Module scope, not session: playwright's sync API keeps an event loop running in this thread
# while it is open, and later test modules that call asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


