"""A fast, iterative walk over a LibCST tree in source order.

LibCST's own ``CSTNode.visit`` rebuilds every node it passes (``_visit_and_replace_children``)
and visits every whitespace and punctuation node; a linter that only reads the tree
needs neither. This walk reads each node's child fields directly, skips whitespace,
comments and punctuation (unless a rule asks for them), and uses an explicit stack, so
deeply nested expressions cannot exhaust the interpreter's recursion limit.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Callable, Iterable, Iterator

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


def _concrete_node_types(base: type = cst.CSTNode) -> set[type]:
    """``base`` (when concrete) and its concrete subclasses."""
    found: set[type] = {base}
    pending: list[type] = [base]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return {c for c in found if dataclasses.is_dataclass(c)}


NODE_TYPES: frozenset[type] = frozenset(_concrete_node_types())
# Read from the MROs: ``issubclass`` on LibCST's abstract node classes costs an ABC check
# per pair, noticeable at start-up.
TRIVIA_TYPES: frozenset[type] = frozenset(t for t in NODE_TYPES if not set(t.__mro__).isdisjoint(_TRIVIA_BASES))

# Definitions declare ``body`` before their decorators, bases and return annotation;
# the walk goes in source order.
_DEFINITION_ORDER = {"leading_lines": -1, "decorators": 0, "body": 2}


def _field_order(cls: type) -> tuple[str, ...]:
    names = [f.name for f in dataclasses.fields(cls)]
    if cls in (cst.FunctionDef, cst.ClassDef):
        names.sort(key=lambda n: _DEFINITION_ORDER.get(n, 1))
    return tuple(names)


def _declared_node_types(annotation: object) -> frozenset[type] | None:
    """Concrete node types a field declared as ``annotation`` can hold; None when the
    annotation cannot be read that way (the field is then always walked)."""
    if isinstance(annotation, type):
        if annotation in NODE_TYPES or cst.CSTNode in annotation.__mro__:
            return _subclass_node_types(annotation)
        if annotation in (str, bool, int, type(None), cst.MaybeSentinel):
            return frozenset()
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return frozenset()
    if origin is None:
        return None
    found: set[type] = set()
    for argument in typing.get_args(annotation):
        kinds = _declared_node_types(argument)
        if kinds is None:
            return None
        found |= kinds
    return frozenset(found)


@functools.cache
def _subclass_node_types(base: type) -> frozenset[type]:
    return frozenset(_concrete_node_types(base))


def _walked_fields(cls: type, skip: frozenset[type]) -> tuple[str, ...]:
    """The fields of ``cls`` that can hold a node not in ``skip``, in walk order."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that does not resolve: walk every field
        return _field_order(cls)
    walked = []
    for name in _field_order(cls):
        kinds = _declared_node_types(hints.get(name))
        if kinds is None or not kinds <= skip:
            walked.append(name)
    return tuple(walked)


class Walker:
    """Walks trees, calling ``on_enter``/``on_leave`` for every node not skipped."""

    def __init__(self, include: Iterable[type] = ()) -> None:
        self.skip = TRIVIA_TYPES - frozenset(include)
        self.fields: dict[type, tuple[str, ...]] = {}

    def field_names(self, cls: type) -> tuple[str, ...]:
        """The fields of node type ``cls`` that can hold a walked node."""
        names = self.fields.get(cls)
        if names is None:
            names = self.fields[cls] = _walked_fields(cls, self.skip)
        return names

    def children(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """The node's children that are walked, in source order."""
        cls = type(node)
        names = self.fields.get(cls)
        if names is None:
            names = self.field_names(cls)
        skip = self.skip
        kids: list[cst.CSTNode] = []
        for name in names:
            value = getattr(node, name)
            kind = type(value)
            if kind is tuple or kind is list:
                for item in value:
                    item_kind = type(item)
                    if item_kind in NODE_TYPES and item_kind not in skip:
                        kids.append(item)
            elif kind in NODE_TYPES and kind not in skip:
                kids.append(value)
        return kids

    def walk(
        self,
        root: cst.CSTNode,
        on_enter: Callable[[cst.CSTNode], None],
        on_leave: Callable[[cst.CSTNode], None],
    ) -> None:
        children = self.children
        on_enter(root)
        nodes: list[cst.CSTNode] = [root]
        pending: list[Iterator[cst.CSTNode]] = [iter(children(root))]
        while pending:
            child = next(pending[-1], None)
            if child is None:
                pending.pop()
                on_leave(nodes.pop())
                continue
            on_enter(child)
            nodes.append(child)
            pending.append(iter(children(child)))
