"""raw_sql rules."""

from __future__ import annotations
