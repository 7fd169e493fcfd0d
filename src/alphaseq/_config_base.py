"""The base of every validated settings section: unknown keys are errors, and a
``true``/``false`` is never read as a number."""

from __future__ import annotations

import datetime as _dt
import re
import reprlib
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _numeric(annotation: Any) -> bool:
    """Whether ``annotation`` admits int or float but not bool (``int | None``, ...)."""
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return bool not in args and any(a in (int, float) for a in args)
    return False


_SHORT = reprlib.Repr()  # keyword arguments need Python 3.12
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 2, 4, 4
_SHORT.maxstring = _SHORT.maxother = 60


def did_you_mean(word: Any, choices: typing.Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` to a mistyped ``word``, or
    ``""`` when none is close (difflib's similarity ratio of at least 0.6)."""
    import difflib

    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def short_repr(value: Any, limit: int = 80) -> str:
    """A repr of ``value`` of at most about ``limit`` characters, built without expanding
    nested containers (a YAML alias bomb's repr would take gigabytes)."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: The dates numpy's datetime64[ns] (and so pandas) can hold.
FIRST_DATE, LAST_DATE = _dt.date(1677, 9, 22), _dt.date(2262, 4, 11)


def check_iso_date(value: Any) -> Any:
    """``value`` if it is None or a real calendar date written ``YYYY-MM-DD``, else a
    ValueError that says so (``2014-02-30``, ``banana``, ``31/01/2014``, year 3000)."""
    if value is None:
        return None
    shown = short_repr(value, 40)
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"must be a date written YYYY-MM-DD, got {shown}")
    try:
        day = _dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{shown} is not a calendar date") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"{shown} is outside the dates supported ({FIRST_DATE} to {LAST_DATE})")
    return value


class SettingsSection(BaseModel):
    """Frozen, extra keys forbidden, booleans refused where a number is expected.

    Pydantic's lax mode reads ``epochs: true`` as 1: a YAML slip that would silently
    train one epoch. Strict mode everywhere would also refuse the dates YAML reads from
    an unquoted ``2014-01-01``, so only the booleans are singled out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A model validator, not a field validator on "*": pydantic refuses "before"
    # validators on the discriminator field of the constructor specs.
    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for key, value in values.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                if isinstance(value, bool) and field is not None and _numeric(field.annotation):
                    raise ValueError(f"{key} must be a number, got {str(value).lower()}")
        return values
