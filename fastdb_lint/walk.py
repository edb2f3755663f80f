"""A fast, iterative walk over a LibCST tree in source order.

LibCST's own ``CSTNode.visit`` rebuilds every node it passes (``_visit_and_replace_children``)
and visits every whitespace and punctuation node; a linter that only reads the tree
needs neither. This walk reads each node's child fields directly, skips whitespace,
comments and punctuation (unless a rule asks for them), and uses an explicit stack, so
deeply nested expressions cannot exhaust the interpreter's recursion limit.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import libcst as cst

# Node types that carry no meaning a rule needs: whitespace, comments, punctuation.
_TRIVIA_BASES: tuple[type, ...] = (
    cst.BaseParenthesizableWhitespace,
    cst.TrailingWhitespace,
    cst.EmptyLine,
    cst.Newline,
    cst.Comment,
    cst.Comma,
    cst.Dot,
    cst.Colon,
    cst.Semicolon,
    cst.AssignEqual,
    cst.LeftParen,
    cst.RightParen,
    cst.LeftSquareBracket,
    cst.RightSquareBracket,
    cst.LeftCurlyBrace,
    cst.RightCurlyBrace,
    cst.ImportStar,
)


def _concrete_node_types() -> set[type]:
    found: set[type] = set()
    pending: list[type] = [cst.CSTNode]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return {c for c in found if dataclasses.is_dataclass(c)}


NODE_TYPES: frozenset[type] = frozenset(_concrete_node_types())
TRIVIA_TYPES: frozenset[type] = frozenset(t for t in NODE_TYPES if issubclass(t, _TRIVIA_BASES))

# Definitions declare ``body`` before their decorators, bases and return annotation;
# the walk goes in source order.
_DEFINITION_ORDER = {"leading_lines": -1, "decorators": 0, "body": 2}


def _field_order(cls: type) -> tuple[str, ...]:
    names = [f.name for f in dataclasses.fields(cls)]
    if cls in (cst.FunctionDef, cst.ClassDef):
        names.sort(key=lambda n: _DEFINITION_ORDER.get(n, 1))
    return tuple(names)


class Walker:
    """Walks trees, calling ``on_enter``/``on_leave`` for every node not skipped."""

    def __init__(self, include: Iterable[type] = ()) -> None:
        self.skip = TRIVIA_TYPES - frozenset(include)
        self.fields: dict[type, tuple[str, ...]] = {}

    def _children(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        cls = type(node)
        names = self.fields.get(cls)
        if names is None:
            names = self.fields[cls] = _field_order(cls)
        skip = self.skip
        kids: list[cst.CSTNode] = []
        for name in names:
            value = getattr(node, name)
            kind = type(value)
            if kind in NODE_TYPES:
                if kind not in skip:
                    kids.append(value)
            elif kind is tuple or kind is list:
                for item in value:
                    item_kind = type(item)
                    if item_kind in NODE_TYPES and item_kind not in skip:
                        kids.append(item)
        return kids

    def walk(
        self,
        root: cst.CSTNode,
        on_enter: Callable[[cst.CSTNode], None],
        on_leave: Callable[[cst.CSTNode], None],
    ) -> None:
        on_enter(root)
        stack: list[tuple[cst.CSTNode, list[cst.CSTNode], int]] = [(root, self._children(root), 0)]
        children = self._children
        while stack:
            node, kids, index = stack[-1]
            if index == len(kids):
                stack.pop()
                on_leave(node)
                continue
            stack[-1] = (node, kids, index + 1)
            child = kids[index]
            on_enter(child)
            stack.append((child, children(child), 0))
