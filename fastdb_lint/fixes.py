"""Building fixes during the traversal and applying them to source text.

Rules describe a fix in terms of nodes (replace this call, insert before that
statement, add this import); positions are resolved only after the traversal, and only
for files that have findings, turning each fix into character-offset :class:`Edit`s.
Fixes are applied ruff-style: non-overlapping fixes in one round, the rest in later
rounds after re-linting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Literal, Mapping, Sequence, TypeVar

import libcst as cst
from libcst.metadata import CodeRange

from fastdb_lint.analysis.imports import canonical
from fastdb_lint.codegen import code_of
from fastdb_lint.diagnostics import Applicability, Edit, Fix
from fastdb_lint.source import SourceText
from fastdb_lint.walk import NODE_TYPES, TRIVIA_TYPES, Walker

if TYPE_CHECKING:
    from fastdb_lint.context import FileContext

Mode = Literal["replace", "before", "after", "line_before", "line_after"]
_Node = TypeVar("_Node", bound=cst.CSTNode)


@dataclass
class NodeEdit:
    node: cst.CSTNode
    mode: Mode
    content: str | cst.CSTNode
    # The code of a node ``content``, once generated.
    code: str | None = None


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
        code = None
        if isinstance(new, cst.CSTNode):
            # A node is rendered on its own, outside its block: continuation lines that
            # follow the block's indentation get that indentation written out (there are
            # none in code on one line).
            module = self._ctx.module
            code = code_of(module, new)
            if "\n" in code or "\r" in code:
                indent = self._block_indent(node)
                if indent:
                    new = _explicit_indent(new, indent)
                    code = code_of(module, new)
        self.edits.append(NodeEdit(node, "replace", new, code))
        return self

    def _block_indent(self, node: cst.CSTNode) -> str | None:
        """Indentation of the block holding ``node`` (an ancestor of the node being
        visited, or one of its descendants); None when it cannot be told."""
        ctx = self._ctx
        stack = ctx.stack
        for depth in range(len(stack) - 1, -1, -1):
            if stack[depth] is node:
                return _indentation(stack[:depth], ctx.module)
        if stack:
            path = _path_to(stack[-1], node)
            if path is not None:
                return _indentation([*stack, *path], ctx.module)
        return None

    def insert_before(self, node: cst.CSTNode, text: str) -> FixBuilder:
        self.edits.append(NodeEdit(node, "before", text))
        return self

    def insert_after(self, node: cst.CSTNode, text: str) -> FixBuilder:
        self.edits.append(NodeEdit(node, "after", text))
        return self

    # -- call arguments ---------------------------------------------------------

    def set_keyword(self, call: cst.Call, name: str, value: str) -> FixBuilder:
        """Give ``call`` the keyword argument ``name=value`` (replacing its value if set)."""
        expr = parse_expression(value)
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
        small = ctx.from_imports.get(module)
        if small is not None:
            earlier = next(
                (e for e in self.edits if e.node is small and e.mode == "replace" and isinstance(e.content, cst.ImportFrom)),
                None,
            )
            if earlier is not None:
                small_now = earlier.content
                assert isinstance(small_now, cst.ImportFrom) and not isinstance(small_now.names, cst.ImportStar)
                self.edits.remove(earlier)
            else:
                small_now = small
            assert not isinstance(small_now.names, cst.ImportStar)
            names = list(small_now.names)
            last = names[-1]
            new_alias = cst.ImportAlias(name=cst.Name(name), comma=last.comma)
            names[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            if isinstance(last.comma, cst.Comma) and len(names) >= 2:
                names[-1] = last.with_changes(comma=names[-2].comma)
            names.append(new_alias)
            # A module-level statement: no block indentation to write out.
            self.edits.append(NodeEdit(small, "replace", small_now.with_changes(names=names)))
            return self
        prefix = f"from {module} import "
        for edit in self.edits:
            if edit.mode in ("line_after", "line_before") and isinstance(edit.content, str) and edit.content.startswith(prefix):
                edit.content = edit.content.rstrip("\r\n") + f", {name}{ctx.source.newline}"
                return self
        return self._add_import_line(f"{prefix}{name}{ctx.source.newline}")

    def add_module_import(self, module: str) -> FixBuilder:
        """Make ``module`` (a top-level module such as ``uuid``) importable by its name."""
        ctx = self._ctx
        if ctx.imports.resolve(module) == module:
            return self
        if module in ctx.imports.bindings or module in ctx.imports.local_defs:
            return self.fail()
        line = f"import {module}{ctx.source.newline}"
        if any(e.content == line for e in self.edits):
            return self
        return self._add_import_line(line)

    def insert_line_before(self, node: cst.CSTNode, text: str) -> FixBuilder:
        """Insert ``text`` (whole lines) at the start of the line where ``node`` starts."""
        self.edits.append(NodeEdit(node, "line_before", text))
        return self

    def insert_line_after(self, node: cst.CSTNode, text: str) -> FixBuilder:
        """Insert ``text`` (whole lines) after the line where ``node`` ends."""
        self.edits.append(NodeEdit(node, "line_after", text))
        return self

    def _add_import_line(self, line: str) -> FixBuilder:
        body = self._ctx.module.body
        last_import: cst.SimpleStatementLine | None = None
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine) and any(
                isinstance(small, (cst.Import, cst.ImportFrom)) for small in stmt.body
            ):
                last_import = stmt
        if last_import is not None:
            self.edits.append(NodeEdit(last_import, "line_after", line))
            return self
        anchor = _first_code_statement(body)
        if anchor is None:
            return self.fail()
        mode: Mode = "line_after" if anchor is not body[0] or _is_docstring(anchor) else "line_before"
        self.edits.append(NodeEdit(anchor if mode == "line_before" else body[0], mode, line))
        return self


# Walks every child of a node, whitespace and punctuation included.
_ALL_NODES = Walker(TRIVIA_TYPES)


def map_line_whitespace(
    node: _Node,
    change: Callable[[cst.ParenthesizedWhitespace | cst.EmptyLine], cst.CSTNode],
    *,
    into_blocks: bool = True,
) -> _Node:
    """``node`` with ``change`` applied to every ``ParenthesizedWhitespace`` and
    ``EmptyLine`` in it, innermost first (as a ``CSTTransformer``'s ``leave_`` methods
    would), not looking inside indented blocks unless ``into_blocks``. The parts that do
    not change are kept as they are."""
    kind = type(node)
    if kind is cst.IndentedBlock and not into_blocks:
        return node
    changes: dict[str, object] = {}
    for name in _ALL_NODES.field_names(kind):
        value = getattr(node, name)
        value_type = type(value)
        if value_type is tuple or value_type is list:
            items = [
                map_line_whitespace(item, change, into_blocks=into_blocks) if type(item) in NODE_TYPES else item
                for item in value
            ]
            if any(new is not old for new, old in zip(items, value)):
                changes[name] = value_type(items)
        elif value_type in NODE_TYPES:
            new = map_line_whitespace(value, change, into_blocks=into_blocks)
            if new is not value:
                changes[name] = new
    if changes:
        node = node.with_changes(**changes)
    if kind is cst.ParenthesizedWhitespace or kind is cst.EmptyLine:
        return change(node)  # type: ignore[arg-type,return-value]
    return node


def _explicit_indent(node: _Node, indent: str) -> _Node:
    """``node`` with the block indentation ``indent`` written into the whitespace that
    inherits it (lines inside brackets and comment lines, outside indented blocks), so
    that it renders the same on its own."""

    def write(whitespace: cst.ParenthesizedWhitespace | cst.EmptyLine) -> cst.CSTNode:
        if not whitespace.indent:
            return whitespace
        if isinstance(whitespace, cst.ParenthesizedWhitespace):
            return whitespace.with_changes(indent=False, last_line=cst.SimpleWhitespace(indent + whitespace.last_line.value))
        return whitespace.with_changes(indent=False, whitespace=cst.SimpleWhitespace(indent + whitespace.whitespace.value))

    return map_line_whitespace(node, write, into_blocks=False)


def _indentation(ancestors: Sequence[cst.CSTNode], module: cst.Module) -> str:
    return "".join(
        (n.indent if n.indent is not None else module.default_indent)  # type: ignore[attr-defined]
        for n in ancestors
        if type(n) is cst.IndentedBlock
    )


def _path_to(root: cst.CSTNode, target: cst.CSTNode) -> list[cst.CSTNode] | None:
    """Nodes strictly between ``root`` and its descendant ``target`` (None if not one)."""
    pending: list[tuple[cst.CSTNode, tuple[cst.CSTNode, ...]]] = [(root, ())]
    while pending:
        current, path = pending.pop()
        for child in _ALL_NODES.children(current):
            if child is target:
                return list(path)
            pending.append((child, (*path, child)))
    return None


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


@lru_cache(maxsize=1024)
def parse_expression(code: str) -> cst.BaseExpression:
    """``libcst.parse_expression``, parsing each text once (nodes are immutable, so a
    parsed expression can serve as the content of several fixes)."""
    return cst.parse_expression(code)


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
        last_comma = last.comma
        trailing = last_comma.whitespace_after
        if isinstance(trailing, cst.ParenthesizedWhitespace) and isinstance(
            separator.whitespace_after, cst.ParenthesizedWhitespace
        ):
            # One argument per line: a comment after the last argument stays on its line.
            separator = separator.with_changes(
                whitespace_after=separator.whitespace_after.with_changes(first_line=trailing.first_line)
            )
            last_comma = last_comma.with_changes(whitespace_after=trailing.with_changes(first_line=cst.TrailingWhitespace()))
        args[-1] = last.with_changes(comma=separator)
        args.append(new_arg.with_changes(comma=last_comma))
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
        content = edit.content
        if not isinstance(content, str):
            content = edit.code if edit.code is not None else code_of(module, content)
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
    # Identical edits are applied once; insertions at one offset keep their creation order.
    order = {e: i for i, e in enumerate(dict.fromkeys(e for fix in fixes for e in fix.edits))}
    edits = sorted(order, key=lambda e: (e.start, e.end, order[e]), reverse=True)
    for edit in edits:
        text = text[: edit.start] + edit.content + text[edit.end :]
    return text
