"""LibCST parsing: on a thread with a large stack, and with nodes built without LibCST's
validation while (and only while) a parse runs."""

from __future__ import annotations

import dataclasses
import gc
import inspect
import os
import signal
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import libcst as cst
import pytest

from fastdb_lint.parsing import _fast_initializers, _fast_node_construction, parse_module, prepare_fast_parsing
from tests.conftest import run_python


def parse_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fastdb-lint-parse"]


def test_parses_share_one_thread():
    for n in range(5):
        code = f"x = {n}\n"
        assert parse_module(code).code == code
    assert len(parse_threads()) == 1


def test_parse_errors_reach_the_caller():
    with pytest.raises(cst.ParserSyntaxError):
        parse_module("def (:\n")
    assert parse_module("y = 1\n").code == "y = 1\n"


def test_concurrent_parses():
    texts = [f"def f{n}():\n    return {n}\n" * 20 for n in range(40)]
    with ThreadPoolExecutor(4) as pool:
        assert [m.code for m in pool.map(parse_module, texts)] == texts


def test_a_long_text_parses_on_a_thread_of_its_own():
    code = "value = 1\n" * 20_000
    assert parse_module(code).code == code
    assert len(parse_threads()) <= 1


def test_collector_state_is_restored():
    parse_module("a = [1]\n")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_module("b = [2]\n")
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_parse_in_a_forked_child():
    parse_module("before = 1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with the parse thread (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: a hang is ended by the alarm
        signal.alarm(30)
        try:
            ok = parse_module("after = 2\n").code == "after = 2\n"
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert parse_module("again = 3\n").code == "again = 3\n"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_during_another_threads_parse_validates_and_parses():
    prepare_fast_parsing()
    inside, release = threading.Event(), threading.Event()

    def parse_in_progress() -> None:
        with _fast_node_construction():
            inside.set()
            release.wait(30)

    thread = threading.Thread(target=parse_in_progress)
    thread.start()
    try:
        assert inside.wait(30)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the child: a hang is ended by the alarm
            signal.alarm(30)
            try:
                try:
                    cst.Name("not a name")
                    ok = False
                except cst.CSTValidationError:
                    ok = parse_module("after = 2\n").code == "after = 2\n"
                    with _fast_node_construction():
                        cst.Name("unvalidated in a parse")
                    cst.Name("valid")
            except BaseException:
                ok = False
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        release.set()
        thread.join()
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")


def test_parsing_skips_node_validation_only_while_it_parses():
    code = "async def f(session):\n    return (await session.execute(q)).scalars()\n"
    prepare_fast_parsing()
    module = parse_module(code)
    assert module.code == code and module.deep_equals(cst.parse_module(code))
    # Outside a parse, an invalid node is refused as LibCST always does.
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")
    with _fast_node_construction():
        with _fast_node_construction():
            cst.Name("not a name")
        cst.Name("still unvalidated")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")
    # A parse that fails leaves validation on.
    with pytest.raises(cst.ParserSyntaxError):
        parse_module("def (:\n", compiled=True)
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")


RICH_CODE = """\
from __future__ import annotations
import asyncio as aio, os.path
@decorator(arg, *args, key=1, **kwargs)
class Repo[T](Base, metaclass=Meta):
    x: int = 1
    async def get(self, /, a, *, b: "str" = f"{1!r:>{width}}", **kw) -> list[T]:
        async with aio.timeout(1) as t, other():
            async for row in await self.stream():
                yield [i async for i in row if (n := i) > 0]
        try:
            del a[1:2, ::3], b
        except* (ValueError, TypeError) as group:
            raise RuntimeError from group
        else:
            pass
        finally:
            nonlocal_value = lambda x=1, *y, **z: (x, *y, {**z})
        match self:
            case Repo(x=1) | {"k": [1, *rest]} if rest:
                return ~a ** -b @ c // d
            case _:
                global g
        return not a and b or c if d else e
type Alias[K] = dict[K, "Repo[K]"]
print(t"template {value}", end="")
"""


def test_the_parse_builds_the_tree_libcst_builds():
    module = parse_module(RICH_CODE)
    assert module.code == RICH_CODE
    assert module.deep_equals(cst.parse_module(RICH_CODE))


def test_every_node_class_is_built_faster():
    def concrete(cls: type) -> set[type]:
        found = {cls} if "__init__" in cls.__dict__ and not inspect.isabstract(cls) else set()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("libcst."):
                found |= concrete(sub)
        return found

    classes = {cls for cls, _ in _fast_initializers()}
    assert classes == concrete(cst.CSTNode)
    assert cst.Name in classes and cst.Module in classes and cst.FunctionDef in classes


def _same(value: object, other: object) -> bool:
    if isinstance(value, cst.CSTNode):
        return isinstance(other, cst.CSTNode) and value.deep_equals(other)
    if isinstance(value, (tuple, list)):
        return (
            type(value) is type(other)
            and len(value) == len(other)  # type: ignore[arg-type]
            and all(_same(a, b) for a, b in zip(value, other))  # type: ignore[call-overload]
        )
    return value == other


def test_a_faster_initializer_sets_what_the_dataclass_would(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls, faster in _fast_initializers():
        given: dict[str, object] = {}
        node = object.__new__(cls)
        specs = dataclasses.fields(cls)
        for spec in specs:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                given[spec.name] = object()
        with _fast_node_construction():
            faster(node, **given)
        for spec in specs:
            value = getattr(node, spec.name)
            if spec.name in given:
                assert value is given[spec.name], (cls, spec.name)
            elif spec.default is not dataclasses.MISSING:
                assert value is spec.default, (cls, spec.name)
            else:
                fresh = spec.default_factory()
                assert _same(value, fresh) and value is not fresh, (cls, spec.name)
        # Positional arguments bind in field order, as the dataclass's do.
        marker = object()
        positional = object.__new__(cls)
        with _fast_node_construction():
            faster(positional, *[marker] * len(specs))
        assert all(getattr(positional, spec.name) is marker for spec in specs), cls
        # It calls ``__post_init__`` (validation) as the dataclass's does, but in a parse.
        calls: list[object] = []
        with monkeypatch.context() as patch:
            patch.setattr(cls, "__post_init__", lambda self: calls.append(self))
            validated = object.__new__(cls)
            faster(validated, **given)
            with _fast_node_construction():
                faster(object.__new__(cls), **given)
        assert calls == [validated], cls


def test_nodes_stay_frozen_and_the_initializers_stay_installed():
    prepare_fast_parsing()
    faster = dict(_fast_initializers())[cst.Name]
    assert cst.Name.__dict__["__init__"] is faster
    with _fast_node_construction():
        assert cst.Name.__dict__["__init__"] is faster
    module = parse_module("value = 1\n")
    # Installed once: a parse does not assign ``__init__`` again.
    assert cst.Name.__dict__["__init__"] is faster
    with pytest.raises(dataclasses.FrozenInstanceError):
        module.body[0].body[0].targets[0].target.value = "other"  # type: ignore[attr-defined,misc]


def test_a_small_parse_does_without_the_fast_initializers():
    script = (
        "from fastdb_lint import parsing\n"
        "built = parsing._fast_initializers.cache_info().currsize\n"
        "parsing.parse_module('x = 1\\n')\n"
        "print(built, parsing._fast_initializers.cache_info().currsize)\n"
        "text = 'value = call(a, b=[1, 2])\\n' * (parsing._FAST_CONSTRUCTION_AFTER // 20)\n"
        "assert parsing.parse_module(text).code == text\n"
        "print(parsing._fast_initializers.cache_info().currsize)\n"
    )
    assert run_python(script).split() == ["0", "0", "1"]
