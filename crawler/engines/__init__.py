"""Interchangeable fetch engines, chosen by name.

Engines are imported on first use, so ``import crawler`` does not pay for
aiohttp or requests until one is needed.
"""

from __future__ import annotations

import importlib

from crawler.engines._errors import connect_reason, require_http_url
from crawler.engines.base import Engine, EngineOptions

__all__ = [
    "ENGINES",
    "Engine",
    "EngineOptions",
    "connect_reason",
    "create_engine",
    "require_http_url",
]

ENGINES: dict[str, str] = {
    "aiohttp": "crawler.engines._aiohttp:AiohttpEngine",
    "threads": "crawler.engines._threads:ThreadsEngine",
    "futures": "crawler.engines._futures:FuturesEngine",
    "browser": "crawler.engines.browser:BrowserEngine",  # renders HTML in headless Chromium
}


def create_engine(name: str, options: EngineOptions | None = None) -> Engine:
    """Build the engine called ``name``; ``ValueError`` lists the known names."""
    try:
        target = ENGINES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(ENGINES))
        raise ValueError(f"unknown engine {name!r}: expected one of {known}") from None
    module_name, _, class_name = target.partition(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    engine: Engine = engine_class(options or EngineOptions())
    return engine
