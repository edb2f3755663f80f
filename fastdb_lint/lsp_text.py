"""Text arithmetic for the language server: positions in the client's encoding,
``# noqa`` insertion and the smallest edit between two texts.

Nothing here depends on pygls: positions are ``(line, character)`` pairs, 0-based, with
``character`` counted in the negotiated position encoding (``utf-8``, ``utf-16`` or
``utf-32``). Lines are split at ``\\r\\n``, ``\\r`` and ``\\n``, as the LSP specifies and as
:class:`~fastdb_lint.source.SourceText` does.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

from fastdb_lint.diagnostics import Edit, Location
from fastdb_lint.source import SourceText

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"

Position = tuple[int, int]

_NOQA_CODES = re.compile(
    r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)", re.IGNORECASE
)
_NOQA_ANY = re.compile(r"#\s*noqa(?![:\w])", re.IGNORECASE)
_FILE_NOQA = re.compile(r"#\s*fastdb-lint:\s*noqa", re.IGNORECASE)


def code_units(text: str, encoding: str) -> int:
    """Length of ``text`` in the units of a position encoding (UTF-16 if unknown)."""
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def offset_position(source: SourceText, offset: int, encoding: str) -> Position:
    """The client position of a character offset into ``source.text``."""
    offset = max(0, min(offset, len(source.text)))
    location = source.location(offset)
    line = source.line(location.row)
    return (location.row - 1, code_units(line[: max(0, location.column - 1)], encoding))


def location_position(source: SourceText, location: Location, encoding: str) -> Position:
    """The client position of a 1-based row and 1-based code-point column; positions
    past the end of a line are clamped to its end, rows past the end to the last one."""
    last_row = len(source.lines)
    if location.row > last_row:
        return (last_row - 1, code_units(source.line(last_row), encoding))
    row = max(1, location.row)
    line = source.line(row)
    return (row - 1, code_units(line[: max(0, location.column - 1)], encoding))


def end_position(source: SourceText, encoding: str) -> Position:
    return offset_position(source, len(source.text), encoding)


@dataclass(frozen=True)
class TextChange:
    """An edit expressed as client positions."""

    start: Position
    end: Position
    new_text: str


def edit_change(source: SourceText, edit: Edit, encoding: str) -> TextChange:
    return TextChange(
        offset_position(source, edit.start, encoding),
        offset_position(source, edit.end, encoding),
        edit.content,
    )


def minimal_edit(before: str, after: str) -> Edit | None:
    """One edit turning ``before`` into ``after``, covering only what differs; never
    starts or ends between the two characters of a ``\\r\\n``."""
    if before == after:
        return None
    limit = min(len(before), len(after))
    prefix = 0
    while prefix < limit and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1
    if 0 < prefix < len(before) and before[prefix - 1] == "\r" and before[prefix] == "\n":
        prefix -= 1
    end = len(before) - suffix
    if 0 < end < len(before) and before[end - 1] == "\r" and before[end] == "\n":
        suffix -= 1
        end += 1
    return Edit(prefix, end, after[prefix : len(after) - suffix])


class CommentMap:
    """Where comments can go: per row, the comment already on it and whether the row
    ends inside a multi-line token (a string), where a comment would become text."""

    def __init__(self, source: SourceText) -> None:
        self.source = source
        self.comments: dict[int, tuple[int, str]] = {}
        self.open_rows: set[int] = set()
        self.tokenized = False
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(source.text).readline))
        except (tokenize.TokenError, SyntaxError, IndentationError):
            return
        self.tokenized = True
        for token in tokens:
            if token.type == tokenize.COMMENT:
                self.comments[token.start[0]] = (token.start[1], token.string)
            elif token.start[0] < token.end[0] and token.type not in (tokenize.NL, tokenize.NEWLINE):
                self.open_rows.update(range(token.start[0], token.end[0]))

    def comment(self, row: int) -> tuple[int, str] | None:
        """Column (0-based code points) and text of the comment on ``row``."""
        if self.tokenized:
            return self.comments.get(row)
        line = self.source.line(row)
        match = re.search(r"#", line)
        return (match.start(), line[match.start() :]) if match else None


def noqa_edit(source: SourceText, row: int, code: str, *, comments: CommentMap | None = None, python: bool = True) -> Edit | None:
    """The edit that suppresses ``code`` on ``row``: ``, CODE`` appended to an existing
    ``# noqa: X`` list, else ``  # noqa: CODE`` at the end of the line. Files that are not
    Python take the comment on a line of its own above ``row`` (how the engine reads
    them). ``None`` when no comment can go there."""
    if not 0 < row <= len(source.lines):
        return None
    if not python:
        return _noqa_line_above(source, row, code)
    comments = comments or CommentMap(source)
    if row in comments.open_rows:
        return None
    line = source.line(row)
    start = source.line_starts[row - 1]
    existing = comments.comment(row)
    if existing is not None:
        column, text = existing
        if _FILE_NOQA.search(text):
            return None
        match = _NOQA_CODES.search(text)
        if match is not None:
            codes = re.split(r"[\s,]+", match.group("codes"))
            if code in (c.upper() for c in codes):
                return None
            at = start + column + match.end("codes")
            return Edit(at, at, f", {code}")
        if _NOQA_ANY.search(text):
            return None
    content = line.rstrip()
    if content.endswith("\\") and existing is None:
        return None
    separator = "  " if content else ""
    return Edit(start + len(content), start + len(line), f"{separator}# noqa: {code}")


def _noqa_line_above(source: SourceText, row: int, code: str) -> Edit | None:
    if row > 1:
        above = source.line(row - 1)
        match = _NOQA_CODES.search(above)
        if match is not None and above.lstrip().startswith("#"):
            if code in (c.upper() for c in re.split(r"[\s,]+", match.group("codes"))):
                return None
            at = source.line_starts[row - 2] + match.end("codes")
            return Edit(at, at, f", {code}")
    line = source.line(row)
    indent = line[: len(line) - len(line.lstrip())]
    start = source.line_starts[row - 1]
    return Edit(start, start, f"{indent}# noqa: {code}{source.newline}")
