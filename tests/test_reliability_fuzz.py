"""Property tests: the engine and the fixer never raise, whatever the input.

Programs come from ``hypothesmith`` (random text that follows Python's grammar, and
valid programs built from LibCST nodes) and from every rule's own examples, broken in
many small ways. A header comment names every trigger word so that every rule (opt-in
ones included) looks at every program.

The normal suite runs a few hundred examples with a fixed seed; set
``FASTDB_LINT_FUZZ_EXAMPLES`` (e.g. 5000) for a longer, randomised run.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import hypothesmith
import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdb_lint.config import Settings
from fastdb_lint.diagnostics import Finding
from fastdb_lint.engine import Engine, FixResult, _reproduces, build_index
from fastdb_lint.parsing import NestingError, parse_module
from fastdb_lint.prefilter import BASE_TRIGGERS, INDEX_TRIGGERS
from fastdb_lint.registry import PARSE_ERROR, all_rules, resolve_selection
from fastdb_lint.source import SourceText

REPO = Path(__file__).resolve().parents[1]
FUZZ_EXAMPLES = int(os.environ.get("FASTDB_LINT_FUZZ_EXAMPLES", "0") or 0)
LONG_RUN = FUZZ_EXAMPLES > 0

settings.register_profile(
    "fastdb-lint-fuzz",
    deadline=None,
    derandomize=not LONG_RUN,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FUZZ = settings.get_profile("fastdb-lint-fuzz")


def examples(normal: int) -> settings:
    """The profile with ``normal`` examples, or the long run's count."""
    return settings(FUZZ, max_examples=FUZZ_EXAMPLES or normal)


pytestmark = [
    pytest.mark.filterwarnings("ignore::SyntaxWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

ALL_CODES: tuple[str, ...] = tuple(all_rules())


def _trigger_words() -> list[str]:
    words = set(BASE_TRIGGERS) | set(INDEX_TRIGGERS)
    for rule in all_rules().values():
        words |= set(rule.triggers or ())
    return sorted(words)


HEADER = "# fuzz: " + " ".join(_trigger_words()) + "\n"
PATH = "app/fuzz.py"


def all_rules_settings() -> Settings:
    return Settings(root=Path("."), select=ALL_CODES, enabled=resolve_selection(ALL_CODES))


SETTINGS = all_rules_settings()


@dataclass(frozen=True)
class Program:
    code: str
    path: str = PATH
    files: tuple[tuple[str, str], ...] = ()


def _engine(program: Program, code: str | None = None) -> Engine:
    files = {**dict(program.files), program.path: program.code if code is None else code}
    return Engine(SETTINGS, build_index([(p, p, t) for p, t in files.items()]))


def parses(code: str) -> bool:
    try:
        parse_module(code)
    except (cst.ParserSyntaxError, NestingError, RecursionError, MemoryError):
        return False
    except Exception:  # noqa: BLE001 - the native parser's other rejections
        return False
    return True


def _check_locations(findings: list[Finding], source: SourceText) -> None:
    rows = len(source.lines)
    for finding in findings:
        assert 1 <= finding.start.row <= rows, finding
        assert finding.start.column >= 1, finding
        assert (finding.end.row, finding.end.column) >= (finding.start.row, finding.start.column) or (
            finding.code == PARSE_ERROR
        ), finding
        if finding.fix is not None:
            for edit in finding.fix.edits:
                assert 0 <= edit.start <= edit.end <= len(source.text), (finding, edit)


def check_lint(program: Program) -> None:
    """Linting raises nothing, reports rule crashes nowhere, and a text that does not
    parse gets exactly one finding: FDB001."""
    engine = _engine(program)
    source = SourceText(program.code)
    result = engine.lint(program.path, program.path, source)
    assert not result.internal_errors, (result.internal_errors, program.code)
    _check_locations(result.findings, source)
    if not program.path.endswith(".py") or not (result.parsed or result.findings):
        return  # not Python, or no rule had a reason to parse the file
    parse_errors = [f for f in result.findings if f.code == PARSE_ERROR]
    if parses(program.code):
        assert not parse_errors, (parse_errors, program.code)
    else:
        assert len(parse_errors) == 1 and len(result.findings) == 1, (result.findings, program.code)


def check_fix(program: Program) -> FixResult:
    """Fixing raises nothing; the output parses (when the input did), and fixing the
    output again (with a fresh index, as a second CLI run would) changes nothing."""
    source = SourceText(program.code)
    outcome = _engine(program).fix(program.path, program.path, source, unsafe=True)
    if outcome.error is not None and "does not reproduce" in outcome.error:
        # A layout LibCST cannot reproduce: refusing to fix is the right outcome.
        assert outcome.text == program.code and not _reproduces(program.code), program.code
        return outcome
    assert outcome.error is None, (outcome.error, program.code)
    assert not outcome.result.internal_errors, (outcome.result.internal_errors, program.code)
    if not parses(program.code):
        assert outcome.text == program.code
        return outcome
    assert parses(outcome.text), (program.code, outcome.text)
    again = _engine(program, outcome.text).fix(program.path, program.path, SourceText(outcome.text), unsafe=True)
    assert again.error is None, (again.error, outcome.text)
    assert again.text == outcome.text, (program.code, outcome.text, again.text)
    return outcome


# -- programs -------------------------------------------------------------------


def _rule_examples() -> list[Program]:
    found: list[Program] = []
    for rule in all_rules().values():
        for example in [*rule.invalid, *rule.valid]:
            found.append(Program(example.code, example.path, tuple(sorted(example.files.items()))))
    return found


RULE_EXAMPLES = _rule_examples()
ODD_TEXT = ["\r", "\r\n", "\n", "\t", "\x0c", "\\", "\\\n", "(", ")", "[", "]", "{", "}", "'", '"', '"""', "#", ":",
            "\ufeff", "\u2028", "\xe9", "\x1b", " ", "    ", "async ", "await ", "lambda: ", "*", "**", "@", ",",
            "=", ":=", "->", "...", "f'{", "}'", "t'{x}'", "# noqa", "# noqa: FDB", "# fastdb-lint: noqa", "\r\r"]


# Statements spliced into rule examples: newer syntax, odd forms, and rebindings of
# the names rules track.
SNIPPETS = [
    "pass\n",
    "x = (yield)\n",
    "async with a as b, c as d:\n    pass\n",
    "match x:\n    case {'a': 1, **rest}:\n        pass\n    case [_, *_] | None:\n        pass\n",
    "type A[T] = list[T]\n",
    "def f[T: int, *Ts, **P](x: T) -> T:\n    return x\n",
    "class C[T](Base):\n    pass\n",
    "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n",
    "x = t'{a!r:>{w}}'\n",
    "x = f'{a=}{b!r:{c}}' f\"{'nested'}\"\n",
    "global session\n",
    "nonlocal session\n",
    "del session\n",
    "session: AsyncSession\n",
    "session = None\n",
    "session, engine = engine, session\n",
    "(session := make())\n",
    "f = lambda session: session.commit()\n",
    "@decorator\nclass C(Base, metaclass=M):\n    __tablename__ = 'c'\n",
    "if True: x = 1; y = 2\n",
    "x = [i async for i in aiter() if await i]\n",
    "print(*a, **k)\n",
    "x = {**a, 'b': 1}\n",
    "raise X from None\n",
    "import a.b.c as d\n",
    "from . import x\n",
    "from .. import (a, b,)\n",
    "from sqlalchemy import *\n",
    "return\n",
    "yield from x\n",
    "await session.commit()\n",
    "async def f():\n    async for x in y:\n        await x\n",
    "with (open(a) as b, open(c) as d):\n    pass\n",
    "x @= y\n",
    "def f(a, /, b=..., *args, c, **kw) -> 'T':\n    pass\n",
    "x = b'\\x00' rb'\\N'\n",
    "x = 0x_1 + 1_000j\n",
    "session.execute(text(f'SELECT {x}'))\n",
    "select(User).where(User.id == 1).options(selectinload(User.items))\n",
    "Depends()\n",
    "relationship('X', lazy='dynamic', backref='y')\n",
]


# Textual swaps that keep rule examples plausible while changing what rules see.
SWAPS = [
    ("async def", "def"),
    ("def ", "async def "),
    ("await ", ""),
    ("session.", "await session."),
    ("session", "self.session"),
    ("session", "db"),
    ("import ", "import os, "),
    ("from sqlalchemy", "from sqlmodel"),
    ("AsyncSession", "Session"),
    ("Session", "AsyncSession"),
    ("select(", "select(*"),
    ("=", " = "),
    ("True", "False"),
    ("\"", "'"),
    ("    ", "\t"),
]


@st.composite
def generated(draw: st.DrawFn, strategy: st.SearchStrategy[str]) -> Program:
    return Program(HEADER + draw(strategy))


@st.composite
def broken_examples(draw: st.DrawFn) -> Program:
    """A rule example with a random edit: truncated, a line dropped or repeated, odd
    characters inserted, the line endings changed, or a generated program spliced in
    at a line's indentation."""
    example = draw(st.sampled_from(RULE_EXAMPLES))
    code = example.code
    lines = code.splitlines(keepends=True) or [""]
    operation = draw(
        st.sampled_from(
            ["truncate", "drop", "repeat", "insert", "endings", "splice", "dedent", "swap", "wrap", "rewrite"]
        )
    )
    index = draw(st.integers(0, len(lines) - 1))
    if operation == "truncate":
        code = code[: draw(st.integers(0, len(code)))]
    elif operation == "drop":
        code = "".join(lines[:index] + lines[index + 1 :])
    elif operation == "repeat":
        code = "".join(lines[: index + 1] + lines[index:])
    elif operation == "insert":
        offset = draw(st.integers(0, len(code)))
        code = code[:offset] + draw(st.sampled_from(ODD_TEXT)) + code[offset:]
    elif operation == "endings":
        code = code.replace("\n", draw(st.sampled_from(["\r\n", "\r", "\n\n", " \\\n"])))
    elif operation == "dedent":
        code = "".join(lines[:index] + [lines[index].lstrip(" ")] + lines[index + 1 :])
    elif operation == "swap":
        old, new = draw(st.sampled_from(SWAPS))
        code = code.replace(old, new, draw(st.integers(1, 3)))
    elif operation == "wrap":
        head = draw(st.sampled_from(["class Wrapper:\n", "async def wrapper(session):\n", "if TYPE_CHECKING:\n"]))
        code = head + textwrap.indent(code, "    ") + ("" if code.strip() else "    pass\n")
    elif operation == "rewrite":
        # Same code, odd layout: every line continued with a backslash where possible,
        # or each call's arguments split one per line.
        code = code.replace("(", "(\n", draw(st.integers(1, 5))) if draw(st.booleans()) else code.replace(", ", ",\n")
    else:
        snippet = draw(st.sampled_from(SNIPPETS))
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip(" \t"))]
        code = "".join(lines[:index]) + textwrap.indent(snippet, indent) + "".join(lines[index:])
    if example.path.endswith(".py") and draw(st.booleans()):
        code = HEADER + code
    return Program(code, example.path, example.files)


# -- linting --------------------------------------------------------------------


@examples(150)
@given(generated(hypothesmith.from_grammar()))
def test_lint_survives_grammar_programs(program: Program) -> None:
    check_lint(program)


@examples(30)
@given(generated(hypothesmith.from_node()))
def test_lint_survives_node_programs(program: Program) -> None:
    check_lint(program)


@examples(300)
@given(broken_examples())
def test_lint_survives_broken_rule_examples(program: Program) -> None:
    check_lint(program)


@examples(60)
@given(st.text())
def test_lint_survives_any_text(text: str) -> None:
    check_lint(Program(HEADER + text))


@examples(40)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_non_python_files_survive_any_text(text: str) -> None:
    """Rules that read other formats (``alembic.ini``) get arbitrary text too."""
    engine = Engine(SETTINGS, build_index([]))
    for name in ("alembic.ini", "migrations/alembic.ini"):
        for body in (text, "[alembic]\nsqlalchemy.url = " + text + "\n"):
            result = engine.lint(name, name, SourceText(body))
            assert not result.internal_errors, (result.internal_errors, body)


def test_every_rule_example_lints_cleanly_with_every_rule() -> None:
    """The rule examples, as they are, with all rules selected at once."""
    for program in RULE_EXAMPLES:
        check_lint(program)


# -- fixing ---------------------------------------------------------------------


@examples(25)
@given(generated(hypothesmith.from_node()))
def test_fix_survives_node_programs(program: Program) -> None:
    check_fix(program)


@examples(200)
@given(broken_examples())
def test_fix_survives_broken_rule_examples(program: Program) -> None:
    check_fix(program)


def test_fix_of_every_rule_example_parses_and_is_idempotent() -> None:
    for program in RULE_EXAMPLES:
        check_fix(program)


FIXTURE_FILES = sorted((REPO / "fixtures").rglob("*.py"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.relative_to(REPO / "fixtures").as_posix())
def test_fix_of_fixture_files_parses_and_is_idempotent(path: Path) -> None:
    """Each fixture file within its own sample project (paths relative to the project)."""
    project = REPO / "fixtures" / path.relative_to(REPO / "fixtures").parts[0]
    others = tuple(
        (p.relative_to(project).as_posix(), p.read_text(encoding="utf-8"))
        for p in FIXTURE_FILES
        if p != path and project in p.parents
    )
    program = Program(path.read_text(encoding="utf-8"), path.relative_to(project).as_posix(), others)
    check_lint(program)
    check_fix(program)
