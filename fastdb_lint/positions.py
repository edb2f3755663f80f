"""Source positions of the few nodes that produced findings or fixes.

LibCST's ``PositionProvider`` (through ``MetadataWrapper``) runs a batched visit over the
whole tree and then generates the code of the whole module, recording a range for every
node. A linter only needs the nodes it reports: this runs the same position-tracking
code generation without the extra visit, and stops as soon as the last node asked for
has its range.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import libcst as cst
from libcst._position import CodePosition, CodeRange
from libcst.metadata.position_provider import PositionProvidingCodegenState


class _Done(Exception):
    pass


class _Computed:
    """Stands in for the metadata provider the codegen state reports to."""

    def __init__(self) -> None:
        self._computed: dict[cst.CSTNode, CodeRange] = {}


class _TargetedState(PositionProvidingCodegenState):
    __slots__ = ("targets", "remaining", "done")

    def __init__(self, module: cst.Module, targets: set[cst.CSTNode]) -> None:
        super().__init__(
            default_indent=module.default_indent,
            default_newline=module.default_newline,
            provider=_Computed(),  # type: ignore[arg-type]
        )
        self.targets = targets
        self.remaining = len(targets)
        self.done = False

    @contextmanager
    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> Iterator[None]:
        start = CodePosition(self.line, self.column)
        try:
            yield
        finally:
            if not self.done:
                computed = self.provider._computed
                end = CodePosition(self.line, self.column)
                start = computed[start_node].start if start_node is not None else start
                end = computed[end_node].end if end_node is not None else end
                computed[node] = CodeRange(start, end)

    def after_codegen(self, node: cst.CSTNode) -> None:
        super().after_codegen(node)
        if node in self.targets:
            self.targets.discard(node)
            self.remaining -= 1
            if self.remaining == 0:
                self.done = True
                raise _Done


def node_positions(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> dict[cst.CSTNode, CodeRange]:
    """Ranges (as ``PositionProvider`` defines them) of ``nodes``, which must belong to
    ``module``'s tree."""
    wanted = set(nodes)
    if not wanted:
        return {}
    state = _TargetedState(module, set(wanted))
    try:
        module._codegen(state)
    except _Done:
        pass
    computed = state.provider._computed
    return {node: computed[node] for node in wanted if node in computed}
