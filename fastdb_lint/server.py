"""``fastdb-lint server``: the linter as a language server (LSP over stdio, pygls 2).

Documents are linted with the engine and configuration that ``fastdb-lint check`` uses:
settings come from the ``pyproject.toml`` found upward from each document, and each
project is indexed once from the files on disk, with the open documents' unsaved text
in place of their saved version. Lint work runs on one worker thread so that the
protocol stays responsive; edits while typing are debounced.

Each diagnostic carries, in ``data``, the document version it was computed for, its fix
(title, safety, edits) and its ``# noqa`` edit, so code actions need no new lint.
Positions are sent in the encoding negotiated at initialization (UTF-16 unless the
client offers UTF-8 or UTF-32).
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from fastdb_lint import __version__
from fastdb_lint.diagnostics import PARSE_ERROR, Applicability, Finding, Severity
from fastdb_lint.lsp_text import (
    UTF16,
    CommentMap,
    Position,
    TextChange,
    edit_change,
    location_position,
    minimal_edit,
    noqa_edit,
)
from fastdb_lint.lsp_workspace import Analysis, Document, Level, Notice, Workspace
from fastdb_lint.report import rule_url
from fastdb_lint.source import SourceText

NAME = "fastdb-lint"
FIX_ALL_KIND = f"{types.CodeActionKind.SourceFixAll.value}.{NAME}"
FIX_ALL_TITLE = f"{NAME}: Fix all auto-fixable problems"
# Seconds to wait after an edit before linting, so that typing is not linted per key.
CHANGE_DELAY = 0.1
WATCHED_FILES = (
    "**/*.py",
    "**/*.pyi",
    "**/alembic.ini",
    "**/pyproject.toml",
    "**/setup.cfg",
    "**/setup.py",
    "**/fastdb-lint.toml",
    "**/.gitignore",
)

T = TypeVar("T")


@dataclass
class DocumentResult:
    """The last analysis of a document version and the diagnostics published for it."""

    version: int | None
    analysis: Analysis | None
    diagnostics: list[types.Diagnostic] = field(default_factory=list)

    @property
    def has_safe_fix(self) -> bool:
        return self.analysis is not None and any(
            f.fix is not None and f.fix.applicability is Applicability.SAFE for f in self.analysis.findings
        )


def _position(position: Position) -> types.Position:
    return types.Position(line=position[0], character=position[1])


def _text_edit(change: TextChange) -> types.TextEdit:
    return types.TextEdit(
        range=types.Range(start=_position(change.start), end=_position(change.end)),
        new_text=change.new_text,
    )


def _edit_data(change: TextChange) -> dict[str, Any]:
    return {
        "range": {
            "start": {"line": change.start[0], "character": change.start[1]},
            "end": {"line": change.end[0], "character": change.end[1]},
        },
        "newText": change.new_text,
    }


def _edit_from_data(data: object) -> types.TextEdit | None:
    """A TextEdit from the JSON a client echoed back; None if it is malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("newText"), str):
        return None
    try:
        start, end = data["range"]["start"], data["range"]["end"]
        return types.TextEdit(
            range=types.Range(
                start=types.Position(line=int(start["line"]), character=int(start["character"])),
                end=types.Position(line=int(end["line"]), character=int(end["character"])),
            ),
            new_text=data["newText"],
        )
    except (KeyError, TypeError, ValueError):
        return None


def diagnostic_severity(finding: Finding) -> types.DiagnosticSeverity:
    if finding.code == PARSE_ERROR or finding.severity in (Severity.ERROR, Severity.SECURITY):
        return types.DiagnosticSeverity.Error
    return types.DiagnosticSeverity.Warning


def to_diagnostics(analysis: Analysis, version: int | None, encoding: str) -> list[types.Diagnostic]:
    source = analysis.source
    comments = CommentMap(source) if analysis.python and any(f.noqa_row for f in analysis.findings) else None
    diagnostics = []
    for finding in analysis.findings:
        data: dict[str, Any] = {"version": version}
        if finding.fix is not None:
            data["fix"] = {
                "title": finding.fix.message,
                "safe": finding.fix.applicability is Applicability.SAFE,
                "edits": [_edit_data(edit_change(source, e, encoding)) for e in finding.fix.edits],
            }
        if finding.noqa_row is not None:
            noqa = noqa_edit(source, finding.noqa_row, finding.code, comments=comments, python=analysis.python)
            if noqa is not None:
                data["noqa"] = _edit_data(edit_change(source, noqa, encoding))
        diagnostics.append(
            types.Diagnostic(
                range=types.Range(
                    start=_position(location_position(source, finding.start, encoding)),
                    end=_position(location_position(source, finding.end, encoding)),
                ),
                message=finding.message,
                severity=diagnostic_severity(finding),
                code=finding.code,
                code_description=types.CodeDescription(href=rule_url(finding.code)),
                source=NAME,
                data=data,
            )
        )
    return diagnostics


def _kind_wanted(only: object, kind: str) -> bool:
    """Whether a code action of ``kind`` answers a request limited to ``only``
    (kinds are hierarchical: ``source`` covers ``source.fixAll.fastdb-lint``)."""
    if not only or not isinstance(only, (list, tuple)):
        return True
    requested = [str(getattr(k, "value", k)) for k in only]
    return any(kind == k or kind.startswith(f"{k}.") for k in requested)


class FastdbLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(NAME, __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.files = Workspace(Path.cwd())
        self.results: dict[str, DocumentResult] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=NAME)
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._shown: set[str] = set()
        features: list[tuple[str, Callable[..., Any], object]] = [
            (types.INITIALIZED, self._initialized, None),
            (types.TEXT_DOCUMENT_DID_OPEN, self._did_open, None),
            (types.TEXT_DOCUMENT_DID_CHANGE, self._did_change, None),
            (types.TEXT_DOCUMENT_DID_SAVE, self._did_save, types.SaveOptions(include_text=False)),
            (types.TEXT_DOCUMENT_DID_CLOSE, self._did_close, None),
            (types.WORKSPACE_DID_CHANGE_WATCHED_FILES, self._watched_files_changed, None),
            (
                types.TEXT_DOCUMENT_CODE_ACTION,
                self._code_action,
                types.CodeActionOptions(
                    code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND],
                    resolve_provider=True,
                ),
            ),
            (types.CODE_ACTION_RESOLVE, self._resolve_code_action, None),
            (types.SHUTDOWN, self._shutdown, None),
        ]
        for method, handler, options in features:
            self._register(method, handler, options)

    def _register(self, method: str, handler: Callable[..., Any], options: object) -> None:
        if asyncio.iscoroutinefunction(handler):

            async def run_async(params: Any) -> Any:
                return await handler(params)

            self.feature(method, options)(run_async)
        else:

            def run(params: Any) -> Any:
                return handler(params)

            self.feature(method, options)(run)

    # -- helpers -----------------------------------------------------------------

    @property
    def encoding(self) -> str:
        encoding = self.workspace.position_encoding
        return str(getattr(encoding, "value", encoding) or UTF16)

    def _document(self, uri: str) -> tuple[Document, int | None] | None:
        text_document = self.workspace.text_documents.get(uri)
        if text_document is None:
            return None
        path = to_fs_path(uri)
        document = Document(text_document.source, Path(path) if path else None, text_document.language_id)
        return document, text_document.version

    def _open_version(self, uri: str) -> tuple[bool, int | None]:
        text_document = self.workspace.text_documents.get(uri)
        return (text_document is not None, text_document.version if text_document is not None else None)

    async def _run(self, function: Callable[..., T], *args: Any) -> T | None:
        """Run ``function`` on the worker thread; failures are logged, never raised."""

        def job() -> tuple[T | None, list[Notice]]:
            try:
                value: T | None = function(*args)
            except Exception as exc:
                detail = "".join(traceback.format_exception(exc))
                return None, [*self.files.drain_notices(), Notice(f"internal error: {exc!r}\n{detail}", Level.ERROR)]
            return value, self.files.drain_notices()

        value, notices = await asyncio.get_running_loop().run_in_executor(self._worker, job)
        for notice in notices:
            self._notify(notice)
        return value

    def _notify(self, notice: Notice) -> None:
        message = f"{NAME}: {notice.message}"
        kind = {
            Level.LOG: types.MessageType.Log,
            Level.WARNING: types.MessageType.Warning,
            Level.ERROR: types.MessageType.Error,
        }[notice.level]
        self.window_log_message(types.LogMessageParams(type=kind, message=message))
        headline = message.splitlines()[0]
        if notice.level is Level.ERROR and headline not in self._shown:
            self._shown.add(headline)
            self.window_show_message(types.ShowMessageParams(type=kind, message=headline))

    def _supports_document_changes(self) -> bool:
        workspace = self.client_capabilities.workspace
        edit = workspace.workspace_edit if workspace is not None else None
        return bool(edit is not None and edit.document_changes)

    def _supports_resolving_edits(self) -> bool:
        text_document = self.client_capabilities.text_document
        code_action = text_document.code_action if text_document is not None else None
        support = code_action.resolve_support if code_action is not None else None
        return support is not None and "edit" in support.properties

    def _workspace_edit(self, uri: str, version: int | None, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
        if self._supports_document_changes():
            return types.WorkspaceEdit(
                document_changes=[
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                        edits=list(edits),
                    )
                ]
            )
        return types.WorkspaceEdit(changes={uri: list(edits)})

    # -- linting -------------------------------------------------------------------

    def _analyse(self, document: Document, version: int | None, encoding: str) -> DocumentResult:
        analysis = self.files.analyse(document)
        if analysis is None:
            return DocumentResult(version, None)
        return DocumentResult(version, analysis, to_diagnostics(analysis, version, encoding))

    async def _lint_now(self, uri: str) -> DocumentResult | None:
        snapshot = self._document(uri)
        if snapshot is None:
            return None
        document, version = snapshot
        result = await self._run(self._analyse, document, version, self.encoding)
        if result is None or self._open_version(uri) != (True, version):
            return result
        self.results[uri] = result
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=result.diagnostics)
        )
        return result

    async def _lint_later(self, uri: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            await self._lint_now(uri)
        finally:
            if self._pending.get(uri) is asyncio.current_task():
                del self._pending[uri]

    def _schedule(self, uri: str, delay: float = 0.0) -> None:
        previous = self._pending.pop(uri, None)
        if previous is not None:
            previous.cancel()
        self._pending[uri] = asyncio.ensure_future(self._lint_later(uri, delay))

    def _relint_open_documents(self) -> None:
        for uri in list(self.workspace.text_documents):
            self._schedule(uri)

    async def _current(self, uri: str) -> DocumentResult | None:
        """The analysis of the document's current version (linting it if needed)."""
        open_, version = self._open_version(uri)
        if not open_:
            return None
        cached = self.results.get(uri)
        if cached is not None and cached.version == version:
            return cached
        return await self._lint_now(uri)

    # -- notifications ---------------------------------------------------------------

    def _initialized(self, params: types.InitializedParams) -> None:
        root = self.workspace.root_path
        if root:
            self.files.fallback_root = Path(root)
        workspace = self.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace is not None else None
        if watched is not None and watched.dynamic_registration:
            self.client_register_capability(
                types.RegistrationParams(
                    registrations=[
                        types.Registration(
                            id=f"{NAME}-watched-files",
                            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            register_options=types.DidChangeWatchedFilesRegistrationOptions(
                                watchers=[types.FileSystemWatcher(glob_pattern=g) for g in WATCHED_FILES]
                            ),
                        )
                    ]
                )
            )

    def _did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        self._schedule(params.text_document.uri)

    def _did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        self._schedule(params.text_document.uri, CHANGE_DELAY)

    async def _did_save(self, params: types.DidSaveTextDocumentParams) -> None:
        path = to_fs_path(params.text_document.uri)
        if path is None:
            return
        if await self._run(self.files.file_changed, Path(path)):
            self._relint_open_documents()

    async def _did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        pending = self._pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self.results.pop(uri, None)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        path = to_fs_path(uri)
        if path is not None:
            await self._run(self.files.closed, Path(path))

    async def _watched_files_changed(self, params: types.DidChangeWatchedFilesParams) -> None:
        changes = [
            (Path(path), change.type == types.FileChangeType.Deleted)
            for change in params.changes
            if (path := to_fs_path(change.uri)) is not None
        ]
        if await self._run(self._files_changed, changes):
            self._relint_open_documents()

    def _files_changed(self, changes: list[tuple[Path, bool]]) -> bool:
        affected = False
        for path, deleted in changes:
            affected = self.files.file_changed(path, deleted=deleted) or affected
        return affected

    def _shutdown(self, params: None) -> None:
        for task in self._pending.values():
            task.cancel()
        self._pending.clear()
        self._worker.shutdown(wait=False, cancel_futures=True)

    # -- code actions ------------------------------------------------------------------

    async def _code_action(self, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        uri = params.text_document.uri
        open_, version = self._open_version(uri)
        if not open_:
            return None
        only = params.context.only
        actions: list[types.CodeAction] = []
        if _kind_wanted(only, types.CodeActionKind.QuickFix.value):
            for diagnostic in params.context.diagnostics:
                data = diagnostic.data
                if diagnostic.source == NAME and isinstance(data, dict) and data.get("version") == version:
                    actions.extend(self._quick_fixes(uri, version, diagnostic, data))
        if _kind_wanted(only, FIX_ALL_KIND):
            fix_all = await self._fix_all_action(uri)
            if fix_all is not None:
                actions.append(fix_all)
        return actions or None

    def _quick_fixes(
        self, uri: str, version: int | None, diagnostic: types.Diagnostic, data: dict[str, Any]
    ) -> list[types.CodeAction]:
        code = str(diagnostic.code)
        actions = []
        fix = data.get("fix")
        if isinstance(fix, dict) and isinstance(fix.get("edits"), list):
            edits = [_edit_from_data(e) for e in fix["edits"]]
            if edits and all(e is not None for e in edits):
                safe = fix.get("safe") is True
                actions.append(
                    types.CodeAction(
                        title=f"{NAME} ({code}): {fix.get('title', 'Fix')}{'' if safe else ' (unsafe)'}",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[diagnostic],
                        edit=self._workspace_edit(uri, version, [e for e in edits if e is not None]),
                        is_preferred=True if safe else None,
                    )
                )
        noqa = _edit_from_data(data.get("noqa"))
        if noqa is not None:
            actions.append(
                types.CodeAction(
                    title=f"{NAME} ({code}): Suppress with # noqa: {code}",
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    edit=self._workspace_edit(uri, version, [noqa]),
                )
            )
        return actions

    async def _fix_all_action(self, uri: str) -> types.CodeAction | None:
        result = await self._current(uri)
        if result is None or not result.has_safe_fix:
            return None
        action = types.CodeAction(
            title=FIX_ALL_TITLE,
            kind=FIX_ALL_KIND,
            data={"uri": uri, "version": result.version},
        )
        if self._supports_resolving_edits():
            return action
        resolved = await self._resolve_code_action(action)
        return resolved if resolved.edit is not None else None

    async def _resolve_code_action(self, action: types.CodeAction) -> types.CodeAction:
        data = action.data
        if action.kind != FIX_ALL_KIND or not isinstance(data, dict) or not isinstance(data.get("uri"), str):
            return action
        uri = data["uri"]
        snapshot = self._document(uri)
        if snapshot is None or snapshot[1] != data.get("version"):
            return action
        document, version = snapshot
        encoding = self.encoding
        edit = await self._run(self._fix_all_edit, document, encoding)
        if edit is not None:
            action.edit = self._workspace_edit(uri, version, [edit])
        return action

    def _fix_all_edit(self, document: Document, encoding: str) -> types.TextEdit | None:
        outcome = self.files.fix_all(document)
        if outcome is None or outcome.error:
            return None
        edit = minimal_edit(document.text, outcome.text)
        if edit is None:
            return None
        return _text_edit(edit_change(SourceText(document.text), edit, encoding))


def create_server() -> FastdbLanguageServer:
    return FastdbLanguageServer()


def serve() -> None:
    """Speak LSP on standard input and output until the client says ``exit``."""
    create_server().start_io()
