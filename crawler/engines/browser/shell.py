"""Does a page look like a shell that scripts fill in? ``render = "auto"`` renders only those.

A server-rendered page carries its text; a single-page app's document carries a
mount point and the scripts that fill it. The test is cheap (one lxml parse) and
errs toward rendering: a short page that loads a script is rendered too.
"""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

from crawler.engines.browser.options import BrowserOptions

__all__ = ["looks_like_shell"]

_SPACE = re.compile(r"\s+")
_INVISIBLE = ("script", "style", "noscript", "template", "head")


def looks_like_shell(body: bytes, options: BrowserOptions) -> bool:
    """True when ``body`` (an HTML document) has less visible text than
    ``options.shell_text`` and an empty mount point or scripts that build it."""
    try:
        root = lxml.html.document_fromstring(body)
    except (etree.ParserError, ValueError):  # empty, or nothing an HTML parser keeps
        return False
    external = inline = 0
    for script in root.iter("script"):
        if script.get("src"):
            external += 1
        else:
            inline += len(script.text or "")
    empty_mount = False
    for mount in options.mounts:
        element = root.get_element_by_id(mount, None)
        if element is not None and len(element) == 0 and not (element.text or "").strip():
            empty_mount = True
            break
    etree.strip_elements(root, *_INVISIBLE, with_tail=False)
    text = len(_SPACE.sub("", root.text_content()))
    if text >= options.shell_text:
        return False
    return empty_mount or external > 0 or inline >= options.shell_scripts
