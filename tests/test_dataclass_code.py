"""The memo of compiled dataclass methods: classes built through it are the classes
``dataclasses`` builds, a second process compiles nothing, and a bad store is ignored."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import marshal
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fastdb_lint.dataclass_code import CodeMemo, compiled_dataclass_methods, default_store
from tests.conftest import REPO, run_python

# Classes that exercise each generated method: __init__ with defaults, factories,
# InitVar and __post_init__, fields left out of __init__, frozen __setattr__ and
# __delattr__, eq, order, hash, repr, slots and keyword-only fields.
CLASSES = """
import dataclasses
from dataclasses import InitVar, dataclass, field

@dataclass(frozen=True, order=True)
class Point:
    x: int
    y: int = 0
    tags: tuple = ()

@dataclass
class Bag:
    items: list = field(default_factory=list)
    scale: InitVar[int] = 1
    total: int = field(init=False, default=0)

    def __post_init__(self, scale):
        self.total = len(self.items) * scale

@dataclass(eq=True, unsafe_hash=True, repr=False)
class Key:
    name: str
    hidden: int = field(default=0, compare=False, hash=False)

@dataclass(slots=True, kw_only=True)
class Options:
    fast: bool = True
    level: int = 2
"""


@pytest.fixture(autouse=True)
def _bytecode_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)


def _build(namespace_name: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": namespace_name}
    exec(compile(CLASSES, f"<{namespace_name}>", "exec", dont_inherit=True), namespace)
    return namespace


def _behaviour(ns: dict[str, object]) -> list[object]:
    Point, Bag, Key, Options = (ns[name] for name in ("Point", "Bag", "Key", "Options"))
    p = Point(1, 2)  # type: ignore[operator]
    out: list[object] = [repr(p), p == Point(1, 2), p < Point(1, 3), hash(p) == hash(Point(1, 2))]  # type: ignore[operator]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.y  # type: ignore[attr-defined]
    bag = Bag([1, 2], scale=3)  # type: ignore[operator]
    out += [repr(bag), bag.total, Bag().items is not Bag().items]  # type: ignore[attr-defined,operator]
    out += [Key("a", 1) == Key("a", 2), hash(Key("a", 1)) == hash(Key("a", 2)), "Key(" in repr(Key("a"))]  # type: ignore[operator]
    with pytest.raises(TypeError):
        Options(False)  # type: ignore[operator]
    options = Options(level=5)  # type: ignore[operator]
    out += [repr(options), hasattr(options, "__dict__")]
    return out


def _method_code(ns: dict[str, object]) -> dict[str, tuple[object, ...]]:
    codes = {}
    for class_name in ("Point", "Bag", "Key", "Options"):
        cls = ns[class_name]
        for name, value in vars(cls).items():
            code = getattr(value, "__code__", None)
            if code is not None and code.co_filename == "<string>":
                annotations = repr(getattr(value, "__annotations__", None))
                codes[f"{class_name}.{name}"] = (code.co_code, code.co_consts, code.co_names, annotations)
    return codes


def test_classes_built_through_the_memo_are_those_dataclasses_builds(tmp_path: Path) -> None:
    plain = _build("plain")
    with compiled_dataclass_methods(tmp_path / "store") as memo:
        assert memo is not None
        first = _build("first")
        compiled = memo.added
    with compiled_dataclass_methods(tmp_path / "store") as memo:
        assert memo is not None
        second = _build("second")
        assert memo.added == 0  # every method came from the store
    assert compiled > 0
    assert _behaviour(first) == _behaviour(plain) == _behaviour(second)
    assert _method_code(first) == _method_code(plain) == _method_code(second)
    assert len(_method_code(plain)) >= 10


def test_the_patch_is_only_in_place_within_the_context(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with compiled_dataclass_methods(tmp_path / "store"):
            assert isinstance(vars(dataclasses)["exec"], CodeMemo)
            raise RuntimeError
    assert "exec" not in vars(dataclasses)
    # Nested contexts leave the outer memo in place.
    with compiled_dataclass_methods(tmp_path / "store") as outer:
        with compiled_dataclass_methods(tmp_path / "other") as inner:
            assert inner is None
        assert vars(dataclasses)["exec"] is outer
    assert "exec" not in vars(dataclasses)


def test_exec_without_globals_runs_in_the_callers_namespace() -> None:
    memo = CodeMemo({})
    namespace: dict[str, object] = {}
    memo("seen = __name__", None, namespace)
    assert namespace["seen"] == __name__
    local_result: dict[str, object] = {}
    memo("result['value'] = marker", {"result": local_result, "marker": "given"})
    assert local_result == {"value": "given"}


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a store at all",
        b"\x00\x00\x00\x00\x00" + b"garbage",
        importlib.util.MAGIC_NUMBER + bytes([sys.flags.optimize]) + b"\xff\xfe truncated",
        importlib.util.MAGIC_NUMBER + bytes([sys.flags.optimize]) + marshal.dumps(["a list"]),
        importlib.util.MAGIC_NUMBER + bytes([sys.flags.optimize]) + marshal.dumps({"text": 1}),
    ],
)
def test_a_store_that_cannot_be_read_is_ignored_and_rewritten(tmp_path: Path, content: bytes) -> None:
    store = tmp_path / "store"
    store.write_bytes(content)
    with compiled_dataclass_methods(store):
        plain = _behaviour(_build("plain"))
        namespace = _build("after")
    assert _behaviour(namespace) == plain
    with compiled_dataclass_methods(store) as memo:
        _build("again")
        assert memo is not None and memo.added == 0


def test_a_store_from_another_bytecode_format_is_not_loaded(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with compiled_dataclass_methods(store):
        _build("first")
    data = store.read_bytes()
    magic = importlib.util.MAGIC_NUMBER
    store.write_bytes(bytes([magic[0] ^ 1]) + data[1:])
    with compiled_dataclass_methods(store) as memo:
        _build("second")
        assert memo is not None and memo.added > 0


def test_nothing_is_written_when_bytecode_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    with compiled_dataclass_methods(tmp_path / "store") as memo:
        _build("plain")
        assert memo is not None and memo.added > 0
    assert not (tmp_path / "store").exists()


def test_the_store_keeps_only_what_a_run_used(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with compiled_dataclass_methods(store):
        _build("first")
        dataclasses.make_dataclass("Gone", [("only_here", int), ("and_here", str)])
    with compiled_dataclass_methods(store) as memo:
        assert memo is not None
        assert any("only_here" in text for text in memo.known)
        dataclasses.make_dataclass("New", [("fresh", int)])
    with compiled_dataclass_methods(store) as memo:
        assert memo is not None
        assert not any("only_here" in text for text in memo.known)
        assert any("fresh" in text for text in memo.known)


def test_default_store_sits_with_the_bytecode() -> None:
    store = default_store()
    assert store is not None
    bytecode = Path(importlib.util.cache_from_source(str(REPO / "fastdb_lint" / "dataclass_code.py")))
    assert store.parent == bytecode.parent
    assert sys.implementation.cache_tag in store.name


def test_a_second_process_compiles_none_of_libcsts_methods(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import json
        import sys
        from pathlib import Path
        sys.dont_write_bytecode = False
        from fastdb_lint.dataclass_code import compiled_dataclass_methods
        with compiled_dataclass_methods(Path({str(tmp_path / "store")!r})) as memo:
            import libcst
            module = libcst.parse_module("async def f(s):\\n    await s.execute(q)  # c\\n")
            print(json.dumps([memo.added, len(memo.used), module.code]))
        """
    )
    added, used, code = json.loads(run_python(script))
    assert added == used > 100  # LibCST's node classes
    added_again, used_again, code_again = json.loads(run_python(script))
    assert (added_again, used_again) == (0, used)
    assert code == code_again == "async def f(s):\n    await s.execute(q)  # c\n"


def test_the_program_keeps_the_store_where_python_keeps_bytecode(tmp_path: Path) -> None:
    prefix = tmp_path / "pycache"
    source = tmp_path / "app.py"
    source.write_text("from sqlalchemy.orm import Session\n\ndef f(session: Session):\n    return session.query(User).all()\n")
    env = {
        **os.environ,
        "PYTHONPYCACHEPREFIX": str(prefix),
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "fastdb_lint", "check", "--no-cache", str(source)]
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    stores = list(prefix.rglob("dataclass-code.*"))
    assert len(stores) == 1, stores
    written = stores[0].stat().st_mtime_ns, stores[0].read_bytes()
    second = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert (first.returncode, first.stdout) == (second.returncode, second.stdout) == (1, first.stdout)
    assert "FDB301" in first.stdout
    # Nothing new was compiled: the store is not rewritten.
    assert (stores[0].stat().st_mtime_ns, stores[0].read_bytes()) == written


def test_the_store_is_created_as_python_creates_bytecode(tmp_path: Path) -> None:
    store = tmp_path / "pycache" / "store"
    umask = os.umask(0o022)
    os.umask(umask)
    with compiled_dataclass_methods(store):
        _build("plain")
    assert stat.S_IMODE(store.stat().st_mode) == 0o666 & ~umask
    assert [path.name for path in store.parent.iterdir()] == ["store"]  # no temporary left
