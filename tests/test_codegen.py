"""The code of a node, generated without position tracking, is LibCST's."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst._nodes.base import CSTCodegenError

from fastdb_lint.codegen import code_of
from tests.test_positions import REPO, REPO_FILES, TRICKY


def _every_node(module: cst.Module) -> list[cst.CSTNode]:
    nodes: list[cst.CSTNode] = []
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.children)
    return nodes


def _check(module: cst.Module) -> None:
    for node in _every_node(module):
        try:
            expected = module.code_for_node(node)
        except CSTCodegenError:
            # Some nodes only generate inside their parent (a parameter's default
            # indicator is chosen there): alone, both refuse.
            with pytest.raises(CSTCodegenError):
                code_of(module, node)
            continue
        assert code_of(module, node) == expected, type(node).__name__


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_sources(name: str) -> None:
    _check(cst.parse_module(TRICKY[name]))


@pytest.mark.parametrize("path", REPO_FILES[:12], ids=lambda path: str(path.relative_to(REPO)))
def test_repo_sources(path: Path) -> None:
    _check(cst.parse_module(path.read_text(encoding="utf-8")))


def test_the_module_s_indentation_and_line_endings() -> None:
    module = cst.parse_module("class A:\r\n\tdef f(self):\r\n\t\treturn (1,\r\n\t\t\t2)\r\n")
    _check(module)
    block = cst.IndentedBlock(body=[cst.SimpleStatementLine(body=[cst.Pass()])])
    assert code_of(module, block) == "\r\n\tpass\r\n"
