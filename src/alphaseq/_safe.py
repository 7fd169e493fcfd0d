"""Making user-given text safe where it leaves the process: as a path, in a spreadsheet."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads only when a table is written, not for --help
    import pandas as pd

_UNSAFE_PATH = re.compile(r"[^A-Za-z0-9._-]+")

#: A cell starting with one of these is a formula to Excel, LibreOffice and Sheets
#: (OWASP, "CSV Injection"); tab and carriage return start one too.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def path_safe_name(name: str, default: str = "experiment") -> str:
    """``name`` as one path component: letters, digits, ``.``, ``_`` and ``-`` only
    (every other run of characters becomes ``-``), no leading dot, at most 100
    characters; ``default`` when nothing is left. ``../../x`` becomes ``x``."""
    slug = _UNSAFE_PATH.sub("-", str(name)).strip("-.")
    slug = re.sub(r"\.{2,}", ".", slug)[:100].strip("-.")
    return slug or default


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot run as spreadsheet formulas: a text
    cell starting with ``= + - @``, tab or carriage return gets a leading ``'``
    (numbers are left alone: a negative number is not text)."""
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            out[column] = values.map(
                lambda v: f"'{v}" if isinstance(v, str) and v.startswith(_FORMULA_START) else v,
                na_action="ignore",
            )
    return out
