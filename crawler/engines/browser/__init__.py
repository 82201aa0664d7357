"""The ``browser`` engine: pages rendered in headless Chromium (Playwright), every
request they make answered through the guarded HTTP engine."""

from crawler.engines.browser.engine import BrowserEngine
from crawler.engines.browser.options import (
    RENDER_MODES,
    RESOURCE_TYPES,
    WAIT_UNTIL,
    BrowserOptions,
)
from crawler.engines.browser.shell import looks_like_shell

__all__ = [
    "RENDER_MODES",
    "RESOURCE_TYPES",
    "WAIT_UNTIL",
    "BrowserEngine",
    "BrowserOptions",
    "looks_like_shell",
]
