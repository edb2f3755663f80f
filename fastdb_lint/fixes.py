"""Building fixes during the traversal and applying them to source text.

Rules describe a fix in terms of nodes (replace this call, insert before that
statement, add this import); positions are resolved only after the traversal, and only
for files that have findings, turning each fix into character-offset :class:`Edit`s.
Fixes are applied ruff-style: non-overlapping fixes in one round, the rest in later
rounds after re-linting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Mapping, Sequence

import libcst as cst
from libcst.metadata import CodeRange

from fastdb_lint.analysis.imports import canonical, dotted_cst
from fastdb_lint.diagnostics import Applicability, Edit, Fix
from fastdb_lint.source import SourceText

if TYPE_CHECKING:
    from fastdb_lint.context import FileContext

Mode = Literal["replace", "before", "after", "line_before", "line_after"]


@dataclass
class NodeEdit:
    node: cst.CSTNode
    mode: Mode
    content: str | cst.CSTNode


@dataclass
class PendingFix:
    message: str
    applicability: Applicability
    edits: list[NodeEdit] = field(default_factory=list)
    failed: bool = False

    def nodes(self) -> list[cst.CSTNode]:
        return [e.node for e in self.edits]


class FixBuilder(PendingFix):
    """Chainable construction of a fix; any step that cannot be done safely marks the
    whole fix as failed, and the finding is then reported without a fix."""

    def __init__(self, ctx: FileContext, message: str, *, unsafe: bool = False) -> None:
        super().__init__(message, Applicability.UNSAFE if unsafe else Applicability.SAFE)
        self._ctx = ctx

    def fail(self) -> FixBuilder:
        self.failed = True
        return self

    def replace(self, node: cst.CSTNode, new: cst.CSTNode | str) -> FixBuilder:
        self.edits.append(NodeEdit(node, "replace", new))
        return self

    def insert_before(self, node: cst.CSTNode, text: str) -> FixBuilder:
        self.edits.append(NodeEdit(node, "before", text))
        return self

    def insert_after(self, node: cst.CSTNode, text: str) -> FixBuilder:
        self.edits.append(NodeEdit(node, "after", text))
        return self

    # -- call arguments ---------------------------------------------------------

    def set_keyword(self, call: cst.Call, name: str, value: str) -> FixBuilder:
        """Give ``call`` the keyword argument ``name=value`` (replacing its value if set)."""
        expr = cst.parse_expression(value)
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == name:
                return self.replace(arg.value, expr)
        new_arg = cst.Arg(
            value=expr,
            keyword=cst.Name(name),
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
            ),
        )
        return self.replace(call, call.with_changes(args=append_arg(call, new_arg)))

    def remove_keyword(self, call: cst.Call, name: str) -> FixBuilder:
        args = list(call.args)
        for index, arg in enumerate(args):
            if arg.keyword is not None and arg.keyword.value == name:
                return self.replace(call, call.with_changes(args=remove_arg(call, index)))
        return self.fail()

    def remove_keywords(self, call: cst.Call, names: Sequence[str]) -> FixBuilder:
        new_call = call
        for name in names:
            for index, arg in enumerate(new_call.args):
                if arg.keyword is not None and arg.keyword.value == name:
                    new_call = new_call.with_changes(args=remove_arg(new_call, index))
                    break
        if new_call is call:
            return self.fail()
        return self.replace(call, new_call)

    # -- imports ----------------------------------------------------------------

    def add_import(self, module: str, name: str) -> FixBuilder:
        """Make ``name`` refer to ``module.name`` at module level, merging into an
        existing ``from module import ...`` when there is one."""
        ctx = self._ctx
        wanted = canonical(f"{module}.{name}")
        if ctx.imports.resolve(name) == wanted:
            return self
        if name in ctx.imports.bindings or name in ctx.imports.local_defs:
            return self.fail()
        body = ctx.module.body
        last_import: cst.SimpleStatementLine | None = None
        for stmt in body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if isinstance(small, (cst.Import, cst.ImportFrom)):
                    last_import = stmt
                if (
                    isinstance(small, cst.ImportFrom)
                    and not small.relative
                    and small.module is not None
                    and dotted_cst(small.module) == module
                    and not isinstance(small.names, cst.ImportStar)
                ):
                    names = list(small.names)
                    last = names[-1]
                    new_alias = cst.ImportAlias(name=cst.Name(name), comma=last.comma)
                    names[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                    if isinstance(last.comma, cst.Comma) and len(names) >= 2:
                        names[-1] = last.with_changes(comma=names[-2].comma)
                    names.append(new_alias)
                    return self.replace(small, small.with_changes(names=names))
        line = f"from {module} import {name}{ctx.source.newline}"
        if last_import is not None:
            self.edits.append(NodeEdit(last_import, "line_after", line))
            return self
        anchor = _first_code_statement(body)
        if anchor is None:
            return self.fail()
        mode: Mode = "line_after" if anchor is not body[0] or _is_docstring(anchor) else "line_before"
        self.edits.append(NodeEdit(anchor if mode == "line_before" else body[0], mode, line))
        return self


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _first_code_statement(body: Sequence[cst.BaseStatement]) -> cst.BaseStatement | None:
    if not body:
        return None
    return body[0]


def append_arg(call: cst.Call, new_arg: cst.Arg) -> list[cst.Arg]:
    args = list(call.args)
    if not args:
        return [new_arg]
    last = args[-1]
    if isinstance(last.comma, cst.Comma):
        separator = (
            args[-2].comma
            if len(args) >= 2 and isinstance(args[-2].comma, cst.Comma)
            else cst.Comma(whitespace_after=call.whitespace_before_args)
        )
        args[-1] = last.with_changes(comma=separator)
        args.append(new_arg.with_changes(comma=last.comma))
    else:
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        args.append(new_arg)
    return args


def remove_arg(call: cst.Call, index: int) -> list[cst.Arg]:
    args = list(call.args)
    removed = args.pop(index)
    if index == len(args) and args:
        # The removed argument was last: its comma (or lack of one) moves to the new last.
        args[-1] = args[-1].with_changes(comma=removed.comma)
    return args


# -- resolution and application -------------------------------------------------


def resolve_fix(
    pending: PendingFix,
    positions: Mapping[cst.CSTNode, CodeRange],
    source: SourceText,
    module: cst.Module,
) -> Fix | None:
    edits: list[Edit] = []
    for edit in pending.edits:
        code_range = positions.get(edit.node)
        if code_range is None:
            return None
        start = source.offset(code_range.start.line, code_range.start.column)
        end = source.offset(code_range.end.line, code_range.end.column)
        content = edit.content if isinstance(edit.content, str) else module.code_for_node(edit.content)
        if edit.mode == "replace":
            edits.append(Edit(start, end, content))
        elif edit.mode == "before":
            edits.append(Edit(start, start, content))
        elif edit.mode == "after":
            edits.append(Edit(end, end, content))
        elif edit.mode == "line_before":
            offset = source.line_starts[code_range.start.line - 1]
            edits.append(Edit(offset, offset, content))
        else:  # line_after
            starts = source.line_starts
            row = code_range.end.line
            if code_range.end.column == 0:
                row -= 1
            if row < len(starts):
                edits.append(Edit(starts[row], starts[row], content))
            else:
                text = source.text
                prefix = "" if text.endswith(("\n", "\r")) else source.newline
                edits.append(Edit(len(text), len(text), prefix + content))
    return Fix(pending.message, pending.applicability, tuple(edits))


def select_fixes(fixes: Sequence[Fix]) -> list[Fix]:
    """The largest prefix-greedy set of non-conflicting fixes, in source order."""
    chosen: list[Fix] = []
    for fix in sorted(fixes, key=lambda f: (min(e.start for e in f.edits), max(e.end for e in f.edits))):
        if not fix.edits:
            continue
        if any(fix.conflicts_with(other) for other in chosen):
            continue
        chosen.append(fix)
    return chosen


def apply_edits(text: str, fixes: Sequence[Fix]) -> str:
    edits = sorted({e for fix in fixes for e in fix.edits}, key=lambda e: (e.start, e.end), reverse=True)
    for edit in edits:
        text = text[: edit.start] + edit.content + text[edit.end :]
    return text
