"""``# noqa`` comments: per line (``# noqa`` / ``# noqa: FDB201, FDB301``) and per file
(``# fastdb-lint: noqa`` / ``# fastdb-lint: noqa: FDB201``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CODES = r"(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)"
_LINE = re.compile(r"#\s*noqa(?::\s*" + _CODES + r")?", re.IGNORECASE)
_FILE = re.compile(r"#\s*fastdb-lint:\s*noqa(?::\s*" + _CODES + r")?", re.IGNORECASE)
ALL = frozenset({"*"})


def _codes(match: re.Match[str]) -> frozenset[str]:
    codes = match.group("codes")
    return frozenset(c.upper() for c in re.split(r"[\s,]+", codes) if c) if codes else ALL


@dataclass
class Suppressions:
    file_codes: frozenset[str] = frozenset()
    lines: dict[int, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def scan(cls, lines: list[str]) -> Suppressions:
        result = cls()
        for row, line in enumerate(lines, start=1):
            if "noqa" not in line and "NOQA" not in line.upper():
                continue
            file_match = _FILE.search(line)
            if file_match:
                result.file_codes = result.file_codes | _codes(file_match)
                continue
            match = _LINE.search(line)
            if match:
                result.lines[row] = _codes(match)
        return result

    def suppressed(self, code: str, row: int) -> bool:
        if "*" in self.file_codes or code in self.file_codes:
            return True
        codes = self.lines.get(row)
        return codes is not None and ("*" in codes or code in codes)


def _unsafe_rows(text: str) -> set[int]:
    """Rows whose end lies inside a multi-line string or continues with a backslash:
    a comment appended there would change the program."""
    import io
    import tokenize

    rows: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.start[0] != token.end[0] and token.type not in (tokenize.NL, tokenize.NEWLINE):
                rows.update(range(token.start[0], token.end[0]))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return set(range(1, text.count("\n") + 2))
    for row, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if line.rstrip().endswith("\\"):
            rows.add(row)
    return rows


def add_noqa(text: str, codes_by_row: dict[int, set[str]]) -> tuple[str, int]:
    """Append or extend ``# noqa: CODES`` on the given rows; returns the new text and
    how many rows were changed. Rows where a comment cannot go are left alone."""
    unsafe = _unsafe_rows(text)
    parts = re.split(r"(\r\n|\r|\n)", text)
    changed = 0
    for row, codes in codes_by_row.items():
        index = (row - 1) * 2
        if row in unsafe or index >= len(parts) or not codes:
            continue
        line = parts[index]
        match = _LINE.search(line)
        if match and match.group("codes") is None:
            continue  # a bare noqa already covers everything
        if match:
            existing = _codes(match)
            missing = sorted(codes - existing)
            if not missing:
                continue
            merged = ", ".join(sorted(existing | codes))
            line = line[: match.start()] + f"# noqa: {merged}" + line[match.end() :]
        else:
            line = line.rstrip() + f"  # noqa: {', '.join(sorted(codes))}"
        parts[index] = line
        changed += 1
    return "".join(parts), changed
