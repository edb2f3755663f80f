"""Code generation for nodes, without what only position tracking needs.

LibCST's ``CodegenState`` enters a generator-based context manager for every node it
generates, to let a subclass record positions; generating the code of a fix's content
needs none of that.
"""

from __future__ import annotations

from typing import Any

import libcst as cst
from libcst._nodes.internal import CodegenState


class _NoRecord:
    """A context manager that does nothing, shared by every node."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


NO_RECORD = _NoRecord()


class _CodeState(CodegenState):
    def record_syntactic_position(self, node: cst.CSTNode, **kwargs: Any) -> _NoRecord:  # type: ignore[override]
        return NO_RECORD


def code_of(module: cst.Module, node: cst.CSTNode) -> str:
    """``module.code_for_node(node)``: the code of ``node`` with ``module``'s
    indentation and line endings."""
    state = _CodeState(default_indent=module.default_indent, default_newline=module.default_newline)
    node._codegen(state)
    return "".join(state.tokens)
