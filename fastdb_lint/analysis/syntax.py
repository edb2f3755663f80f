"""Small structural helpers over LibCST nodes shared by several analyses."""

from __future__ import annotations

import libcst as cst


def target_names(target: cst.CSTNode) -> list[str]:
    """Names bound by an assignment, loop or ``with`` target (``a, (b, *c)``)."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        names: list[str] = []
        for element in target.elements:
            names.extend(target_names(element.value))
        return names
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    return []


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
