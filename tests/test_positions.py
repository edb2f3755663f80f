"""Targeted positions agree with LibCST's PositionProvider."""

from __future__ import annotations

import random

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from fastdb_lint.positions import node_positions
from fastdb_lint.walk import Walker
from tests.conftest import REPO


def test_positions_match_position_provider():
    rng = random.Random(7)
    files = sorted((REPO / "fixtures").rglob("*.py")) + sorted((REPO / "fastdb_lint" / "rules").glob("*.py"))[:3]
    for path in files:
        module = cst.parse_module(path.read_text(encoding="utf-8"))
        expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        nodes: list[cst.CSTNode] = []
        Walker().walk(module, nodes.append, lambda node: None)
        sample = rng.sample(nodes, min(40, len(nodes)))
        got = node_positions(module, sample)
        assert set(got) == set(sample), path
        for node in sample:
            assert got[node] == expected[node], (path, type(node).__name__)


def test_no_nodes_no_work():
    assert node_positions(cst.parse_module("x = 1\n"), []) == {}
