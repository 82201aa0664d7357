"""Reading settings files: TOML text into a document, and the paths a file names."""

from __future__ import annotations

import ssl
import tomllib
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError

__all__ = ["ca_file", "read_toml"]


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing, unreadable or malformed file is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config", str(path), "an existing TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", str(path), f"a readable UTF-8 file ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", str(path), f"valid TOML ({exc})") from None
    except RecursionError:  # tomllib recurses once per nested array or table
        raise ConfigError("config", str(path), "valid TOML (nested too deeply)") from None
    return data


def ca_file(key: str, path: Path) -> str:
    """A CA bundle a file names (relative paths: beside the file), loaded now: a
    missing or broken bundle is the config's error, not a failed fetch on every run."""
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        expected = f"a readable PEM file of CA certificates ({exc})"
        raise ConfigError(key, str(path), expected) from None
    return str(path)
