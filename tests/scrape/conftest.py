"""Set-up for the scrape tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

#: Test modules run on both asyncio's event loop and uvloop's (the server's loop).
BOTH_LOOPS = ("test_http_client.py",)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.path.name not in BOTH_LOOPS:
        return {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
