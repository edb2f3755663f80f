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
from pathlib import Path

import pathspec

from fastdb_lint.config import Settings

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


def _spec(patterns: tuple[str, ...]) -> pathspec.PathSpec:
    return pathspec.PathSpec.from_lines("gitignore", patterns)


class Excluder:
    def __init__(self, settings: Settings) -> None:
        exclude = settings.exclude if settings.exclude is not None else DEFAULT_EXCLUDE
        self.root = settings.root
        self.spec = _spec(tuple(exclude) + tuple(settings.extend_exclude))

    def excluded(self, path: Path, is_dir: bool) -> bool:
        try:
            rel = path.resolve().relative_to(self.root).as_posix() if path.is_absolute() else path.as_posix()
        except ValueError:
            rel = path.as_posix()
        while rel.startswith("./"):
            rel = rel[2:]
        candidates = [rel + "/" if is_dir else rel, path.name + ("/" if is_dir else "")]
        return any(self.spec.match_file(c) for c in candidates)


class GitIgnores:
    """``.gitignore`` files met during the walk, each applied below its directory."""

    def __init__(self, root: Path) -> None:
        self.specs: dict[Path, pathspec.GitIgnoreSpec] = {}
        git_dir = next((p for p in (root, *root.parents) if (p / ".git").is_dir()), None)
        if git_dir is not None:
            info = git_dir / ".git" / "info" / "exclude"
            if info.is_file():
                self._load(git_dir, info)

    def _load(self, directory: Path, file: Path) -> None:
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        if directory in self.specs:
            spec = self.specs[directory] + spec
        self.specs[directory] = spec

    def enter(self, directory: Path) -> None:
        gitignore = directory / ".gitignore"
        if gitignore.is_file():
            self._load(directory, gitignore)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for directory, spec in self.specs.items():
            try:
                rel = path.relative_to(directory).as_posix()
            except ValueError:
                continue
            if spec.match_file(rel + "/" if is_dir else rel):
                return True
        return False


def is_lintable_name(name: str) -> bool:
    return name.endswith(PYTHON_SUFFIXES) or name in EXTRA_FILE_NAMES


def discover(paths: list[Path], settings: Settings) -> Discovered:
    result = Discovered()
    excluder = Excluder(settings)
    seen: set[Path] = set()
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


def _add(result: Discovered, seen: set[Path], path: Path) -> None:
    try:
        key = path.resolve()
    except (OSError, RuntimeError):
        key = path.absolute()
    if key not in seen:
        seen.add(key)
        result.files.append(path)


def _walk(top: Path, settings: Settings, excluder: Excluder, result: Discovered, seen: set[Path]) -> None:
    gitignores = GitIgnores(top.absolute()) if settings.respect_gitignore else None
    visited_dirs: set[tuple[int, int]] = set()
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            stat = directory.stat()
        except OSError as exc:
            result.errors.append(f"{directory}: {exc.strerror or exc}")
            continue
        marker = (stat.st_dev, stat.st_ino)
        if marker in visited_dirs:  # symlink loop
            continue
        visited_dirs.add(marker)
        if gitignores is not None:
            gitignores.enter(directory.absolute())
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            result.errors.append(f"{directory}: {exc.strerror or exc}")
            continue
        subdirs = []
        for entry in entries:
            path = directory / entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if excluder.excluded(path.absolute(), is_dir):
                continue
            if gitignores is not None and gitignores.ignored(path.absolute(), is_dir):
                continue
            if is_dir:
                subdirs.append(path)
            elif is_lintable_name(entry.name):
                try:
                    if not entry.is_file():
                        continue
                except OSError:
                    continue
                _add(result, seen, path)
        stack.extend(reversed(subdirs))
