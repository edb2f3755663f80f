"""Paths to files: directory walks honouring excludes and ``.gitignore``.

Explicitly named files are always linted unless ``force-exclude`` is set (ruff's
convention); walked files are pruned by the default excludes, ``exclude`` /
``extend-exclude`` and, with ``respect-gitignore``, every ``.gitignore`` on the way plus
``.git/info/exclude``.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from fastdb_lint.config import Settings

if TYPE_CHECKING:
    import pathspec

DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".mypy_cache", ".nox",
    ".pants.d", ".pytype", ".ruff_cache", ".fastdb_lint_cache", ".svn", ".tox", ".venv",
    "__pypackages__", "_build", "buck-out", "dist", "node_modules", "site-packages", "venv",
    "__pycache__",
)
PYTHON_SUFFIXES = (".py", ".pyi")
EXTRA_FILE_NAMES = ("alembic.ini",)


class DiscoveryError(Exception):
    pass


@dataclass
class Discovered:
    files: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Patterns:
    """Gitignore-style lines, compiled only where they can matter.

    Every line that ignores paths has a literal piece (the longest text between its
    wildcards and slashes) that any path it matches contains; a path that contains none
    of them is matched by no line, without a regex. Otherwise only the lines it could
    match, with every negating line, are compiled (once per such set) and asked: the
    lines left out match nothing, so gitignore's "last match wins" gives the same
    answer. Most runs compile a handful of lines instead of every line of every file.
    """

    def __init__(self, lines: Sequence[str], kind: str = "gitignore") -> None:
        # ``kind``: "gitignore" (pathspec's pattern semantics) or "gitignore-spec"
        # (git's own precedence rules, as ``.gitignore`` files have them).
        self.lines = tuple(line for line in lines if line.strip() and not line.startswith("#"))
        self.kind = kind
        self._including = tuple(
            (index, _literal_piece(line), _component_glob(line))
            for index, line in enumerate(self.lines)
            if not line.startswith("!")
        )
        self._negating = frozenset(index for index, line in enumerate(self.lines) if line.startswith("!"))
        self._names = [_plain_name(line) for line in self.lines]
        self._specs: dict[tuple[int, ...], pathspec.PathSpec] = {}

    def __add__(self, other: Patterns) -> Patterns:
        return Patterns(self.lines + other.lines, self.kind)

    def match_file(self, path: str) -> bool:
        hits = [(index, glob) for index, literal, glob in self._including if literal in path]
        if not hits:
            return False
        components = [component for component in path.split("/") if component]
        candidates = tuple(index for index, glob in hits if _may_match(glob, components))
        if not candidates:
            return False
        if not self._negating:
            # Without negations a path is ignored when any line matches it; a plain
            # name ("node_modules", "__pycache__/") is matched here, without a regex.
            names = self._names
            if any(names[index] is not None and _name_matches(names[index], path) for index in candidates):
                return True
            if all(names[index] is not None for index in candidates):
                return False
        spec = self._specs.get(candidates)
        if spec is None:
            spec = self._specs[candidates] = self._compile(sorted(self._negating.union(candidates)))
        return bool(spec.match_file(path))

    def _compile(self, indices: list[int]) -> pathspec.PathSpec:
        lines = [self.lines[index] for index in indices]
        try:
            return self._spec(lines)
        except ValueError:
            # As in git, a line that is not a valid pattern (a trailing backslash, a
            # lone "!") matches nothing.
            return self._spec([line for line in lines if self._valid(line)])

    def _spec(self, lines: list[str]) -> pathspec.PathSpec:
        import pathspec

        if self.kind == "gitignore-spec":
            return pathspec.GitIgnoreSpec.from_lines(lines)
        return pathspec.PathSpec.from_lines("gitignore", lines)

    def _valid(self, line: str) -> bool:
        try:
            self._spec([line])
        except ValueError:
            return False
        return True


def _literal_piece(line: str) -> str:
    """Text that every path matched by the gitignore ``line`` contains: its longest run
    of plain characters (slashes inside a run included), "" when it has none. Wildcards,
    character classes and escaped characters end a run."""
    pieces: list[str] = []
    run: list[str] = []
    index, length = 0, len(line)
    while index < length:
        char = line[index]
        if char in "*?\\[":
            pieces.append("".join(run))
            run = []
            if char == "\\":
                index += 2
                continue
            if char == "[":
                # A class: an optional "!"/"^", a "]" that is a member, then up to "]".
                end = index + 1
                if end < length and line[end] in "!^":
                    end += 1
                if end < length and line[end] == "]":
                    end += 1
                close = line.find("]", end)
                if close >= 0:
                    index = close + 1
                    continue
        else:
            run.append(char)
        index += 1
    pieces.append("".join(run))
    return max((piece.strip().strip("/") for piece in pieces), key=len)


def _component_glob(line: str) -> tuple[str, bool] | None:
    """The ``fnmatch`` pattern a path component must match for the gitignore ``line``
    to match the path, and whether that component is the first one (a line with a
    slash other than a trailing one is anchored) or any one. None for lines whose
    classes or escapes ``fnmatch`` reads differently from git."""
    body = line[:-1] if line.endswith("/") else line
    anchored = "/" in body
    glob = body.lstrip("/").split("/", 1)[0] if anchored else body
    if not glob or line != line.strip() or "\\" in line:
        return None
    if glob.count("[") != glob.count("]") or any(special in glob for special in ("[!", "[^", "[:", "[]")):
        return None
    return glob, anchored


def _plain_name(line: str) -> tuple[str, bool] | None:
    """``(name, directories only)`` for a line that is a plain name, alone or with a
    trailing slash: it matches a path one of whose components is that name (followed by
    a slash, for a directory-only line)."""
    body = line[:-1] if line.endswith("/") else line
    if not body or body != body.strip() or body[0] in "#!" or any(char in body for char in "/*?[]\\"):
        return None
    return body, body != line


def _name_matches(name: tuple[str, bool], path: str) -> bool:
    plain, directories_only = name
    components = path.split("/")
    if directories_only:
        components = components[:-1]
    return plain in components


def _may_match(glob: tuple[str, bool] | None, components: list[str]) -> bool:
    if glob is None:
        return True
    if not components:
        return True
    pattern, anchored = glob
    if anchored:
        return fnmatchcase(components[0], pattern)
    return any(fnmatchcase(component, pattern) for component in components)


class Excluder:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.root
        self._patterns = tuple(settings.exclude if settings.exclude is not None else DEFAULT_EXCLUDE) + tuple(
            settings.extend_exclude
        )

    @cached_property
    def spec(self) -> Patterns:
        return Patterns(self._patterns)

    def relative(self, path: Path) -> str:
        """``path`` relative to the configuration root (POSIX), as excludes see it; a
        path outside the root stays as it is."""
        try:
            rel = path.resolve().relative_to(self.root).as_posix() if path.is_absolute() else path.as_posix()
        except ValueError:
            rel = path.as_posix()
        while rel.startswith("./"):
            rel = rel[2:]
        return "" if rel == "." else rel

    def excluded(self, path: Path, is_dir: bool) -> bool:
        return self.excluded_relative(self.relative(path), path.name, is_dir)

    def excluded_relative(self, rel: str, name: str, is_dir: bool) -> bool:
        suffix = "/" if is_dir else ""
        return self.spec.match_file(rel + suffix) or self.spec.match_file(name + suffix)


class GitIgnores:
    """``.gitignore`` files met during the walk, each applied below its directory."""

    def __init__(self, root: Path) -> None:
        # Absolute directory (string, no trailing separator) -> its patterns.
        self.specs: dict[str, Patterns] = {}
        git_dir = next((p for p in (root, *root.parents) if (p / ".git").is_dir()), None)
        if git_dir is not None:
            info = git_dir / ".git" / "info" / "exclude"
            if info.is_file():
                self._load(git_dir, info)

    def _load(self, directory: Path | str, file: Path | str) -> None:
        try:
            with open(file, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return
        spec = Patterns(lines, "gitignore-spec")
        key = str(directory).rstrip(os.sep) or os.sep
        if key in self.specs:
            spec = self.specs[key] + spec
        self.specs[key] = spec

    def enter(self, directory: Path | str) -> None:
        gitignore = os.path.join(directory, ".gitignore")
        if os.path.isfile(gitignore):
            self._load(directory, gitignore)

    def ignored(self, path: Path | str, is_dir: bool) -> bool:
        """Whether an absolute ``path`` is ignored by a ``.gitignore`` above it."""
        text = str(path)
        for directory, spec in self.specs.items():
            prefix = directory if directory.endswith(os.sep) else directory + os.sep
            if not text.startswith(prefix):
                continue
            rel = text[len(prefix) :].replace(os.sep, "/")
            if spec.match_file(rel + "/" if is_dir else rel):
                return True
        return False


def is_lintable_name(name: str) -> bool:
    return name.endswith(PYTHON_SUFFIXES) or name in EXTRA_FILE_NAMES


def discover(paths: list[Path], settings: Settings) -> Discovered:
    result = Discovered()
    excluder = Excluder(settings)
    seen: set[tuple[int, int]] = set()
    for given in paths:
        try:
            os.stat(given)
        except OSError as exc:
            if given.is_symlink():
                reason = "symbolic link loop" if exc.errno == errno.ELOOP else "broken symbolic link"
            else:
                reason = "no such file or directory" if exc.errno == errno.ENOENT else (exc.strerror or str(exc))
            result.errors.append(f"{given}: {reason}")
            continue
        if given.is_file():
            if settings.force_exclude and excluder.excluded(given.absolute(), False):
                continue
            _add(result, seen, given)
            continue
        if not given.is_dir():
            result.errors.append(f"{given}: not a file or directory")
            continue
        _walk(given, settings, excluder, result, seen)
    return result


def _add(result: Discovered, seen: set[tuple[int, int]], path: Path, stat: os.stat_result | None = None) -> None:
    try:
        info = stat or os.stat(path)
    except OSError:
        info = None
    key = (info.st_dev, info.st_ino) if info is not None else (-1, hash(str(path.absolute())))
    if key not in seen:
        seen.add(key)
        result.files.append(path)


def _walk(top: Path, settings: Settings, excluder: Excluder, result: Discovered, seen: set[tuple[int, int]]) -> None:
    # Paths are handled as strings relative to the walk: only directories and lintable
    # files are matched against excludes and .gitignore files, everything else is skipped
    # by name.
    top_abs = os.path.abspath(top)
    gitignores = GitIgnores(Path(top_abs)) if settings.respect_gitignore else None
    visited_dirs: set[tuple[int, int]] = set()
    stack: list[tuple[Path, str, str]] = [(top, top_abs, excluder.relative(Path(top_abs)))]
    while stack:
        directory, dir_abs, dir_rel = stack.pop()
        try:
            stat = os.stat(dir_abs)
        except OSError as exc:
            result.errors.append(f"{directory}: {exc.strerror or exc}")
            continue
        marker = (stat.st_dev, stat.st_ino)
        if marker in visited_dirs:  # symlink loop
            continue
        visited_dirs.add(marker)
        if gitignores is not None:
            gitignores.enter(dir_abs)
        try:
            entries = sorted(os.scandir(dir_abs), key=lambda e: e.name)
        except OSError as exc:
            result.errors.append(f"{directory}: {exc.strerror or exc}")
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if not is_dir and not is_lintable_name(name):
                continue
            rel = f"{dir_rel}/{name}" if dir_rel else name
            if excluder.excluded_relative(rel, name, is_dir):
                continue
            entry_abs = os.path.join(dir_abs, name)
            if gitignores is not None and gitignores.ignored(entry_abs, is_dir):
                continue
            if is_dir:
                subdirs.append((directory / name, entry_abs, rel))
                continue
            try:
                if not entry.is_file():
                    continue
                info = entry.stat()
            except OSError:
                continue
            _add(result, seen, directory / name, info)
        stack.extend(reversed(subdirs))
