"""What the language server knows about files: the settings that apply to each
directory, one project index per project (built from the files on disk with the same
discovery as ``fastdb-lint check``) and the open documents' unsaved text laid over it.

Not thread-safe: the server calls it from one worker thread.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, replace
from pathlib import Path

from fastdb_lint.analysis.index import FileFacts, ProjectIndex, collect_facts
from fastdb_lint.config import ConfigError, Settings, load
from fastdb_lint.diagnostics import Finding
from fastdb_lint.discovery import Excluder, discover, is_lintable_name
from fastdb_lint.engine import Engine, FixResult, build_index
from fastdb_lint.prefilter import wants_index
from fastdb_lint.registry import resolve_selection
from fastdb_lint.runner import PROJECT_MARKERS, ProjectRoots, relative_to_root
from fastdb_lint.source import SourceError, SourceText, read_bytes

# Files whose change can alter settings, exclusions or project boundaries.
CONFIG_NAMES = frozenset({*PROJECT_MARKERS, ".gitignore", "fastdb-lint.toml"})
PYTHON_LANGUAGE = "python"


def path_key(path: Path) -> str:
    """The identity of a file in the index and in findings: its absolute path."""
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return str(path.absolute())


@dataclass(frozen=True)
class Document:
    """An open document's text; ``path`` is None for documents that are not files."""

    text: str
    path: Path | None = None
    language_id: str | None = None


@dataclass
class Analysis:
    source: SourceText
    findings: list[Finding]
    python: bool


class Level(enum.Enum):
    LOG = "log"
    WARNING = "warning"
    # Errors are also shown to the user, not only logged.
    ERROR = "error"


@dataclass(frozen=True)
class Notice:
    """Something to tell the client: logged, and shown when it is an error."""

    message: str
    level: Level = Level.LOG


class Project:
    """The files of one project root and their facts; the index is rebuilt lazily
    whenever a file's facts change."""

    def __init__(self, settings: Settings, root: Path, roots: ProjectRoots) -> None:
        self.settings = settings
        self.root = root
        self.roots = roots
        self.engine = Engine(settings)
        self.files: set[str] | None = None
        # Files of this project that discovery leaves out (excluded or git-ignored):
        # saving them does not trigger a new scan.
        self.ignored: set[str] = set()
        self._disk: dict[str, FileFacts] = {}
        self._overlay: dict[str, tuple[str, FileFacts | None]] = {}
        self._index: ProjectIndex | None = None

    @property
    def loaded(self) -> bool:
        return self.files is not None

    def load(self) -> Notice:
        """Index every file that ``check`` would lint in this project."""
        started = time.perf_counter()
        discovered = discover([self.root], self.settings)
        files: set[str] = set()
        triples: list[tuple[str, str, str]] = []
        for path in discovered.files:
            if self.roots(path) != self.root:
                continue
            key = path_key(path)
            files.add(key)
            text = _read_text(path)
            if text is not None:
                triples.append((key, relative_to_root(path, self.root), text))
        self._disk = dict(build_index(triples).by_path)
        self.files = files
        self._index = None
        elapsed = time.perf_counter() - started
        return Notice(f"indexed {len(files)} files of {self.root} in {elapsed:.2f}s")

    def owns(self, path: Path) -> bool:
        return _contains(self.root, path) and self.roots(path) == self.root

    def module_path(self, path: Path) -> str:
        return relative_to_root(path, self.root)

    def open_text(self, key: str, module_rel: str, text: str) -> FileFacts | None:
        """Lay a document's text over its version on disk; returns its facts."""
        current = self._overlay.get(key)
        if current is not None and current[0] == text:
            return current[1]
        facts = collect_facts(key, module_rel, text) if wants_index(text, module_rel) else None
        self._overlay[key] = (text, facts)
        self._index = None
        return facts

    def close_text(self, key: str) -> None:
        if self._overlay.pop(key, None) is not None:
            self._index = None

    def refresh(self, path: Path) -> None:
        """Re-read one file that changed on disk."""
        key = path_key(path)
        text = _read_text(path)
        module_rel = self.module_path(path)
        if text is not None and wants_index(text, module_rel):
            self._disk[key] = collect_facts(key, module_rel, text)
        else:
            self._disk.pop(key, None)
        self._index = None

    def forget(self, path: Path) -> None:
        key = path_key(path)
        if self.files is not None:
            self.files.discard(key)
        self._disk.pop(key, None)
        self._index = None

    def prepared_engine(self) -> Engine:
        if self._index is None:
            merged = dict(self._disk)
            for key, (_, facts) in self._overlay.items():
                if facts is None:
                    merged.pop(key, None)
                else:
                    merged[key] = facts
            self._index = ProjectIndex(list(merged.values()))
            self.engine.set_project(self._index)
        return self.engine


@dataclass
class _Target:
    key: str
    relpath: str
    module_rel: str
    settings: Settings
    project: Project | None
    python: bool


class Workspace:
    """Settings and projects for every document the server has seen."""

    def __init__(self, fallback_root: Path) -> None:
        self.fallback_root = fallback_root
        self._settings: dict[Path, Settings] = {}
        self._roots: dict[Path, ProjectRoots] = {}
        self._projects: dict[tuple[Settings, Path], Project] = {}
        self._excluders: dict[Settings, Excluder] = {}
        self._open: dict[str, Project] = {}
        self._notices: list[Notice] = []

    # -- notices ---------------------------------------------------------------

    def drain_notices(self) -> list[Notice]:
        notices, self._notices = self._notices, []
        return notices

    # -- settings and projects ---------------------------------------------------

    def settings_for(self, directory: Path) -> Settings:
        cached = self._settings.get(directory)
        if cached is not None:
            return cached
        try:
            settings = load(None, directory)
        except ConfigError as exc:
            self._notices.append(Notice(f"{exc}; using the default settings", Level.ERROR))
            settings = replace(Settings(root=directory.resolve()), enabled=resolve_selection(None))
        self._settings[directory] = settings
        return settings

    def _project(self, settings: Settings, path: Path) -> Project:
        roots = self._roots.get(settings.root)
        if roots is None:
            roots = self._roots[settings.root] = ProjectRoots(settings.root)
        root = roots(path)
        project = self._projects.get((settings, root))
        if project is None:
            project = self._projects[(settings, root)] = Project(settings, root, roots)
        if not project.loaded:
            self._notices.append(project.load())
        return project

    def _target(self, document: Document) -> _Target | None:
        path = document.path
        python_language = document.language_id == PYTHON_LANGUAGE
        if path is None:
            if not python_language:
                return None
            settings = self.settings_for(self.fallback_root)
            return _Target("untitled.py", "untitled.py", "untitled.py", settings, None, True)
        if not (is_lintable_name(path.name) or python_language):
            return None
        settings = self.settings_for(path.absolute().parent)
        if self._excluder(settings).excluded(path.absolute(), False):
            return None
        # A Python document without a Python suffix (a script) is linted as Python.
        suffix = "" if is_lintable_name(path.name) else ".py"
        project = self._project(settings, path)
        return _Target(
            path_key(path),
            relative_to_root(path, settings.root) + suffix,
            project.module_path(path) + suffix,
            settings,
            project,
            path.name.endswith((".py", ".pyi")) or bool(suffix),
        )

    def _excluder(self, settings: Settings) -> Excluder:
        excluder = self._excluders.get(settings)
        if excluder is None:
            excluder = self._excluders[settings] = Excluder(settings)
        return excluder

    def _engine(self, target: _Target, text: str) -> tuple[Engine, FileFacts | None]:
        if target.project is not None:
            facts = target.project.open_text(target.key, target.module_rel, text)
            self._open[target.key] = target.project
            return target.project.prepared_engine(), facts
        facts = collect_facts(target.key, target.module_rel, text) if wants_index(text, target.module_rel) else None
        return Engine(target.settings, ProjectIndex([facts] if facts else [])), facts

    # -- requests ----------------------------------------------------------------

    def analyse(self, document: Document) -> Analysis | None:
        """Findings for a document, or None when fastdb-lint does not lint it."""
        target = self._target(document)
        if target is None:
            return None
        engine, facts = self._engine(target, document.text)
        source = SourceText(document.text)
        result = engine.lint(target.key, target.relpath, source, facts)
        self._notices.extend(Notice(error, Level.WARNING) for error in result.internal_errors)
        return Analysis(source, result.findings, target.python)

    def fix_all(self, document: Document, *, unsafe: bool = False) -> FixResult | None:
        target = self._target(document)
        if target is None:
            return None
        engine, facts = self._engine(target, document.text)
        outcome = engine.fix(target.key, target.relpath, SourceText(document.text), unsafe=unsafe, facts=facts)
        if outcome.error:
            self._notices.append(Notice(outcome.error, Level.WARNING))
        return outcome

    # -- events ----------------------------------------------------------------

    def closed(self, path: Path) -> None:
        project = self._open.pop(path_key(path), None)
        if project is not None:
            project.close_text(path_key(path))

    def file_changed(self, path: Path, *, deleted: bool = False) -> bool:
        """A file changed on disk (saved, or reported by the client's watcher). Returns
        whether open documents may need linting again."""
        if path.name in CONFIG_NAMES or path.suffix == ".toml":
            self.reset()
            return True
        if not is_lintable_name(path.name):
            return False
        key = path_key(path)
        affected = False
        for project in self._projects.values():
            if project.files is None or not project.owns(path):
                continue
            if deleted:
                if key in project.files:
                    project.forget(path)
                    affected = True
            elif key in project.files:
                project.refresh(path)
                affected = True
            elif key not in project.ignored:
                self._notices.append(project.load())
                if key not in project.files:
                    project.ignored.add(key)
                affected = True
        return affected

    def reset(self) -> None:
        """Forget settings and indexes (after a configuration change)."""
        self._settings.clear()
        self._excluders.clear()
        self._roots.clear()
        self._projects.clear()
        self._open.clear()


def _contains(root: Path, path: Path) -> bool:
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return False
    return resolved == root or root in resolved.parents


def _read_text(path: Path) -> str | None:
    try:
        return SourceText.decode(read_bytes(path)).text
    except (OSError, SourceError):
        return None
