"""Exceptions for problems the user can fix.

Every error a user can cause (a bad file, a bad config value) is raised as an
:class:`AlphaseqError` with one message that says what is wrong and where. The
CLI prints that message and exits non-zero; it never shows a traceback for them.
"""

from __future__ import annotations


class AlphaseqError(Exception):
    """Base class of every error caused by user input."""


class DataError(AlphaseqError, ValueError):
    """Input data that cannot be used: missing columns, bad values, unknown files."""


class ConfigError(AlphaseqError, ValueError):
    """A configuration value that is missing, unknown or out of range."""
