"""Type annotations in a tree-independent form.

An annotation becomes a ``TypeExpr``: ``(head, args)`` where ``head`` is the canonical
qualified name of the type (or ``"|"`` for unions, ``"None"``, ``"call:<qualname>"`` for
a call such as ``Depends(get_db)`` inside ``Annotated``, or ``None`` when unknown).
Both the ``ast`` index pass and the LibCST lint pass convert into this form, and
:mod:`fastdb_lint.analysis.sessions` classifies it once.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from typing import Optional, Tuple

import libcst as cst

from fastdb_lint.analysis.imports import ImportTable, dotted_ast, dotted_cst
from fastdb_lint.analysis.syntax import string_value

TypeExpr = Tuple[Optional[str], Tuple["TypeExpr", ...]]

_UNKNOWN: TypeExpr = (None, ())


@lru_cache(maxsize=4096)
def _parse_annotation(value: str) -> ast.expr | None:
    try:
        return ast.parse(value.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _from_string(value: str, imports: ImportTable) -> TypeExpr:
    node = _parse_annotation(value)
    return _UNKNOWN if node is None else type_from_ast(node, imports)


def type_from_ast(node: ast.AST | None, imports: ImportTable) -> TypeExpr:
    if node is None:
        return _UNKNOWN
    if isinstance(node, ast.Constant):
        if node.value is None:
            return ("None", ())
        if isinstance(node.value, str):
            return _from_string(node.value, imports)
        return _UNKNOWN
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
    return _UNKNOWN


def type_from_cst(node: cst.CSTNode | None, imports: ImportTable) -> TypeExpr:
    if node is None:
        return _UNKNOWN
    if isinstance(node, cst.Annotation):
        return type_from_cst(node.annotation, imports)
    if isinstance(node, cst.Name) and node.value == "None":
        return ("None", ())
    if isinstance(node, cst.SimpleString):
        value = string_value(node)
        return _from_string(value if isinstance(value, str) else "", imports)
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
    return _UNKNOWN
