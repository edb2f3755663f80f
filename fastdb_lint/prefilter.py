"""The raw-text checks that decide, before any parsing, whether a file is worth
indexing or linting: a file that mentions none of the words a rule (or the index)
needs is never parsed."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Words that make a file worth parsing for rules that do not declare their own.
BASE_TRIGGERS: tuple[str, ...] = ("sqlalchemy", "sqlmodel", "Session", "session")
# Words that make a file worth indexing for the project-wide analyses ("://" for
# settings modules that only hold a database URL).
INDEX_TRIGGERS: tuple[str, ...] = (
    "sqlalchemy", "sqlmodel", "fastapi", "Depends", "Session", "relationship", "dispose", "://",
)


def wants_index(text: str, path: str = "") -> bool:
    """Whether a file can hold facts other files need. A package's ``__init__.py``
    with imports is indexed whatever it mentions: it may re-export models or sessions."""
    if any(word in text for word in INDEX_TRIGGERS):
        return True
    return path.replace("\\", "/").rsplit("/", 1)[-1] == "__init__.py" and "import" in text


def words_regex(words: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern finding any of ``words`` (longest first), or None for no words."""
    unique = sorted(set(words), key=lambda w: (-len(w), w))
    if not unique:
        return None
    return re.compile("|".join(re.escape(w) for w in unique))


def lint_words(enabled: Iterable[str], project_words: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for every word that can make the lint pass read a Python file: the
    trigger words of the ``enabled`` rules (from the catalog, so that no rule module is
    imported), the base triggers and the project's symbols. None when an enabled rule
    reads every file.

    A file this pattern does not match gets no finding: no rule is selected for it, and
    it is not even parsed for a syntax error (see ``Engine._lint``)."""
    from fastdb_lint.catalog import RULES
    from fastdb_lint.diagnostics import PARSE_ERROR

    words = set(BASE_TRIGGERS) | set(project_words)
    for code in enabled:
        if code == PARSE_ERROR or code not in RULES:
            continue
        own = RULES[code].triggers
        if not own:
            return None
        words.update(own)
    return words_regex(words)
