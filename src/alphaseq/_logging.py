"""The package logger. Library code logs; only the CLI configures handlers."""

from __future__ import annotations

import logging

logger = logging.getLogger("alphaseq")
