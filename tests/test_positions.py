"""Targeted positions agree with LibCST's PositionProvider, for every kind of node."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import hypothesmith
import libcst as cst
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from libcst._position import CodeRange
from libcst.metadata import MetadataWrapper, PositionProvider

from fastdb_lint.positions import node_positions
from tests.conftest import REPO

TRICKY: dict[str, str] = {
    "decorators_and_comments": (
        "# header comment\n"
        "\n"
        "import os  # trailing\n"
        "\n"
        "\n"
        "# before the decorator\n"
        "@decorator\n"
        "# between decorators\n"
        "@other(\n"
        "    arg,  # inside\n"
        ")\n"
        "\n"
        "def f(a, /, b: int = 1, *args, c, **kwargs) -> None:\n"
        "    '''Docstring.'''\n"
        "    # leading comment\n"
        "    return a  # trailing\n"
        "        # deeper comment owned by the block\n"
        "    # comment at block level\n"
        "# comment at module level\n"
        "\n"
        "class C(Base, metaclass=Meta):\n"
        "    x: int = 0\n"
        "\n"
        "    @property\n"
        "    def y(self):\n"
        "        return self.x\n"
        "\n"
        "    class Inner:\n"
        "        pass\n"
        "# footer comment\n"
    ),
    "continuations_and_strings": (
        "x = 1 + \\\n"
        "    2\n"
        "if a and \\\n"
        "        b:\n"
        "    y = '''multi\n"
        "line\n"
        "string'''\n"
        '    z = """\n'
        '    """ + "tail"\n'
        "w = ('implicit'\n"
        "     'concatenation')\n"
        "v = (\n"
        "    1,\n"
        "\n"
        "    # a comment inside brackets\n"
        "    2,\n"
        ")\n"
        "u = {\n"
        "    'k': [1, 2,\n"
        "          3],\n"
        "}\n"
    ),
    "fstrings_and_tstrings": (
        "name = 'x'\n"
        "a = f'{name!r:>{width}} and {{braces}}'\n"
        "b = f'''multi\n"
        "{name}\n"
        "line {value:%Y-%m-%d}'''\n"
        "c = f\"{f'{nested}'}\" r'raw\\n' u'uni'\n"
        "d = t'hello {name}'\n"
        "e = f'{x=}'\n"
    ),
    "compound_statements": (
        "async def main():\n"
        "    async with session() as s, other() as (a, b):\n"
        "        async for row in s.stream(q):\n"
        "            await row\n"
        "    while True:\n"
        "        break\n"
        "    else:\n"
        "        pass\n"
        "    for i in range(3):\n"
        "        continue\n"
        "    else:\n"
        "        i = None\n"
        "    try:\n"
        "        risky()\n"
        "    except (ValueError, TypeError) as exc:\n"
        "        raise RuntimeError() from exc\n"
        "    else:\n"
        "        ok()\n"
        "    finally:\n"
        "        done()\n"
        "    try:\n"
        "        group()\n"
        "    except* OSError:\n"
        "        pass\n"
        "    if a:\n"
        "        pass\n"
        "    elif b:\n"
        "        pass\n"
        "    else:\n"
        "        pass\n"
        "    with open(p) as fh: data = fh.read()\n"
        "    if x: y = 1; z = 2\n"
        "    else: y = 2\n"
    ),
    "match_statement": (
        "match command.split():\n"
        "    case [action]:\n"
        "        go(action)\n"
        "    case [Point(x=0, y=0), *rest] if rest:\n"
        "        origin()\n"
        "    case {'k': v, **others} | None:\n"
        "        pass\n"
        "    case _:\n"
        "        fallback()\n"
        "after = 1\n"
    ),
    "expressions": (
        "a = b = (c)\n"
        "x = ((1 + 2) * (3 - -4)) ** 2 // 5 % 6 @ m\n"
        "f = lambda x, *y, z=1, **w: (x, y, z, w)\n"
        "if (n := len(items)) > 10: print(n)\n"
        "g = [i for i in range(10) if i % 2 for j in range(i)]\n"
        "h = {k: v for k, v in pairs}\n"
        "s = {*a, *b}\n"
        "t = a if b else c\n"
        "u = not a or b and c\n"
        "v = x[1:2, ::3, ...]\n"
        "w = yield_ = await_ = None\n"
        "del a, b[0]\n"
        "assert x, 'message'\n"
        "x += 1; y -= 2; z @= m\n"
        "print(*args, sep='', **kw)\n"
        "obj.attr.method()[0](1)(2)\n"
        "r = 1_000 + 0x1F + 1.5e-3 + 2j\n"
    ),
    "scopes_and_types": (
        "global_var = 1\n"
        "def f():\n"
        "    global global_var\n"
        "    def g():\n"
        "        nonlocal_var = 1\n"
        "        def h():\n"
        "            nonlocal nonlocal_var\n"
        "type Alias = int\n"
        "type Generic[T, *Ts, **P] = dict[T, tuple[*Ts]]\n"
        "def generic[T: int](x: T) -> T:\n"
        "    return x\n"
        "class Box[T]:\n"
        "    item: T\n"
        "from . import a\n"
        "from ..pkg import (b as c,\n"
        "                   d)\n"
        "from x import *\n"
        "import a.b.c as d, e\n"
    ),
    "semicolons_and_one_liners": "x = 1; y = 2;\nif x: pass\nwhile y: y -= 1; continue\nclass E(Exception): pass\n",
    "crlf": "import os\r\n\r\n\r\ndef f():\r\n    # comment\r\n    return os.sep\r\n\r\nx = '''a\r\nb'''\r\n",
    "lone_cr": "x = 1\ry = (1,\r     2)\rif x:\r    z = 3\r",
    "mixed_newlines": "a = 1\r\nb = 2\nc = '''x\ry\r\nz'''\nd = 4\r\n",
    "tabs_and_form_feeds": "if x:\n\tif y:\n\t\tz = 1\t# tab comment\n\tw = 2\n\x0c\ndef f():\n \t return 1\n",
    "unicode": "naïve = 'ünïcödé'  # コメント\nπ = 3.14\ndef 函数(参数):\n    return 参数\n",
    "no_trailing_newline": "def f():\n    return 1\nx = f()",
    "only_comments": "# one\n\n# two\n",
    "blank_lines_at_end": "x = 1\n\n\n\n",
    "empty": "",
    "deep_nesting": (
        "class A:\n"
        "    class B:\n"
        "        def c(self):\n"
        "            if x:\n"
        "                for y in z:\n"
        "                    while w:\n"
        "                        with v:\n"
        "                            try:\n"
        "                                target(deep)\n"
        "                            except E:\n"
        "                                pass\n"
        "        def d(self):\n"
        "            return 1\n"
        "    last = 2\n"
        "tail = 3\n"
    ),
}


REPO_FILES = sorted((REPO / "fixtures").rglob("*.py")) + sorted((REPO / "fastdb_lint" / "rules").glob("*.py"))[:3]


def _expected(module: cst.Module) -> Mapping[cst.CSTNode, CodeRange]:
    return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)


def _in_source_order(expected: Mapping[cst.CSTNode, CodeRange]) -> list[cst.CSTNode]:
    return sorted(expected, key=lambda node: (expected[node].start.line, expected[node].start.column))


def _check(
    module: cst.Module, targets: Sequence[cst.CSTNode], expected: Mapping[cst.CSTNode, CodeRange], label: str
) -> None:
    got = node_positions(module, targets)
    assert set(map(id, got)) == set(map(id, targets)), label
    for node in targets:
        assert got[node] == expected[node], (label, type(node).__name__, got[node], expected[node])


def _deepest(module: cst.Module) -> cst.CSTNode:
    best: tuple[int, cst.CSTNode] = (0, module)
    stack: list[tuple[int, cst.CSTNode]] = [(0, module)]
    while stack:
        depth, node = stack.pop()
        if depth > best[0]:
            best = (depth, node)
        stack.extend((depth + 1, child) for child in node.children)
    return best[1]


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_sources_every_node_alone_and_together(name: str) -> None:
    source = TRICKY[name]
    module = cst.parse_module(source)
    expected = _expected(module)
    nodes = list(expected)
    _check(module, nodes, expected, name)
    for node in nodes:
        _check(module, [node], expected, f"{name}: {type(node).__name__}")


@pytest.mark.parametrize("path", REPO_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_repo_sources(path: Path) -> None:
    rng = random.Random(7)
    label = str(path.relative_to(REPO))
    module = cst.parse_module(path.read_text(encoding="utf-8"))
    expected = _expected(module)
    nodes = _in_source_order(expected)
    _check(module, nodes, expected, label)
    picks: list[list[cst.CSTNode]] = [
        [nodes[0]],
        [nodes[-1]],
        [module],
        [_deepest(module)],
        [nodes[0], nodes[-1]],
        [_deepest(module), *module.body[-1:]],
    ]
    for size in (1, 2, 3, 5, 8, 20):
        picks.extend(rng.sample(nodes, min(size, len(nodes))) for _ in range(5))
    # Every node alone in small files, an even spread of them in larger ones.
    picks.extend([node] for node in nodes[:: max(1, len(nodes) // 150)])
    for targets in picks:
        _check(module, targets, expected, label)


@settings(max_examples=40, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(source=hypothesmith.from_node() | hypothesmith.from_grammar(), data=st.data())
def test_generated_programs(source: str, data: st.DataObject) -> None:
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        reject()
    expected = _expected(module)
    nodes = list(expected)
    _check(module, nodes, expected, "all")
    for _ in range(3):
        targets = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=4))
        _check(module, targets, expected, "drawn")


def test_constructed_trees() -> None:
    module = cst.parse_module("if x:\n    pass\n# c\ny = 1\nz = (2,\n     3)\n")
    statement = module.body[0]
    assert isinstance(statement, cst.If)
    trees = [
        # An empty indented block generates ``pass`` and a default newline.
        module.with_changes(body=[statement.with_changes(body=cst.IndentedBlock(body=[])), *module.body[1:]]),
        module.with_changes(default_newline="\r\n"),
        module.with_changes(default_newline="\r", has_trailing_newline=False),
        # An empty newline: the next statement continues on the same line.
        cst.Module(
            body=[
                cst.SimpleStatementLine(
                    body=[cst.Expr(cst.Name("a"))],
                    trailing_whitespace=cst.TrailingWhitespace(newline=cst.Newline("")),
                ),
                cst.SimpleStatementLine(body=[cst.Expr(cst.Name("b"))]),
                cst.SimpleStatementLine(body=[cst.Expr(cst.Name("c"))]),
            ]
        ),
        # Neither a single line break as default newline nor an indent without one.
        module.with_changes(default_newline="\n\n"),
        module.with_changes(default_indent=" \\\n "),
        cst.Module(body=[]),
    ]
    for index, tree in enumerate(trees):
        expected = _expected(tree)
        nodes = list(expected)
        _check(tree, nodes, expected, f"tree {index}")
        for node in nodes:
            _check(tree, [node], expected, f"tree {index}: {type(node).__name__}")


def test_nodes_outside_the_tree_are_left_out() -> None:
    module = cst.parse_module("x = 1\ny = 2\n")
    stranger = cst.Name("x")
    statement = cst.ensure_type(module.body[1], cst.SimpleStatementLine)
    name = cst.ensure_type(statement.body[0], cst.Assign).targets[0].target
    got = node_positions(module, [stranger, name, name])
    assert list(got) == [name]
    assert got[name] == _expected(module)[name]


def test_no_nodes_no_work() -> None:
    assert node_positions(cst.parse_module("x = 1\n"), []) == {}
