"""A whole run: discovery, reading, the index pass, the lint/fix pass, writing back.

File-system concerns live here (the engine only sees text): decoding errors become
FDB001 findings, unreadable paths become error lines, fixed files are written
atomically with their encoding, BOM, line endings and permissions, and files without an
applied fix are never touched.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from fastdb_lint.analysis.terms import ProjectTerms
from fastdb_lint.cache import Cache, content_hash, project_fingerprint
from fastdb_lint.config import Settings
from fastdb_lint.diagnostics import Finding, parse_error_finding
from fastdb_lint.discovery import discover
from fastdb_lint.prefilter import lint_words, wants_index
from fastdb_lint.source import SourceError, SourceText, read_bytes

if TYPE_CHECKING:
    from fastdb_lint.analysis.index import FileFacts
    from fastdb_lint.engine import Engine, FixResult, LintResult


@dataclass
class RunOptions:
    fix: bool = False
    unsafe_fixes: bool = False
    diff: bool = False
    stdin_filename: str | None = None
    stdin_text: bytes | None = None
    # None disables the cache.
    cache_dir: Path | None = None
    jobs: int = 1
    # Told (phase, files done, files in the phase) as the index and lint passes go.
    progress: Callable[[str, int, int], None] | None = None

    def reporter(self, phase: str, total: int) -> Callable[[int], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda done: progress(phase, done, total)


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    # Findings whose fix was applied (or would be, with --diff).
    fixed: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    sources: dict[str, list[str]] = field(default_factory=dict)
    files_checked: int = 0
    # With stdin and --fix: the fixed text to print.
    stdin_output: bytes | None = None

    @property
    def has_error(self) -> bool:
        return bool(self.errors)


@dataclass
class _Input:
    path: Path
    display: str
    relpath: str
    source: SourceText | None
    data: bytes | None = None
    # Path relative to the file's project root: what its module name derives from.
    module_rel: str = ""
    resolved: Path | None = None

    @cached_property
    def digest(self) -> str:
        assert self.data is not None
        return content_hash(self.data)


def display_path(path: Path, cwd: str | None = None) -> str:
    text = str(path)
    if not os.path.isabs(text) and ".." not in text.split(os.sep):
        # Already relative to the working directory, and normalized (a ``Path`` drops
        # ``.`` components).
        return text
    absolute = os.path.abspath(path)
    try:
        return os.path.relpath(absolute, cwd or os.getcwd())
    except ValueError:
        return absolute


def relative_to_root(path: Path, root: Path) -> str:
    try:
        return _relative(path.resolve(), root)
    except (OSError, RuntimeError):
        return path.name


def _relative(resolved: Path, root: Path) -> str:
    """``resolved`` (an absolute, resolved path) relative to ``root``, POSIX style; its
    name alone when it is outside."""
    text, base = str(resolved), str(root)
    prefix = base if base.endswith(os.sep) else base + os.sep
    if text.startswith(prefix):
        return text[len(prefix) :].replace(os.sep, "/")
    return resolved.name


class _Resolver:
    """Resolved paths of many files, resolving each directory once (a file that is
    itself a symbolic link is resolved on its own)."""

    def __init__(self) -> None:
        self._dirs: dict[str, Path] = {}

    def __call__(self, path: Path) -> Path:
        try:
            if os.path.islink(path):
                return path.resolve()
            parent = os.path.dirname(os.path.abspath(path))
            resolved = self._dirs.get(parent)
            if resolved is None:
                resolved = self._dirs[parent] = Path(parent).resolve()
            return resolved / path.name
        except (OSError, RuntimeError):
            return path.absolute()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never
    a partial one; the file's permission bits are kept. A symbolic link is followed
    (the file it points to is replaced, the link stays), and a file without write
    permission is refused."""
    path = Path(os.path.realpath(path))
    mode = stat.S_IMODE(path.stat().st_mode)
    if not os.access(path, os.W_OK):
        raise PermissionError(errno.EACCES, "file is not writable", str(path))
    import tempfile

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".fastdb-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise


def _read_inputs(paths: list[Path], settings: Settings, options: RunOptions, result: RunResult) -> list[_Input]:
    inputs: list[_Input] = []
    if options.stdin_text is not None:
        name = options.stdin_filename or "-"
        path = Path(name)
        inputs.append(_Input(path, name, relative_to_root(path.absolute(), settings.root) if name != "-" else "-.py", None, options.stdin_text))
    else:
        discovered = discover(paths, settings)
        result.errors.extend(discovered.errors)
        cwd = os.getcwd()
        resolve = _Resolver()
        for path in discovered.files:
            display = display_path(path, cwd)
            try:
                data = read_bytes(path)
            except OSError as exc:
                cause = exc.__cause__
                reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(exc).replace(f"{path}: ", "")
                result.errors.append(f"{display}: cannot read: {reason}")
                continue
            resolved = resolve(path)
            inputs.append(_Input(path, display, _relative(resolved, settings.root), None, data, resolved=resolved))
    for item in inputs:
        assert item.data is not None
        try:
            item.source = SourceText.decode(item.data)
        except SourceError as exc:
            result.findings.append(parse_error_finding(item.display, str(exc), exc.row, exc.column))
            result.errors.append(f"{item.display}: {exc}")
            if options.stdin_text is not None and options.fix:
                result.stdin_output = item.data  # fixing standard input echoes what cannot be fixed
    return inputs


PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")


class ProjectRoots:
    """The project a file belongs to: the nearest directory with a ``pyproject.toml``,
    ``setup.py`` or ``setup.cfg`` at or below the configuration root (else that root).
    Each project is indexed on its own, so several services in one repository (or the
    bundled sample apps) do not mix their ``app.models`` modules."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, Path] = {}

    def __call__(self, path: Path, resolved: Path | None = None) -> Path:
        """The project root of ``path`` (``resolved``: the path already resolved)."""
        if resolved is None:
            try:
                resolved = path.resolve()
            except (OSError, RuntimeError):
                return self.root
        return self._find(resolved.parent)

    def _find(self, directory: Path) -> Path:
        cached = self._cache.get(directory)
        if cached is not None:
            return cached
        if directory == self.root or self.root not in directory.parents:
            found = self.root
        elif any((directory / marker).is_file() for marker in PROJECT_MARKERS):
            found = directory
        else:
            found = self._find(directory.parent)
        self._cache[directory] = found
        return found


def run(paths: list[Path], settings: Settings, options: RunOptions) -> RunResult:
    result = RunResult()
    inputs = _read_inputs(paths, settings, options, result)
    readable = [i for i in inputs if i.source is not None]
    groups: dict[Path, list[_Input]] = {}
    roots = ProjectRoots(settings.root)
    for item in readable:
        if options.stdin_text is None:
            root = roots(item.path, item.resolved)
            item.module_rel = _relative(item.resolved, root) if item.resolved is not None else relative_to_root(item.path, root)
        else:
            root, item.module_rel = roots.root, item.relpath
        groups.setdefault(root, []).append(item)
    cache = None
    if options.cache_dir is not None and options.stdin_text is None:
        cache = Cache(options.cache_dir)
    for group in groups.values():
        _run_project(group, settings, options, result, cache)
    result.findings.sort(key=lambda f: f.sort_key)
    return result


def _settings_fingerprint(settings: Settings) -> str:
    return repr((sorted(settings.enabled), settings.per_file_ignores))


def _collect(item: _Input) -> FileFacts:
    from fastdb_lint.analysis.index import collect_facts

    assert item.source is not None
    return collect_facts(item.display, item.module_rel, item.source.text)


def _prepare_index() -> None:
    import fastdb_lint.analysis.index  # noqa: F401


def _import_lint_pass() -> None:
    """LibCST, the rules and what fast parsing needs, which the lint pass's workers then
    inherit: made while the index pass's workers run, not after them."""
    from fastdb_lint.memory import gc_paused

    # What this makes lives as long as the run: collections in the meantime free nothing.
    with gc_paused():
        from fastdb_lint.parsing import prepare_fast_parsing
        from fastdb_lint.registry import all_rules

        import fastdb_lint.engine  # noqa: F401

        all_rules()
        prepare_fast_parsing()


_WORK: tuple[Engine, RunOptions] | None = None


def _work(item: _Input) -> LintResult | FixResult:
    assert _WORK is not None and item.source is not None
    engine, options = _WORK
    facts = engine.project.by_path.get(item.display)
    if options.fix or options.diff:
        return engine.fix(item.display, item.relpath, item.source, unsafe=options.unsafe_fixes, facts=facts)
    return engine.lint(item.display, item.relpath, item.source, facts)


def _run_project(
    readable: list[_Input],
    settings: Settings,
    options: RunOptions,
    result: RunResult,
    cache: Cache | None,
) -> None:
    settings_fp = _settings_fingerprint(settings)
    if cache is None or options.fix or options.diff:
        _index_and_lint(readable, settings, options, result, cache, settings_fp)
        return
    # A run over the same files and settings as an earlier one reads one pack of its
    # facts digests and results.
    cache.open_pack(Cache.pack_key(settings_fp, [item.relpath for item in readable]))
    _index_and_lint(readable, settings, options, result, cache, settings_fp)
    cache.close_pack()


def _index_and_lint(
    readable: list[_Input],
    settings: Settings,
    options: RunOptions,
    result: RunResult,
    cache: Cache | None,
    settings_fp: str,
) -> None:
    global _WORK
    # Index pass: facts from the cache where the content is unchanged, else collected.
    cached_facts: list[tuple[_Input, str]] = []
    collected: list[FileFacts] = []
    digests: list[tuple[str, str]] = []
    to_collect: list[_Input] = []
    for item in readable:
        assert item.source is not None
        if not wants_index(item.source.text, item.module_rel):
            continue
        key = Cache.facts_key(item.digest, item.module_rel)
        digest = cache.get_facts_digest(key) if cache else None
        if digest is None:
            to_collect.append(item)
        else:
            digests.append((item.module_rel, digest))
            cached_facts.append((item, key))
    if to_collect:
        from fastdb_lint.parallel import parallel_map

        reporter = options.reporter("indexing", len(to_collect))
        collected_facts = parallel_map(
            _collect,
            to_collect,
            options.jobs,
            reporter,
            prepare=_prepare_index,
            meanwhile=_import_lint_pass,
            costs=_sizes(to_collect),
        )
        for item, facts in zip(to_collect, collected_facts):
            assert item.source is not None
            key = Cache.facts_key(item.digest, item.module_rel)
            digests.append((item.module_rel, cache.put_facts(key, facts) if cache else ""))
            collected.append(facts)
    project_fp = project_fingerprint(digests)

    # Lint pass: cached results where nothing they depend on changed.
    pending: list[_Input] = []
    for item in readable:
        assert item.source is not None
        result.files_checked += 1
        if cache is not None and not (options.fix or options.diff):
            cached = cache.get_result(Cache.result_key(item.digest, item.relpath, settings_fp, project_fp))
            if cached is not None:
                _record(item, [Finding.from_dict({**data, "path": item.display}) for data in cached], item.source, result)
                continue
        pending.append(item)
    terms_key = Cache.terms_key(project_fp)
    known_terms = cache.get_terms(terms_key) if cache is not None else None
    if pending and isinstance(known_terms, ProjectTerms) and not (options.fix or options.diff):
        pending = _without_quiet_files(pending, settings, known_terms, cache, settings_fp, project_fp)
    if not pending:
        return
    # Only now does the run need the analyses, the rules and LibCST.
    from fastdb_lint.analysis.index import ProjectIndex
    from fastdb_lint.engine import Engine, FixResult, LintResult
    from fastdb_lint.parallel import parallel_map

    linted = {id(item) for item in pending}
    for item, key in cached_facts:
        assert cache is not None
        facts = cache.get_facts(key)
        if facts is None:
            assert item.source is not None
            facts = _collect(item)
        elif id(item) in linted:
            facts.shape = cache.get_shape(key)
        facts.path = item.display
        collected.append(facts)
    project = ProjectIndex(collected)
    engine = Engine(settings, project, known_terms if isinstance(known_terms, ProjectTerms) else None)
    if cache is not None and engine.terms != known_terms:
        cache.put_terms(terms_key, engine.terms)
    _WORK = (engine, options)
    try:
        outcomes = parallel_map(
            _work,
            pending,
            options.jobs,
            options.reporter("linting", len(pending)),
            costs=_sizes(pending),
        )
    finally:
        _WORK = None
    for item, outcome in zip(pending, outcomes):
        if isinstance(outcome, FixResult):
            _finish_fix(item, outcome, engine, options, result)
        else:
            _finish_lint(item, outcome, result)
        if cache is not None and isinstance(outcome, LintResult) and not outcome.internal_errors:
            assert item.source is not None
            cache.put_result(
                Cache.result_key(item.digest, item.relpath, settings_fp, project_fp),
                [{k: v for k, v in f.to_dict().items() if k != "path"} for f in outcome.findings],
            )


def _sizes(items: list[_Input]) -> list[int]:
    """What a file costs to index or lint, for spreading the work: its size."""
    return [len(item.data or b"") for item in items]


def _without_quiet_files(
    pending: list[_Input],
    settings: Settings,
    terms: ProjectTerms,
    cache: Cache,
    settings_fp: str,
    project_fp: str,
) -> list[_Input]:
    """``pending`` less the Python files that mention no word the lint pass reads a
    file for: they have no finding, known without the rules or LibCST (a run after
    editing a file without database code imports neither)."""
    pattern = lint_words(settings.enabled, terms.session_names | terms.model_names)
    if pattern is None:
        return pending
    rest: list[_Input] = []
    for item in pending:
        assert item.source is not None
        if item.relpath.endswith((".py", ".pyi")) and pattern.search(item.source.text) is None:
            cache.put_result(Cache.result_key(item.digest, item.relpath, settings_fp, project_fp), [])
        else:
            rest.append(item)
    return rest


def _finish_lint(item: _Input, outcome: LintResult, result: RunResult) -> None:
    assert item.source is not None
    result.errors.extend(outcome.internal_errors)
    _record(item, outcome.findings, item.source, result)


def _finish_fix(item: _Input, outcome: FixResult, engine: Engine, options: RunOptions, result: RunResult) -> None:
    source = item.source
    assert source is not None
    facts = engine.project.by_path.get(item.display)
    if outcome.error:
        result.errors.append(outcome.error)
    result.errors.extend(outcome.result.internal_errors)
    findings = outcome.result.findings
    if outcome.applied and outcome.text != source.text:
        new_source = SourceText(outcome.text, source.encoding, source.bom)
        if options.diff:
            result.fixed.extend(outcome.fixed)
            result.diffs.append(_unified_diff(item.display, source.text, outcome.text))
            findings = engine.lint(item.display, item.relpath, source, facts).findings
        elif options.stdin_text is not None:
            result.fixed.extend(outcome.fixed)
            result.stdin_output = new_source.encode()
        else:
            try:
                if read_bytes(item.path) != item.data:
                    raise OSError(errno.EBUSY, "the file changed during the run")
                write_atomic(item.path, new_source.encode())
            except (OSError, UnicodeEncodeError) as exc:
                cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
                reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(exc)
                result.errors.append(f"{item.display}: cannot write fixed file ({reason}); file left unchanged")
                findings = engine.lint(item.display, item.relpath, source, facts).findings
            else:
                result.fixed.extend(outcome.fixed)
                source = new_source
    elif options.stdin_text is not None:
        result.stdin_output = item.data
    _record(item, findings, source, result)


def _record(item: _Input, findings: list[Finding], source: SourceText, result: RunResult) -> None:
    result.findings.extend(findings)
    if findings:
        result.sources[item.display] = source.lines


def add_noqa_comments(result: RunResult) -> tuple[int, list[str]]:
    """Add ``# noqa`` comments for ``result``'s findings to their files (atomically)."""
    from fastdb_lint.suppression import add_noqa

    by_file: dict[str, dict[int, set[str]]] = {}
    for finding in result.findings:
        if finding.noqa_row is None or finding.code == "FDB001" or not finding.path.endswith((".py", ".pyi")):
            continue
        by_file.setdefault(finding.path, {}).setdefault(finding.noqa_row, set()).add(finding.code)
    added = 0
    problems: list[str] = []
    for display, rows in sorted(by_file.items()):
        path = Path(display)
        try:
            source = SourceText.decode(read_bytes(path))
        except (OSError, SourceError) as exc:
            problems.append(f"{display}: {exc}")
            continue
        text, changed = add_noqa(source.text, rows)
        if changed:
            try:
                write_atomic(path, source.encode(text))
            except (OSError, UnicodeEncodeError) as exc:
                problems.append(f"{display}: cannot write: {exc}")
                continue
            added += changed
    return added, problems


def _unified_diff(display: str, before: str, after: str) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{display}",
            tofile=f"b/{display}",
        )
    )
