"""Discovery: the combined-regex pre-check of gitignore patterns agrees with pathspec."""

from __future__ import annotations

import itertools

import pathspec
import pytest

from fastdb_lint.discovery import Patterns

PATTERN_SETS = [
    ["dist/", "*.pyc", "!keep.pyc", "/build", "docs/**/x", "foo"],
    ["*", "!*.py", "!*/"],
    ["migrations/", "!migrations/env.py", "**/generated/**", "a?c.py", "[ab].py"],
    ["# comment", "", "\\#literal.py", "trailing\\ ", "/only-root.py", "nested/dir/"],
    ["!not-ignored.py"],
    [],
]
PATHS = [
    "dist/", "dist/a.py", "src/dist/", "x.pyc", "keep.pyc", "sub/keep.pyc", "build", "build/", "src/build/",
    "docs/a/b/x", "docs/x", "foo", "foo/", "a/foo/b.py", "app.py", "app/", "migrations/", "migrations/env.py",
    "pkg/generated/models.py", "abc.py", "aXc.py", "a.py", "c.py", "#literal.py", "only-root.py", "sub/only-root.py",
    "nested/dir/", "nested/dir/file.py", "not-ignored.py", "trailing ",
]


@pytest.mark.parametrize("lines", PATTERN_SETS)
@pytest.mark.parametrize("kind", ["gitignore-spec", "pathspec"])
def test_precheck_never_changes_the_answer(lines, kind):
    spec = pathspec.GitIgnoreSpec.from_lines(lines) if kind == "gitignore-spec" else pathspec.PathSpec.from_lines("gitignore", lines)
    patterns = Patterns(spec)
    for path in PATHS:
        assert patterns.match_file(path) == bool(spec.match_file(path)), (lines, path)


def test_merged_patterns_keep_gitignore_order():
    first = Patterns(pathspec.GitIgnoreSpec.from_lines(["*.py"]))
    second = Patterns(pathspec.GitIgnoreSpec.from_lines(["!keep.py"]))
    merged = first + second
    assert merged.match_file("drop.py") and not merged.match_file("keep.py")
    for path in itertools.chain(PATHS, ["keep.py"]):
        assert merged.match_file(path) == bool((first.spec + second.spec).match_file(path))
