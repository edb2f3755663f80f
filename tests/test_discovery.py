"""Discovery: gitignore patterns compiled by the literal pieces paths contain agree
with pathspec compiling every line."""

from __future__ import annotations

import itertools

import pathspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdb_lint.config import load
from fastdb_lint.discovery import Patterns, discover

PATTERN_SETS = [
    ["dist/", "*.pyc", "!keep.pyc", "/build", "docs/**/x", "foo"],
    ["*", "!*.py", "!*/"],
    ["migrations/", "!migrations/env.py", "**/generated/**", "a?c.py", "[ab].py"],
    ["# comment", "", "\\#literal.py", "trailing\\ ", "/only-root.py", "nested/dir/"],
    ["!not-ignored.py"],
    ["   ", "  lead.py", "tail.py  ", "**", "!**/keep/**"],
    ["a/**/b", "**/c", "d/**", "/e/f/", "[!x]y.py", "*.py[cod]", "\\!bang.py"],
    [],
]
PATHS = [
    "dist/", "dist/a.py", "src/dist/", "x.pyc", "keep.pyc", "sub/keep.pyc", "build", "build/", "src/build/",
    "docs/a/b/x", "docs/x", "foo", "foo/", "a/foo/b.py", "app.py", "app/", "migrations/", "migrations/env.py",
    "pkg/generated/models.py", "abc.py", "aXc.py", "a.py", "c.py", "#literal.py", "only-root.py", "sub/only-root.py",
    "nested/dir/", "nested/dir/file.py", "not-ignored.py", "trailing ",
    "  lead.py", "lead.py", "tail.py", "x/keep/y.py", "a/b", "a/x/y/b", "b", "c", "x/c", "d/z.py", "e/f/", "x/e/f/",
    "zy.py", "xy.py", "m.pyc", "m.py", "!bang.py",
]


@pytest.mark.parametrize("lines", PATTERN_SETS)
@pytest.mark.parametrize("kind", ["gitignore-spec", "gitignore"])
def test_lazy_compilation_never_changes_the_answer(lines, kind):
    spec = pathspec.GitIgnoreSpec.from_lines(lines) if kind == "gitignore-spec" else pathspec.PathSpec.from_lines("gitignore", lines)
    patterns = Patterns(lines, kind)
    for path in PATHS:
        assert patterns.match_file(path) == bool(spec.match_file(path)), (lines, path)


def test_merged_patterns_keep_gitignore_order():
    first, second = ["*.py"], ["!keep.py"]
    merged = Patterns(first, "gitignore-spec") + Patterns(second, "gitignore-spec")
    assert merged.match_file("drop.py") and not merged.match_file("keep.py")
    whole = pathspec.GitIgnoreSpec.from_lines(first + second)
    for path in itertools.chain(PATHS, ["keep.py"]):
        assert merged.match_file(path) == bool(whole.match_file(path))


def test_plain_names_are_matched_without_compiling():
    # The default excludes and the commonest .gitignore lines, with the cache directory
    # and __pycache__ folders that a project's own tree holds.
    patterns = Patterns([".fastdb_lint_cache", "__pycache__/", "node_modules", "*.py[cod]"], "gitignore-spec")
    assert patterns.match_file(".fastdb_lint_cache/")
    assert patterns.match_file("app/__pycache__/")
    assert not patterns.match_file("app/__pycache__")  # a file of that name: the line is for directories
    assert not patterns.match_file("app/models.py")
    assert patterns._specs == {}
    assert patterns.match_file("app/models.pyc")
    assert len(patterns._specs) == 1


def test_a_path_without_any_literal_piece_compiles_nothing():
    patterns = Patterns(["node_modules/", "*.egg-info/", "build/", "!build/keep"], "gitignore-spec")
    assert not patterns.match_file("src/app/models.py")
    assert patterns._specs == {}
    assert patterns.match_file("web/node_modules/")
    assert len(patterns._specs) == 1


_PATTERN_TOKENS = [
    "a", "b", "ab", ".py", "*", "**", "?", "/", "[ab]", "[!a]", "[^a]", "[]a]", "[[:alpha:]]", "[a-c]", "[", "]",
    "\\", "!", " ", "\t", "#", "x", "c",
]
_PATH_TOKENS = ["a", "b", "ab", ".py", "/", "x", " ", "!", "#", "*", "[", "]", "c", "^", ":"]


@pytest.mark.filterwarnings("ignore::FutureWarning")
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.lists(st.sampled_from(_PATTERN_TOKENS), max_size=5).map("".join), max_size=5),
    paths=st.lists(st.lists(st.sampled_from(_PATH_TOKENS), min_size=1, max_size=6).map("".join), max_size=8),
    kind=st.sampled_from(["gitignore-spec", "gitignore"]),
)
def test_lazy_compilation_agrees_with_pathspec_on_random_patterns(lines, paths, kind):
    spec = _whole_spec([line for line in lines if _valid(line, kind)], kind)
    patterns = Patterns(lines, kind)
    for path in paths:
        path = path.lstrip("/")
        assert patterns.match_file(path) == bool(spec.match_file(path)), (lines, path)


def _whole_spec(lines: list[str], kind: str) -> pathspec.PathSpec:
    if kind == "gitignore-spec":
        return pathspec.GitIgnoreSpec.from_lines(lines)
    return pathspec.PathSpec.from_lines("gitignore", lines)


def _valid(line: str, kind: str) -> bool:
    try:
        _whole_spec([line], kind)
    except ValueError:
        return False
    return True


def test_an_invalid_gitignore_line_matches_nothing_and_breaks_nothing(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("skipped/\\\n!\nbuild/\n", encoding="utf-8")
    for name in ("app.py", "build/gen.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x = 1\n", encoding="utf-8")
    found = discover([tmp_path], load(None, tmp_path))
    assert [p.relative_to(tmp_path).as_posix() for p in found.files] == ["app.py"]
    assert not found.errors
