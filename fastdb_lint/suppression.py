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
