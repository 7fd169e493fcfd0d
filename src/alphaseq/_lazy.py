"""Lazy exports for package ``__init__`` modules (PEP 562).

A package lists its public names and the module defining each; a name's module is
imported on first access. So ``import alphaseq`` or reading a config does not pull in
torch, skfolio or cvxpy before something needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` functions that resolve ``exports`` on use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str to str
        Public name -> absolute name of the module that defines it. A name mapped to
        the subpackage of that very name (``"backtest": "alphaseq.backtest"``) exports
        the subpackage itself.

    Returns
    -------
    (__getattr__, __dir__)
        Assign both at the package's top level.
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = importlib.import_module(module)
        # A subpackage exported under its own name is the value (its attribute of that
        # name, if any, belongs to the subpackage's namespace, not to the package's).
        value = imported if module == f"{package}.{name}" else getattr(imported, name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
