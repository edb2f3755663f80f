"""The raw-text checks that decide, before any parsing, whether a file is worth
indexing or linting: a file that mentions none of the words a rule (or the index)
needs is never parsed."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Words that make a file worth parsing for rules that do not declare their own.
BASE_TRIGGERS: tuple[str, ...] = ("sqlalchemy", "sqlmodel", "Session", "session")
# Words that make a file worth indexing for the project-wide analyses.
INDEX_TRIGGERS: tuple[str, ...] = ("sqlalchemy", "sqlmodel", "fastapi", "Depends", "Session", "relationship", "dispose")


def wants_index(text: str) -> bool:
    return any(word in text for word in INDEX_TRIGGERS)


def words_regex(words: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern finding any of ``words`` (longest first), or None for no words."""
    unique = sorted(set(words), key=lambda w: (-len(w), w))
    if not unique:
        return None
    return re.compile("|".join(re.escape(w) for w in unique))
