"""``fastdb-lint server``: a real server process driven over stdio by a small JSON-RPC
client, plus the text helpers it relies on."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from fastdb_lint.diagnostics import Edit, Location
from fastdb_lint.lsp_text import (
    UTF8,
    UTF16,
    UTF32,
    code_units,
    location_position,
    minimal_edit,
    noqa_edit,
)
from fastdb_lint.report import rule_url
from fastdb_lint.source import SourceText
from tests.conftest import REPO

TIMEOUT = 15.0

DB = """\
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session():
    async with SessionLocal() as session:
        yield session
"""
ROUTES = """\
from fastapi import APIRouter, Depends

from app.db import get_session

router = APIRouter()


@router.post("/items")
async def create_item(session=Depends(get_session)):
    session.rollback()
"""
CALL = "async_sessionmaker(engine)"
FACTORY_LINE = f'LABEL = "🚀 déjà vu"; SessionLocal = {CALL}'
FACTORY = f"""\
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.db import engine

{FACTORY_LINE}
"""
FACTORY_FIXED = FACTORY.replace(CALL, "async_sessionmaker(engine, expire_on_commit=False)")
FACTORY_CLEAN = FACTORY_FIXED


class LspClient:
    """Content-Length framed JSON-RPC over a server's stdin and stdout."""

    def __init__(self, cwd: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))}
        self.stderr_path = cwd / "server-stderr.log"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastdb_lint", "server"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin: IO[bytes] = self.process.stdin
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        self._next_id = 0
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        while True:
            headers: dict[str, str] = {}
            while True:
                line = stream.readline()
                if not line:
                    self._messages.put(None)
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.decode("ascii").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self._messages.put(json.loads(body.decode("utf-8")))

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}, ensure_ascii=False).encode("utf-8")
        self._stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
        self._stdin.flush()

    def _next(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no message from the server in time; stderr:\n{self.stderr()}")
        try:
            message = self._messages.get(timeout=remaining)
        except queue.Empty:
            raise AssertionError(f"no message from the server in time; stderr:\n{self.stderr()}") from None
        if message is None:
            raise AssertionError(f"the server closed its output; stderr:\n{self.stderr()}")
        if "method" in message and "id" in message:
            self._send({"id": message["id"], "result": None})
        elif "method" in message:
            self.notifications.append(message)
        return message

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any) -> Any:
        self._next_id += 1
        request_id = self._next_id
        self._send({"id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._next(deadline)
            if message.get("id") == request_id and "method" not in message:
                assert "error" not in message, message["error"]
                return message.get("result")

    def wait_for(self, method: str, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first notification ``method`` whose params ``accept`` takes (also among
        those already received), removing it from the backlog."""
        deadline = time.monotonic() + TIMEOUT
        seen = 0
        while True:
            for index, message in enumerate(self.notifications[seen:], start=seen):
                if message["method"] == method and accept(message["params"]):
                    del self.notifications[index]
                    return message["params"]
            seen = len(self.notifications)
            self._next(deadline)

    def diagnostics(self, uri: str, version: int) -> list[dict[str, Any]]:
        params = self.wait_for(
            "textDocument/publishDiagnostics", lambda p: p["uri"] == uri and p.get("version") == version
        )
        return params["diagnostics"]

    def initialize(self, root: Path, encodings: list[str]) -> dict[str, Any]:
        result = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": root.as_uri(),
                "capabilities": {
                    "general": {"positionEncodings": encodings},
                    "workspace": {"workspaceEdit": {"documentChanges": True}},
                    "textDocument": {"codeAction": {"isPreferredSupport": True}},
                },
            },
        )
        self.notify("initialized", {})
        return result

    def open(self, path: Path, text: str, version: int = 1) -> str:
        uri = path.as_uri()
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}},
        )
        return uri

    def close(self) -> int:
        try:
            if self.process.poll() is None:
                self.request("shutdown", None)
                self.notify("exit", None)
            return self.process.wait(timeout=TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._stderr.close()


def apply_text_edits(text: str, edits: list[dict[str, Any]], encoding: str = UTF16) -> str:
    """Apply LSP TextEdits the way an editor does (positions in ``encoding`` units)."""
    source = SourceText(text)

    def offset(position: dict[str, int]) -> int:
        line = source.line(position["line"] + 1)
        units = 0
        column = 0
        while column < len(line) and units < position["character"]:
            units += code_units(line[column], encoding)
            column += 1
        return source.line_starts[position["line"]] + column

    spans = sorted(((offset(e["range"]["start"]), offset(e["range"]["end"]), e["newText"]) for e in edits), reverse=True)
    for start, end, new_text in spans:
        text = text[:start] + new_text + text[end:]
    return text


def action_edits(action: dict[str, Any], uri: str, version: int) -> list[dict[str, Any]]:
    (change,) = action["edit"]["documentChanges"]
    assert change["textDocument"] == {"uri": uri, "version": version}
    return change["edits"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.fastdb-lint]\nselect = ["FDB201", "FDB202"]\n', encoding="utf-8"
    )
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("", encoding="utf-8")
    (app / "db.py").write_text(DB, encoding="utf-8")
    # On disk the factory is already fixed: the server must lint the editor's text.
    (app / "factory.py").write_text(FACTORY_CLEAN, encoding="utf-8")
    (app / "routes.py").write_text(ROUTES, encoding="utf-8")
    return tmp_path


@pytest.fixture
def client(project: Path) -> Any:
    lsp = LspClient(project)
    yield lsp
    if lsp.process.poll() is None:
        lsp.process.kill()
        lsp.process.wait()


def test_server_end_to_end(client: LspClient, project: Path) -> None:
    init = client.initialize(project, ["utf-16", "utf-32"])
    capabilities = init["capabilities"]
    assert capabilities["positionEncoding"] == "utf-16"
    assert capabilities["textDocumentSync"]["change"] == 1
    assert "source.fixAll.fastdb-lint" in capabilities["codeActionProvider"]["codeActionKinds"]
    assert init["serverInfo"]["name"] == "fastdb-lint"

    factory = project / "app" / "factory.py"
    uri = client.open(factory, FACTORY, version=1)
    (diagnostic,) = client.diagnostics(uri, 1)
    prefix = FACTORY_LINE[: FACTORY_LINE.index(CALL)]
    utf16_column = len(prefix.encode("utf-16-le")) // 2
    assert utf16_column == len(prefix) + 1, "the emoji takes two UTF-16 units"
    assert diagnostic["range"] == {
        "start": {"line": 4, "character": utf16_column},
        "end": {"line": 4, "character": utf16_column + len(CALL)},
    }
    assert diagnostic["code"] == "FDB201"
    assert diagnostic["source"] == "fastdb-lint"
    assert diagnostic["severity"] == 2
    assert diagnostic["codeDescription"]["href"] == rule_url("FDB201")
    assert "expire_on_commit" in diagnostic["message"]

    # The rest of the project comes from disk: FDB202 needs app/db.py's dependency.
    routes_uri = client.open(project / "app" / "routes.py", ROUTES, version=1)
    (missing_await,) = client.diagnostics(routes_uri, 1)
    assert missing_await["code"] == "FDB202"
    assert missing_await["range"]["start"] == {"line": 9, "character": 4}

    actions = client.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": diagnostic["range"],
            "context": {"diagnostics": [diagnostic]},
        },
    )
    by_title = {a["title"]: a for a in actions}
    fix = by_title["fastdb-lint (FDB201): Set `expire_on_commit=False`"]
    assert fix["kind"] == "quickfix" and fix["isPreferred"] is True
    assert fix["diagnostics"] == [diagnostic]
    assert apply_text_edits(FACTORY, action_edits(fix, uri, 1)) == FACTORY_FIXED
    noqa = by_title["fastdb-lint (FDB201): Suppress with # noqa: FDB201"]
    assert noqa["kind"] == "quickfix"
    assert apply_text_edits(FACTORY, action_edits(noqa, uri, 1)) == FACTORY.replace(
        FACTORY_LINE, f"{FACTORY_LINE}  # noqa: FDB201"
    )
    fix_all_in_list = by_title["fastdb-lint: Fix all auto-fixable problems"]
    assert fix_all_in_list["kind"] == "source.fixAll.fastdb-lint"

    (fix_all,) = client.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": [], "only": ["source.fixAll"]},
        },
    )
    assert fix_all["kind"] == "source.fixAll.fastdb-lint"
    assert apply_text_edits(FACTORY, action_edits(fix_all, uri, 1)) == FACTORY_FIXED
    resolved = client.request("codeAction/resolve", {**fix_all, "edit": None})
    assert apply_text_edits(FACTORY, action_edits(resolved, uri, 1)) == FACTORY_FIXED
    assert client.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": diagnostic["range"],
            "context": {"diagnostics": [diagnostic], "only": ["refactor"]},
        },
    ) is None

    # A line that already has a noqa list gets the code appended to it.
    with_noqa = FACTORY.replace(FACTORY_LINE, f"{FACTORY_LINE}  # noqa: E702")
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": with_noqa}]},
    )
    (diagnostic,) = client.diagnostics(uri, 2)
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic]}},
    )
    (noqa,) = [a for a in actions if "Suppress" in a["title"]]
    assert apply_text_edits(with_noqa, action_edits(noqa, uri, 2)) == FACTORY.replace(
        FACTORY_LINE, f"{FACTORY_LINE}  # noqa: E702, FDB201"
    )

    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": FACTORY_CLEAN}]},
    )
    assert client.diagnostics(uri, 3) == []
    # Actions computed for an older version are not offered.
    assert client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic]}},
    ) is None

    # Saving a file updates the index: `get_session` no longer yields a session.
    db = project / "app" / "db.py"
    db.write_text("def get_session():\n    return None\n", encoding="utf-8")
    client.notify("textDocument/didSave", {"textDocument": {"uri": db.as_uri()}})
    assert client.diagnostics(routes_uri, 1) == []

    # A configuration change seen by the client's file watcher: settings are read
    # again, a broken file is reported once and the defaults apply.
    (project / "pyproject.toml").write_text('[tool.fastdb-lint]\nselect = "FDB201"\n', encoding="utf-8")
    client.notify(
        "workspace/didChangeWatchedFiles",
        {"changes": [{"uri": (project / "pyproject.toml").as_uri(), "type": 2}]},
    )
    shown = client.wait_for("window/showMessage", lambda p: True)
    assert shown["type"] == 1 and "`select` must be a list of strings" in shown["message"]
    assert client.diagnostics(uri, 3) == []

    client.notify("textDocument/didClose", {"textDocument": {"uri": routes_uri}})
    closed = client.wait_for("textDocument/publishDiagnostics", lambda p: p["uri"] == routes_uri)
    assert closed["diagnostics"] == []
    assert client.close() == 0


def test_server_negotiates_utf8_positions(client: LspClient, project: Path) -> None:
    init = client.initialize(project, [UTF8, UTF16])
    assert init["capabilities"]["positionEncoding"] == UTF8
    uri = client.open(project / "app" / "factory.py", FACTORY)
    (diagnostic,) = client.diagnostics(uri, 1)
    prefix = FACTORY_LINE[: FACTORY_LINE.index(CALL)]
    assert diagnostic["range"]["start"] == {"line": 4, "character": len(prefix.encode("utf-8"))}
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic]}},
    )
    fix = next(a for a in actions if a.get("isPreferred"))
    assert apply_text_edits(FACTORY, action_edits(fix, uri, 1), UTF8) == FACTORY_FIXED
    assert client.close() == 0


def test_cli_imports_pygls_only_for_the_server(project: Path) -> None:
    code = (
        "import sys\n"
        "from fastdb_lint.cli import main\n"
        "try:\n"
        "    main(['check', 'app'], prog_name='fastdb-lint')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('pygls' in sys.modules, 'fastdb_lint.server' in sys.modules)\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pygls' or name.startswith('pygls.'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "main(['server'], prog_name='fastdb-lint')\n"
    )
    result = _python(code, project)
    assert result.stdout.strip().splitlines()[-1] == "False False"
    assert result.returncode == 2
    assert result.stderr.strip() == "fastdb-lint: error: the language server needs pygls 2: pip install 'fastdb-lint[lsp]'"


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, timeout=TIMEOUT
    )


# -- text helpers --------------------------------------------------------------------


def test_code_units_per_encoding() -> None:
    text = 'x = "🚀é"'
    assert code_units(text, UTF32) == 8
    assert code_units(text, UTF16) == 9
    assert code_units(text, UTF8) == 12


def test_location_position_clamps_past_line_and_file_ends() -> None:
    source = SourceText("ab\r\ncd")
    assert location_position(source, Location(1, 9), UTF16) == (0, 2)
    assert location_position(source, Location(5, 1), UTF16) == (1, 2)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("x = f(a)", "x = f(a)  # noqa: FDB201"),
        ("x = f(a)   ", "x = f(a)  # noqa: FDB201"),
        ("x = f(a)  # noqa: E501", "x = f(a)  # noqa: E501, FDB201"),
        ("x = f(a)  # NOQA:E501,W291 trailing words", "x = f(a)  # NOQA:E501,W291, FDB201 trailing words"),
        ("x = f(a)  # type: ignore", "x = f(a)  # type: ignore  # noqa: FDB201"),
        ('x = f("# noqa: E501")', 'x = f("# noqa: E501")  # noqa: FDB201'),
    ],
)
def test_noqa_edit(line: str, expected: str) -> None:
    source = SourceText(f"import os\n{line}\n")
    edit = noqa_edit(source, 2, "FDB201")
    assert edit is not None
    assert _apply(source.text, edit) == f"import os\n{expected}\n"


def test_noqa_edit_refuses_lines_that_cannot_take_a_comment() -> None:
    source = SourceText('q = text("""SELECT\n  1""")\nx = a + \\\n    b\n')
    assert noqa_edit(source, 1, "FDB301") is None
    assert noqa_edit(source, 3, "FDB201") is None


def test_noqa_edit_above_a_line_for_other_files() -> None:
    source = SourceText("[alembic]\n  sqlalchemy.url = x\n")
    edit = noqa_edit(source, 2, "FDB605", python=False)
    assert edit is not None
    assert _apply(source.text, edit) == "[alembic]\n  # noqa: FDB605\n  sqlalchemy.url = x\n"
    again = SourceText(_apply(source.text, edit))
    edit = noqa_edit(again, 3, "FDB606", python=False)
    assert edit is not None
    assert _apply(again.text, edit) == "[alembic]\n  # noqa: FDB605, FDB606\n  sqlalchemy.url = x\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("a = f(x)\n", "a = f(x, y=1)\n"),
        ("same", "same"),
        ("a\r\nb\r\n", "a\r\nc\r\nb\r\n"),
        ("a\r\n", "a\rb\n"),
        ("", "new\n"),
        ("gone\n", ""),
    ],
)
def test_minimal_edit(before: str, after: str) -> None:
    edit = minimal_edit(before, after)
    if before == after:
        assert edit is None
        return
    assert edit is not None
    assert _apply(before, edit) == after
    for offset in (edit.start, edit.end):
        assert not (0 < offset < len(before) and before[offset - 1] == "\r" and before[offset] == "\n")


def _apply(text: str, edit: Edit) -> str:
    return text[: edit.start] + edit.content + text[edit.end :]
