"""Type annotations in a tree-independent form.

An annotation becomes a ``TypeExpr``: ``(head, args)`` where ``head`` is the canonical
qualified name of the type (or ``"|"`` for unions, ``"None"``, ``"call:<qualname>"`` for
a call such as ``Depends(get_db)`` inside ``Annotated``, or ``None`` when unknown).
Both the ``ast`` index pass and the LibCST lint pass convert into this form (the
latter with :func:`fastdb_lint.analysis.syntax.type_from_cst`, so that this module
needs no LibCST), and
:mod:`fastdb_lint.analysis.sessions` classifies it once.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from typing import Optional, Tuple

from fastdb_lint.analysis.imports import ImportTable, dotted_ast

TypeExpr = Tuple[Optional[str], Tuple["TypeExpr", ...]]

UNKNOWN_TYPE: TypeExpr = (None, ())


@lru_cache(maxsize=4096)
def _parse_annotation(value: str) -> ast.expr | None:
    try:
        return ast.parse(value.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def type_from_string(value: str, imports: ImportTable) -> TypeExpr:
    node = _parse_annotation(value)
    return UNKNOWN_TYPE if node is None else type_from_ast(node, imports)


def type_from_ast(node: ast.AST | None, imports: ImportTable) -> TypeExpr:
    if node is None:
        return UNKNOWN_TYPE
    if isinstance(node, ast.Constant):
        if node.value is None:
            return ("None", ())
        if isinstance(node.value, str):
            return type_from_string(node.value, imports)
        return UNKNOWN_TYPE
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return ("|", (type_from_ast(node.left, imports), type_from_ast(node.right, imports)))
    if isinstance(node, ast.Subscript):
        head = type_from_ast(node.value, imports)[0]
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return (head, tuple(type_from_ast(e, imports) for e in elts))
    if isinstance(node, ast.Call):
        func = dotted_ast(node.func)
        qual = imports.resolve(func) if func else None
        args = tuple(type_from_ast(a, imports) for a in node.args[:1])
        return (f"call:{qual}" if qual else None, args)
    dotted = dotted_ast(node)
    if dotted is not None:
        return (imports.resolve(dotted), ())
    return UNKNOWN_TYPE
