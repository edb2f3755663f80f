"""Small structural helpers over LibCST nodes shared by several analyses."""

from __future__ import annotations

import ast
import re
from functools import lru_cache

import libcst as cst

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
