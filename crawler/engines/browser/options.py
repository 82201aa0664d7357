"""What the headless browser does: how many pages at once, when a page counts as
rendered, what it never loads, and when a page looks like a script-built shell."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RENDER_MODES", "RESOURCE_TYPES", "WAIT_UNTIL", "BrowserOptions"]

RENDER_MODES = ("never", "always", "auto")
"""``never``: HTTP only; ``always``: every HTML page; ``auto``: pages that look like a shell."""

WAIT_UNTIL = ("load", "domcontentloaded", "networkidle")
"""When a page counts as rendered: its ``load`` event, its ``DOMContentLoaded``, or no
request of the page in flight for half a second (what content fetched by script needs)."""

RESOURCE_TYPES = (
    "document", "stylesheet", "image", "media", "font", "script", "texttrack", "xhr",
    "fetch", "eventsource", "manifest", "other",
)  # fmt: skip
"""The resource types the browser names, any of which ``block`` may list."""


@dataclass(frozen=True, slots=True)
class BrowserOptions:
    """The ``[browser]`` table. Values are checked where a policy is built
    (``FetchPolicy(browser=...)``, a config file), naming the key."""

    executable: str = ""  # "": chromium (or chromium-browser) on PATH
    pages: int = 4  # pages rendering at once; each costs a renderer's memory
    wait_until: str = "networkidle"
    wait_for: str = ""  # a CSS selector the page must contain before it counts as rendered
    block: tuple[str, ...] = ("image", "font", "media")  # resource types never loaded
    restart_every: int = 500  # pages rendered before the browser is started afresh
    # render = "auto": a page is a shell when its visible text is shorter than
    # shell_text characters and either a mount point (an element with one of the
    # `mounts` ids) is empty, it loads a script (<script src>), or its inline
    # scripts hold at least shell_scripts characters.
    shell_text: int = 200
    shell_scripts: int = 5000
    mounts: tuple[str, ...] = ("root", "app", "__next", "__nuxt", "svelte")
