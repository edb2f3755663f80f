"""The values that flow from rules to reporters: findings, fixes and text edits.

Positions are 1-based rows and 1-based columns counted in Unicode code points, the
convention of ruff's JSON output and of SARIF's ``unicodeCodePoints`` column kind.
Edits are kept as character offsets into the decoded source so that they can be
applied, merged and checked for overlap without re-parsing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

PARSE_ERROR = "FDB001"


class Applicability(str, enum.Enum):
    """How much a fix can be trusted (ruff's meaning)."""

    SAFE = "safe"
    UNSAFE = "unsafe"


class FixAvailability(str, enum.Enum):
    """What a rule offers, as documented and listed by ``fastdb-lint rules``."""

    NONE = "none"
    SAFE = "safe"
    UNSAFE = "unsafe"


class Severity(str, enum.Enum):
    WARNING = "warning"
    ERROR = "error"
    SECURITY = "security"


@dataclass(frozen=True, order=True)
class Location:
    row: int
    column: int


@dataclass(frozen=True)
class Edit:
    """Replace ``source[start:end]`` by ``content``."""

    start: int
    end: int
    content: str

    def overlaps(self, other: Edit) -> bool:
        """Identical edits never conflict (two fixes may add the same import)."""
        if self == other:
            return False
        if self.start == self.end and other.start == other.end:
            return self.start == other.start
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class Fix:
    message: str
    applicability: Applicability
    edits: tuple[Edit, ...]

    def conflicts_with(self, other: Fix) -> bool:
        return any(a.overlaps(b) for a in self.edits for b in other.edits)


@dataclass
class Finding:
    code: str
    message: str
    path: str
    start: Location
    end: Location
    fix: Fix | None = None
    noqa_row: int | None = None
    severity: Severity = Severity.WARNING
    rule_name: str = ""
    # Positions of each edit as (start, end) Locations, filled in with the finding.
    edit_locations: list[tuple[Location, Location]] = field(default_factory=list)

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.start.row, self.start.column, self.code)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "path": self.path,
            "start": [self.start.row, self.start.column],
            "end": [self.end.row, self.end.column],
            "noqa_row": self.noqa_row,
            "severity": self.severity.value,
            "rule_name": self.rule_name,
            "fix": None
            if self.fix is None
            else {
                "message": self.fix.message,
                "applicability": self.fix.applicability.value,
                "edits": [[e.start, e.end, e.content] for e in self.fix.edits],
            },
            "edit_locations": [
                [[a.row, a.column], [b.row, b.column]] for a, b in self.edit_locations
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Finding:  # type: ignore[type-arg]
        fix_data = data["fix"]
        fix = (
            None
            if fix_data is None
            else Fix(
                fix_data["message"],
                Applicability(fix_data["applicability"]),
                tuple(Edit(*e) for e in fix_data["edits"]),
            )
        )
        return cls(
            code=data["code"],
            message=data["message"],
            path=data["path"],
            start=Location(*data["start"]),
            end=Location(*data["end"]),
            fix=fix,
            noqa_row=data["noqa_row"],
            severity=Severity(data["severity"]),
            rule_name=data["rule_name"],
            edit_locations=[(Location(*a), Location(*b)) for a, b in data["edit_locations"]],
        )


def parse_error_finding(path: str, message: str, row: int, column: int) -> Finding:
    """The FDB001 finding for a file that cannot be decoded or parsed."""
    message = " ".join(message.split())
    return Finding(
        code=PARSE_ERROR,
        message=f"Cannot parse file: {message}",
        path=path,
        start=Location(max(row, 1), max(column, 1)),
        end=Location(max(row, 1), max(column, 1)),
        noqa_row=None,
        rule_name="parse-error",
    )
