"""Find the ``Site`` a config names, where its user put it.

A user writes ``myshop.py`` next to ``myshop.toml`` and names it ``site =
"myshop"`` or ``"myshop:MyShop"``; nobody should need ``PYTHONPATH`` for that.
So a module is looked for beside the config file first, then in the working
directory, then among the bundled sites (``sites/``) or installed packages. The
folder it is found in goes on ``sys.path``, where parse processes (started
with ``spawn``, which copies ``sys.path``) find it too.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crawler.parse.site import Site

__all__ = ["bundled_sites", "load_site"]

_SPEC_HINT = "a name like 'generic' or 'module:Class'"


def load_site(spec: str, *, near: Path | None = None) -> Site:
    """Create the site a config names; ``ValueError`` saying what was tried otherwise.

    - a bare name, ``"myshop"``: the module ``myshop.py`` beside the config
      (``near``), else in the working directory, else the bundled ``sites.myshop``;
      its ``SITE`` attribute is the ``Site`` subclass to use (by convention ``SITE
      = MyShop`` at the end of the module; a module without ``SITE`` that defines
      exactly one ``Site`` subclass works too);
    - ``"module:Class"`` or ``"package.module:Class"``: that class, from the
      module found the same way, else from installed packages.

    The class is instantiated without arguments.
    """
    spec = spec.strip() if isinstance(spec, str) else spec
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"site must be {_SPEC_HINT}, got {spec!r}")
    module_name, colon, attr = spec.partition(":")
    if not _is_dotted_name(module_name) or (colon and not attr.isidentifier()):
        raise ValueError(f"invalid site {spec!r}: expected {_SPEC_HINT}")
    if colon or "." in module_name:
        module = _find(module_name, module_name, _folders(near), spec)
        if not colon:
            return _instantiate(_site_class_of(module, spec), f"{module_name}.SITE")
        try:
            cls = getattr(module, attr)
        except AttributeError:
            raise ValueError(f"site {spec!r}: module {module_name} has no {attr}") from None
        return _instantiate(cls, spec)
    module = _find(module_name, f"sites.{module_name}", _folders(near), spec)
    return _instantiate(_site_class_of(module, spec), f"{module.__name__}.SITE")


def bundled_sites() -> list[str]:
    """The names of the modules of ``sites/``, as a config names them."""
    try:
        package = importlib.import_module("sites")
    except ImportError:
        return []
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__))


def _folders(near: Path | None) -> list[tuple[str, Path]]:
    cwd = Path(os.getcwd()).resolve()
    folders = [("beside the config", near.resolve())] if near is not None else []
    if not folders or folders[0][1] != cwd:
        folders.append(("in the working directory", cwd))
    return folders


def _find(name: str, fallback: str, folders: Sequence[tuple[str, Path]], spec: str) -> Any:
    """Import ``name`` from the first folder that has its file, else ``fallback`` as
    installed; a module found nowhere is an error listing every place looked at."""
    relative = Path(*name.split("."))
    tried = []
    for where, folder in folders:
        for candidate in (relative.with_suffix(".py"), relative / "__init__.py"):
            if (folder / candidate).is_file():
                _importable(folder)
                try:
                    return _import(name, spec)
                except ModuleNotFoundError as exc:  # shadowed by a package of that name
                    raise ValueError(f"site {spec!r}: importing {folder / candidate} "
                                     f"failed: {exc}") from exc  # fmt: skip
        tried.append(f"{relative}.py {where} ({folder})")
    try:
        return _import(fallback, spec)
    except ModuleNotFoundError:
        where = "the bundled sites" if fallback.startswith("sites.") else "installed packages"
        tried.append(f"{fallback} in {where}")
    known = ", ".join(bundled_sites()) or "none"
    raise ValueError(f"unknown site {spec!r}: tried {'; '.join(tried)}. Bundled sites: {known}")


def _importable(folder: Path) -> None:
    entry = str(folder)
    if entry not in sys.path:
        sys.path.insert(0, entry)
        importlib.invalidate_caches()


def _import(module_name: str, spec: str) -> Any:
    """The module; ``ModuleNotFoundError`` only when ``module_name`` itself is missing."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise
        raise ValueError(f"site {spec!r}: importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"site {spec!r}: importing {module_name} failed: {exc!r}") from exc


def _site_class_of(module: Any, spec: str) -> Any:
    if hasattr(module, "SITE"):
        return module.SITE
    defined = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Site)
        and value.__module__ == module.__name__
    ]
    if len(defined) == 1:
        return defined[0]
    raise ValueError(
        f"site {spec!r}: module {module.__name__} has no SITE attribute naming its Site "
        f"class, and defines {len(defined)} Site subclasses"
    )


def _instantiate(cls: Any, where: str) -> Site:
    if not (isinstance(cls, type) and issubclass(cls, Site)):
        raise ValueError(f"{where} is {cls!r}, expected a subclass of crawler.parse.Site")
    try:
        return cls()
    except Exception as exc:
        raise ValueError(f"{where}: could not create {cls.__name__}(): {exc!r}") from exc


def _is_dotted_name(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))
