"""Small structural helpers over LibCST nodes shared by several analyses."""

from __future__ import annotations

import ast
import re
from functools import lru_cache

import libcst as cst

from fastdb_lint.analysis.imports import ImportTable
from fastdb_lint.analysis.typeexpr import UNKNOWN_TYPE, TypeExpr, type_from_string
from fastdb_lint.walk import Walker

_WALKER = Walker()
_QUOTES = frozenset("'\"")
_SURROGATE = re.compile("[\ud800-\udfff]")


def target_names(target: cst.CSTNode) -> list[str]:
    """Names bound by an assignment, loop or ``with`` target (``a, (b, *c)``)."""
    if type(target) is cst.Name:
        return [target.value]
    if type(target) is cst.Tuple or type(target) is cst.List:
        names: list[str] = []
        for element in target.elements:
            names.extend(target_names(element.value))
        return names
    if type(target) is cst.StarredElement:
        return target_names(target.value)
    return []


def name_counts(root: cst.CSTNode, *, attribute_names: bool = True) -> dict[str, int]:
    """How often each name occurs in ``root``'s tree: loads and stores, and the names
    after a dot unless ``attribute_names`` is False."""
    counts: dict[str, int] = {}
    pending = [root]
    while pending:
        node = pending.pop()
        if type(node) is cst.Name:
            counts[node.value] = counts.get(node.value, 0) + 1
            continue
        children = _WALKER.children(node)
        if not attribute_names and type(node) is cst.Attribute:
            attr = node.attr
            children = [child for child in children if child is not attr]
        pending.extend(children)
    return counts


def statement_blocks(stmt: cst.CSTNode) -> list[object]:
    """The statement sequences nested directly in a compound statement: its body,
    ``elif``/``else`` branches, ``finally`` and ``except`` handlers."""
    blocks: list[object] = []
    body = getattr(stmt, "body", None)
    if isinstance(body, cst.IndentedBlock):
        blocks.append(body.body)
    for attr in ("orelse", "finalbody"):
        extra = getattr(stmt, attr, None)
        if isinstance(extra, cst.If):
            blocks.extend(statement_blocks(extra))
        elif extra is not None and isinstance(getattr(extra, "body", None), cst.IndentedBlock):
            blocks.append(extra.body.body)
    for handler in getattr(stmt, "handlers", ()):
        if isinstance(handler.body, cst.IndentedBlock):
            blocks.append(handler.body.body)
    return blocks


def string_prefix(node: cst.SimpleString) -> str:
    """``node.prefix``: the literal's prefix (``r``, ``b``, ``rb``...), lowercased."""
    text = node.value
    for index, char in enumerate(text):
        if char in _QUOTES:
            return text[:index].lower()
    return text.lower()


def string_value(node: cst.SimpleString) -> str | bytes:
    """``node.evaluated_value``: what the literal evaluates to."""
    return _literal_value(node.value)


@lru_cache(maxsize=4096)
def _literal_value(text: str) -> str | bytes:
    plain = _plain_value(text)
    return plain if plain is not None else ast.literal_eval(text)


def _plain_value(text: str) -> str | None:
    """The value of a ``str`` literal that evaluates to its text as written (no escape
    sequences, no line endings the compiler would translate), else None."""
    if text[0] not in _QUOTES:
        if len(text) < 2 or text[0] not in "rRuU" or text[1] not in _QUOTES:
            return None
        text = text[1:]
    quote = text[:3] if text[:3] in ('"""', "'''") and len(text) >= 6 else text[0]
    if len(text) < 2 * len(quote) or not text.endswith(quote):
        return None
    body = text[len(quote) : -len(quote)]
    if "\\" in body or "\r" in body or "\x00" in body or quote in body or body.endswith(quote[0]):
        return None
    if len(quote) == 1 and "\n" in body:
        return None
    if not body.isascii() and _SURROGATE.search(body):
        return None
    return body


def dotted_cst(node: cst.CSTNode | None) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while type(node) is cst.Attribute:
        parts.append(node.attr.value)
        node = node.value
    if type(node) is cst.Name:
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def type_from_cst(node: cst.CSTNode | None, imports: ImportTable) -> TypeExpr:
    if node is None:
        return UNKNOWN_TYPE
    if isinstance(node, cst.Annotation):
        return type_from_cst(node.annotation, imports)
    if isinstance(node, cst.Name) and node.value == "None":
        return ("None", ())
    if isinstance(node, cst.SimpleString):
        value = string_value(node)
        return type_from_string(value if isinstance(value, str) else "", imports)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
        return ("|", (type_from_cst(node.left, imports), type_from_cst(node.right, imports)))
    if isinstance(node, cst.Subscript):
        head = type_from_cst(node.value, imports)[0]
        args = []
        for element in node.slice:
            sl = element.slice
            if isinstance(sl, cst.Index):
                args.append(type_from_cst(sl.value, imports))
        return (head, tuple(args))
    if isinstance(node, cst.Call):
        func = dotted_cst(node.func)
        qual = imports.resolve(func) if func else None
        args = tuple(type_from_cst(a.value, imports) for a in node.args[:1] if a.keyword is None)
        return (f"call:{qual}" if qual else None, args)
    dotted = dotted_cst(node)
    if dotted is not None:
        return (imports.resolve(dotted), ())
    return UNKNOWN_TYPE
