"""The rule base class and the examples every rule carries.

A rule is one class: its code, name, one-line summary, fix availability, whether it is
opt-in, the words that make a file worth parsing for it (``triggers``), a docstring
with the sections *What it does / Why is this bad? / Example / Use instead / Fix
safety*, and ``valid``/``invalid`` examples that the test suite runs and
``fastdb-lint rule CODE`` prints.

Handlers are methods named ``visit_<LibCSTNode>`` / ``leave_<LibCSTNode>``; one instance
per file is created with the :class:`~fastdb_lint.context.FileContext` as ``self.ctx``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import libcst as cst

from fastdb_lint.analysis.terms import ProjectTerms
from fastdb_lint.diagnostics import FixAvailability, Severity
from fastdb_lint.prefilter import BASE_TRIGGERS

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape
    from fastdb_lint.context import FileContext


@dataclass(frozen=True)
class Valid:
    """Code the rule must not flag. ``files`` are other project files (path -> code)."""

    code: str
    path: str = "app/example.py"
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Invalid:
    """Code the rule must flag ``count`` times; ``fixed`` is the expected code after
    applying the rule's fixes (unsafe ones included when the rule's fixes are unsafe)."""

    code: str
    fixed: str | None = None
    count: int = 1
    path: str = "app/example.py"
    files: dict[str, str] = field(default_factory=dict)
    # 1-based line of the first finding, when the example pins it.
    line: int | None = None


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    fix: ClassVar[FixAvailability] = FixAvailability.NONE
    opt_in: ClassVar[bool] = False
    severity: ClassVar[Severity] = Severity.WARNING
    tags: ClassVar[tuple[str, ...]] = ()
    # A file is parsed for this rule only if its text contains one of these words;
    # None means the default database vocabulary (prefilter.BASE_TRIGGERS), () every file.
    triggers: ClassVar[tuple[str, ...] | None] = None
    # Rules that also read non-Python files declare the file names they handle.
    file_patterns: ClassVar[tuple[str, ...]] = ()
    # Test files (RULES.md's definition) are never checked by this rule.
    skip_test_files: ClassVar[bool] = False
    valid: ClassVar[list[Valid]] = []
    invalid: ClassVar[list[Invalid]] = []

    _visitors: ClassVar[list[tuple[type, str]]]
    _leavers: ClassVar[list[tuple[type, str]]]

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.disabled = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[str, object] = {}
        for klass in reversed(cls.__mro__):
            handlers.update((name, value) for name, value in vars(klass).items() if name.startswith(("visit_", "leave_")))
        visitors, leavers = [], []
        for attr in sorted(handlers):
            if not inspect.isfunction(handlers[attr]):
                continue
            prefix, node_name = attr.split("_", 1)
            node_type = getattr(cst, node_name, None)
            if not (isinstance(node_type, type) and issubclass(node_type, cst.CSTNode)):
                raise TypeError(f"{cls.__name__}.{attr}: no LibCST node named {node_name}")
            (visitors if prefix == "visit" else leavers).append((node_type, attr))
        cls._visitors = visitors
        cls._leavers = leavers

    @classmethod
    def trigger_words(cls) -> tuple[str, ...]:
        """The words one of which a file must mention to be linted by this rule (the
        project's symbols count too); () for every file."""
        return cls.triggers if cls.triggers is not None else BASE_TRIGGERS

    @classmethod
    def visitors(cls) -> list[tuple[type, str]]:
        return cls._visitors

    @classmethod
    def leavers(cls) -> list[tuple[type, str]]:
        return cls._leavers

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        """Whether the rule can report anything in a file of this shape. It must hold
        for every file the rule can flag (a file where no rule applies is not parsed),
        so a rule that cannot tell answers True."""
        return True

    def finish(self) -> None:
        """Called once after the traversal (for rules that decide at the end)."""
