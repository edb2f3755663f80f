"""The lint engine: index pass, lint pass and fix loop for sources in memory.

Everything here works on text, not on the file system, so the CLI, the test harness
(rule examples) and editors share one code path. The CLI's runner adds discovery,
reading, writing and reporting around it.
"""

from __future__ import annotations

import ast
import fnmatch
import warnings
from dataclasses import dataclass, field

import libcst as cst

from fastdb_lint.analysis.index import FileFacts, ProjectIndex, collect_facts
from fastdb_lint.analysis.models import ClassRole, ModelIndex
from fastdb_lint.analysis.shape import FileShape, file_shape, parse_or_none
from fastdb_lint.analysis.sessions import SessionTypes
from fastdb_lint.analysis.sqlalchemy_api import DbKind
from fastdb_lint.config import Settings
from fastdb_lint.context import FileContext, run_traversal
from fastdb_lint.diagnostics import PARSE_ERROR, Applicability, Finding, Location, parse_error_finding
from fastdb_lint.memory import gc_paused
from fastdb_lint.parsing import NestingError, parse_module
from fastdb_lint.positions import node_positions
from fastdb_lint.fixes import apply_edits, resolve_fix, select_fixes
from fastdb_lint.prefilter import BASE_TRIGGERS, wants_index, words_regex
from fastdb_lint.registry import all_rules, validate_selector
from fastdb_lint.rules.base import ProjectTerms, Rule
from fastdb_lint.source import SourceText
from fastdb_lint.suppression import Suppressions

MAX_FIX_ROUNDS = 10


def is_test_file(relpath: str) -> bool:
    parts = [part for part in relpath.replace("\\", "/").split("/") if part and part != "."]
    name = parts[-1] if parts else ""
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or any(p in ("tests", "test") for p in parts[:-1])
    )


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    # Rules that raised (rule code, exception text): reported as internal errors.
    internal_errors: list[str] = field(default_factory=list)
    parsed: bool = False


@dataclass
class FixResult:
    text: str
    applied: int
    result: LintResult
    error: str | None = None
    # Findings whose fixes were applied, in the order of the rounds.
    fixed: list[Finding] = field(default_factory=list)


class Engine:
    """Lints sources against one set of settings and one project index."""

    def __init__(
        self, settings: Settings, project: ProjectIndex | None = None, terms: ProjectTerms | None = None
    ) -> None:
        """``terms``: the project's terms when already known (the CLI keeps them in its
        cache, keyed by the project's fingerprint)."""
        self.settings = settings
        catalog = all_rules()
        self.rules: list[type[Rule]] = [
            catalog[c] for c in sorted(settings.enabled) if c != PARSE_ERROR and c in catalog
        ]
        self.set_project(project or ProjectIndex([]), terms)
        self._per_file_ignores = [
            (pattern, frozenset(codes)) for pattern, codes in settings.per_file_ignores
        ]

    # -- project --------------------------------------------------------------

    def set_project(self, project: ProjectIndex, terms: ProjectTerms | None = None) -> None:
        self.project = project
        self.sessions = SessionTypes(project)
        self.terms = terms if terms is not None else project_terms(project, self.sessions)
        extra = self.terms.session_names | self.terms.model_names
        # Rules share words (most use the base triggers): each distinct set of words is
        # searched once per file. Per rule: the index of its words in ``_word_sets``, or
        # -1 when it reads every file; a file that mentions the project's symbols is read
        # for every rule with words too.
        self._word_sets: list[tuple[str, ...]] = []
        groups: dict[tuple[str, ...], int] = {}
        self._groups: list[tuple[type[Rule], int]] = []
        for rule in self.rules:
            words = tuple(sorted(set(rule.trigger_words()), key=len))
            if words and words not in groups:
                groups[words] = len(self._word_sets)
                self._word_sets.append(words)
            self._groups.append((rule, groups[words] if words else -1))
        self._project_words = words_regex(extra - set(BASE_TRIGGERS))
        self._candidate = words_regex(set(BASE_TRIGGERS) | extra)
        # The rules a Python file may be read for depend only on which codes its path
        # ignores and on whether it is a test file.
        self._python_plans: dict[tuple[frozenset[str], bool], list[tuple[type[Rule], int]]] = {}

    def _plan(self, relpath: str, ignored: frozenset[str]) -> list[tuple[type[Rule], int]]:
        """The rules a file may be read for (not ignored for its path; for a file that is
        not Python, those that handle its name), each with its group of words."""
        test_file = is_test_file(relpath)
        if relpath.endswith((".py", ".pyi")):
            key = (ignored, test_file)
            plan = self._python_plans.get(key)
            if plan is None:
                plan = self._python_plans[key] = [
                    (rule, group)
                    for rule, group in self._groups
                    if rule.code not in ignored and not (test_file and rule.skip_test_files)
                ]
            return plan
        name = relpath.rsplit("/", 1)[-1]
        return [
            (rule, group)
            for rule, group in self._groups
            if rule.code not in ignored
            and not (test_file and rule.skip_test_files)
            and any(fnmatch.fnmatch(name, pattern) for pattern in rule.file_patterns)
        ]

    # -- per file -------------------------------------------------------------

    def ignored_codes(self, relpath: str) -> frozenset[str]:
        codes: set[str] = set()
        path = relpath.replace("\\", "/")
        name = path.rsplit("/", 1)[-1]
        for pattern, selectors in self._per_file_ignores:
            negate = pattern.startswith("!")
            glob = pattern[1:] if negate else pattern
            hit = _glob_match(path, glob) or _glob_match(name, glob)
            if hit != negate:
                for selector in selectors:
                    codes |= {r.code for r in self.rules if selector == "ALL" or r.code.startswith(selector)}
        return frozenset(codes)

    def _applicable(self, rules: list[type[Rule]], shape: FileShape) -> list[type[Rule]]:
        terms = self.terms
        return [rule for rule in rules if rule.applies(shape, terms)]

    def rules_for(self, text: str, relpath: str, shape: FileShape | None = None) -> list[type[Rule]]:
        """The enabled rules worth running on a file: not ignored for its path, and
        whose trigger words the text mentions (or the project's symbols, for rules
        that read them); with the file's ``shape``, only those that can apply to it,
        whose words alone are then searched."""
        plan = self._plan(relpath, self.ignored_codes(relpath))
        if shape is not None:
            terms = self.terms
            plan = [(rule, group) for rule, group in plan if rule.applies(shape, terms)]
        word_sets = self._word_sets
        mentioned: list[bool | None] = [None] * len(word_sets)
        found: dict[str, bool] = {}
        project_hit: bool | None = None
        selected = []
        for rule, group in plan:
            if group < 0:
                selected.append(rule)
                continue
            hit = mentioned[group]
            if hit is None:
                hit = False
                for word in word_sets[group]:
                    word_hit = found.get(word)
                    if word_hit is None:
                        word_hit = found[word] = word in text
                    if word_hit:
                        hit = True
                        break
                mentioned[group] = hit
            if not hit:
                if project_hit is None:
                    project_hit = self._project_words is not None and self._project_words.search(text) is not None
                hit = project_hit
            if hit:
                selected.append(rule)
        return selected

    def lint(self, path: str, relpath: str, source: SourceText, facts: FileFacts | None = None) -> LintResult:
        with gc_paused():
            return self._lint(path, relpath, source, facts)

    def _lint(self, path: str, relpath: str, source: SourceText, facts: FileFacts | None) -> LintResult:
        result = LintResult()
        if not relpath.endswith((".py", ".pyi")):
            return self._lint_other(path, relpath, source, self.rules_for(source.text, relpath))
        if facts is None:
            facts = self.project.by_path.get(path)
        if facts is not None and facts.parse_ok and facts.shape is not None:
            # Indexed: the file is known to parse, and only the rules that can apply to
            # its shape (a few set lookups each) have their words searched.
            rules = self.rules_for(source.text, relpath, facts.shape)
            if not rules:
                return result
            compiled = True
        else:
            rules = self.rules_for(source.text, relpath)
            # A file without rules is still read when it mentions the database
            # vocabulary, to report syntax errors.
            if not rules and (self._candidate is None or not self._candidate.search(source.text)):
                return result
            compiled = facts is not None and facts.parse_ok
            if facts is None or facts.parse_ok:
                # Not indexed (or the shape was not kept): the shape comes from a stdlib
                # parse, far cheaper than LibCST's.
                tree = parse_or_none(source.text)
                if tree is not None:
                    # The file is known to parse: only rules that can apply need LibCST.
                    rules = self._applicable(rules, file_shape(tree))
                    compiled = True
                    if not rules:
                        return result
        try:
            module = parse_module(source.text, compiled=compiled)
        except cst.ParserSyntaxError as exc:
            result.findings.append(_syntax_error(path, source.text, exc))
            return result
        except NestingError as exc:
            result.findings.append(parse_error_finding(path, str(exc), exc.row, exc.column))
            return result
        except (RecursionError, MemoryError) as exc:
            result.findings.append(parse_error_finding(path, f"too deeply nested to parse ({type(exc).__name__})", 1, 1))
            return result
        except Exception as exc:  # the native parser can reject input in other ways
            result.findings.append(parse_error_finding(path, f"cannot parse: {exc}", 1, 1))
            return result
        result.parsed = True
        ctx: FileContext | None = None
        instances: list[Rule] = []
        try:
            ctx = FileContext(
                path=path,
                relpath=relpath,
                source=source,
                module=module,
                project=self.project,
                sessions=self.sessions,
                facts=facts,
                is_test_file=is_test_file(relpath),
            )
            instances = [rule(ctx) for rule in rules]
            failures = run_traversal(ctx, instances)
            result.internal_errors.extend(f"{rule.code} crashed on {path}: {exc!r}" for rule, exc in failures)
            if ctx.pending:
                result.findings.extend(self._finalize(ctx))
        except RecursionError:
            result.findings = [parse_error_finding(path, "too deeply nested to analyse", 1, 1)]
        except Exception as exc:  # a rule's finish() or a fix that cannot be resolved
            result.internal_errors.append(f"internal error on {path}: {exc!r}")
        finally:
            # The context, the rules and their scopes refer to each other and to the tree;
            # emptying them lets reference counting free the tree now, so the cyclic
            # collector does not have to walk it.
            for holder in (ctx, *instances):
                if holder is not None:
                    holder.__dict__.clear()
        return result

    def _lint_other(self, path: str, relpath: str, source: SourceText, rules: list[type[Rule]]) -> LintResult:
        result = LintResult()
        suppressions = Suppressions.scan(source.lines)
        for rule in rules:
            check = getattr(rule, "check_text", None)
            if check is None:
                continue
            try:
                found = list(check(relpath, source))
            except Exception as exc:  # a broken rule must not take the file down
                result.internal_errors.append(f"{rule.code} crashed on {path}: {exc!r}")
                continue
            for row, col, end_col, message in found:
                # Formats without trailing comments take a `# noqa` on the line before.
                if suppressions.suppressed(rule.code, row) or suppressions.suppressed(rule.code, row - 1):
                    continue
                result.findings.append(
                    Finding(
                        code=rule.code,
                        message=message,
                        path=path,
                        start=Location(row, col),
                        end=Location(row, end_col),
                        noqa_row=row,
                        severity=rule.severity,
                        rule_name=rule.name,
                    )
                )
        return result

    def _finalize(self, ctx: FileContext) -> list[Finding]:
        targets: list[cst.CSTNode] = []
        for pending in ctx.pending:
            targets.append(pending.node)
            if pending.fix is not None:
                targets.extend(pending.fix.nodes())
        positions = node_positions(ctx.module, targets)
        suppressions = Suppressions.scan(ctx.source.lines)
        findings: list[Finding] = []
        seen: set[tuple[str, int, int]] = set()
        for pending in ctx.pending:
            code_range = positions.get(pending.node)
            if code_range is None:
                continue
            rule = pending.rule
            start = Location(code_range.start.line, code_range.start.column + 1)
            end = Location(code_range.end.line, code_range.end.column + 1)
            key = (rule.code, start.row, start.column)
            if key in seen:
                continue
            seen.add(key)
            if suppressions.suppressed(rule.code, start.row):
                continue
            fix = None
            if pending.fix is not None and not pending.fix.failed and pending.fix.edits:
                fix = resolve_fix(pending.fix, positions, ctx.source, ctx.module)
            edit_locations = (
                [(ctx.source.location(e.start), ctx.source.location(e.end)) for e in fix.edits] if fix else []
            )
            findings.append(
                Finding(
                    code=rule.code,
                    message=pending.message,
                    path=ctx.path,
                    start=start,
                    end=end,
                    fix=fix,
                    noqa_row=start.row,
                    severity=rule.severity,
                    rule_name=rule.name,
                    edit_locations=edit_locations,
                )
            )
        return findings

    # -- fixing ----------------------------------------------------------------

    def fix(
        self,
        path: str,
        relpath: str,
        source: SourceText,
        *,
        unsafe: bool,
        facts: FileFacts | None = None,
    ) -> FixResult:
        """Apply fixes until none applies (bounded); the result always parses."""
        allowed = {Applicability.SAFE, Applicability.UNSAFE} if unsafe else {Applicability.SAFE}
        original = source
        text = source.text
        applied = 0
        fixed: list[Finding] = []
        result = self.lint(path, relpath, source, facts)
        is_python = relpath.endswith((".py", ".pyi"))
        # Fix positions come from LibCST's tree; they point into the text only when the
        # tree reproduces the text exactly, which LibCST does not do for a few layouts
        # (a backslash continuation before the first statement, some whitespace-only
        # lines with mixed line endings).
        reproduced = not is_python
        for _ in range(MAX_FIX_ROUNDS):
            fixes = [f.fix for f in result.findings if f.fix is not None and f.fix.applicability in allowed]
            chosen = select_fixes([f for f in fixes if f is not None])
            if not chosen:
                break
            if not reproduced and not _reproduces(text):
                return FixResult(
                    original.text,
                    0,
                    self.lint(path, relpath, original, facts),
                    error=f"{path}: fixes not applied: the parser does not reproduce this file's layout exactly "
                    "(a line continuation or blank line it drops), so edits could land in the wrong place",
                )
            new_text = apply_edits(text, chosen)
            if new_text == text:
                break
            if is_python:
                try:
                    reproduced = parse_module(new_text).code == new_text
                except Exception:
                    codes = sorted({f.code for f in result.findings if f.fix in chosen})
                    return FixResult(
                        original.text,
                        0,
                        self.lint(path, relpath, original, facts),
                        error=f"{path}: fixes for {', '.join(codes)} produced invalid code; file left unchanged",
                    )
            text = new_text
            applied += len(chosen)
            fixed.extend(f for f in result.findings if f.fix is not None and any(f.fix is c for c in chosen))
            source = SourceText(text, source.encoding, source.bom)
            # Facts of the fixed text, not the indexed original: later rounds must see
            # the imports and names that earlier fixes added.
            result = self.lint(path, relpath, source, collect_facts(path, relpath, text))
        return FixResult(text, applied, result, fixed=fixed)


def _reproduces(text: str) -> bool:
    try:
        return parse_module(text).code == text
    except Exception:
        return False


def _glob_match(path: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(path, pattern):
        return True
    if "**/" in pattern and fnmatch.fnmatchcase(path, pattern.replace("**/", "")):
        return True
    return pattern.endswith("/") and (path.startswith(pattern) or f"/{pattern}" in f"/{path}")


def _syntax_error(path: str, text: str, exc: cst.ParserSyntaxError) -> Finding:
    """The stdlib compiler pinpoints most syntax errors better than LibCST's parser;
    its message and position are used when it also rejects the file."""

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except SyntaxError as err:
        if err.lineno:
            return parse_error_finding(path, f"SyntaxError: {err.msg}", err.lineno, (err.offset or 1))
    except (ValueError, RecursionError, MemoryError):
        pass
    message = exc.message.removeprefix("parser error: ")
    return parse_error_finding(path, message, exc.editor_line, exc.editor_column)


_HIERARCHY_ROLES = (ClassRole.BASE, ClassRole.ABSTRACT, ClassRole.MAPPED, ClassRole.SQLMODEL_MODEL)


def project_terms(project: ProjectIndex, sessions: SessionTypes) -> ProjectTerms:
    """Project symbols that make a file relevant although it names no SQLAlchemy API:
    session aliases, factories, engines, session dependencies and mapped models."""
    kinds: dict[str, set[DbKind]] = {}
    model_names: set[str] = set()
    model_bases: set[str] = set()
    models = ModelIndex.of(project)
    # Any part of a module name: ``src/app/db.py`` is imported as ``app.db``.
    packages = {part for module in project.files for part in module.split(".")}
    for facts in project.files.values():
        prefix = f"{facts.module}." if facts.module else ""
        for name in facts.values:
            qual = prefix + name
            found = {sessions.kind_of_value(qual), sessions.kind_of_type((qual, ()))} - {None}
            if found:
                kinds.setdefault(name, set()).update(found)  # type: ignore[arg-type]
            if models.info(qual).role in _HIERARCHY_ROLES:
                model_bases.add(name)
        for name in facts.functions:
            # Methods too (``Database.session()``): a call names only the last part.
            kind = sessions.dependency_kind(prefix + name)
            if kind is not None:
                kinds.setdefault(name.rsplit(".", 1)[-1], set()).add(kind)
        for name, cls in facts.classes.items():
            if cls.relationships or "__tablename__" in cls.body_names:
                model_names.add(name)
            if models.info(prefix + name).role in _HIERARCHY_ROLES:
                model_bases.add(name)
        # Names bound by imports of project modules too: a module may re-export a base
        # under another name.
        for name, qualname in facts.imports.bindings.items():
            if name in model_bases or qualname.split(".", 1)[0] not in packages:
                continue
            if models.info(qualname).role in _HIERARCHY_ROLES:
                model_bases.add(name)
    return ProjectTerms(
        session_names=frozenset(kinds),
        model_names=frozenset(model_names),
        asyncio=project.uses_asyncio,
        factory_names=frozenset(n for n, k in kinds.items() if k & {DbKind.SYNC_FACTORY, DbKind.ASYNC_FACTORY}),
        registry_names=frozenset(n for n, k in kinds.items() if k & {DbKind.SYNC_REGISTRY, DbKind.ASYNC_REGISTRY}),
        model_bases=frozenset(model_bases),
    )


def build_index(files: list[tuple[str, str, str]]) -> ProjectIndex:
    """Index (path, relpath, text) triples, skipping files that cannot hold facts."""
    return ProjectIndex([collect_facts(p, r, t) for p, r, t in files if wants_index(t, r)])


def lint_sources(
    sources: dict[str, str],
    *,
    select: tuple[str, ...] | None = None,
    settings: Settings | None = None,
) -> dict[str, list[Finding]]:
    """Lint an in-memory project (relative path -> code). Used by tests and examples."""
    from pathlib import Path

    from fastdb_lint.registry import resolve_selection

    if settings is None:
        codes = tuple(validate_selector(s) for s in select) if select else None
        settings = Settings(root=Path("."), select=codes, enabled=resolve_selection(codes))
    project = build_index([(p, p, t) for p, t in sources.items()])
    engine = Engine(settings, project)
    return {p: engine.lint(p, p, SourceText(t)).findings for p, t in sources.items()}
