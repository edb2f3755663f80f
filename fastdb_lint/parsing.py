"""Parsing with LibCST: safely (deep nesting is refused or given a large stack, never a
crash of the interpreter) and fast (nodes are built without LibCST's validation)."""

from __future__ import annotations

import ast
import builtins
import contextlib
import dataclasses
import functools
import inspect
import os
import queue
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import _HAS_DEFAULT_FACTORY  # type: ignore[attr-defined]

import libcst as cst

from fastdb_lint.memory import gc_paused
from fastdb_lint.walk import NODE_TYPES

# LibCST's native parser recurses on the C stack: input nested deeply enough crashes the
# interpreter instead of raising. CPython's parser refuses such input with an error, so
# text it rejects for depth never reaches LibCST; LibCST runs on a thread with a large
# stack for what CPython accepts (flat chains like ``a and b and ...`` still nest one
# level per operand in LibCST's tree), and lines longer than MAX_LINE_LENGTH are
# refused.
MAX_LINE_LENGTH = 100_000
_DEPTH_ERRORS = ("too many nested parentheses", "too many levels of indentation")
_PARSE_STACK_MIN = 256 * 1024 * 1024
_PARSE_STACK_MAX = 1024 * 1024 * 1024
_PARSE_STACK_PER_CHAR = 256
# Texts up to this length are parsed on one long-lived thread per process, whose stack
# (_PARSE_STACK_MIN) stays mapped; longer ones each get a thread of their own, so that
# the deep stack a huge file may need is given back.
_SHARED_PARSE_MAX_CHARS = 128 * 1024
_STACK_LOCK = threading.Lock()


class NestingError(Exception):
    """Text too deeply nested (or with a line too long) to be parsed safely."""

    def __init__(self, message: str, row: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


def check_nesting(text: str, *, compiled: bool = False) -> None:
    """Raise :class:`NestingError` for text LibCST must not be given: a line longer than
    MAX_LINE_LENGTH, or (unless ``compiled``: CPython is known to accept the text)
    nesting that CPython's own parser refuses."""
    if len(text) > MAX_LINE_LENGTH:
        for row, line in enumerate(text.splitlines(), start=1):
            if len(line) > MAX_LINE_LENGTH:
                raise NestingError(f"line {row} is too long to parse ({len(line)} characters)", row, 1)
    if compiled:
        return
    try:
        with warnings.catch_warnings(), gc_paused():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except (RecursionError, MemoryError) as exc:
        raise NestingError(f"too deeply nested to parse ({type(exc).__name__})") from None
    except SyntaxError as exc:
        if any(message in (exc.msg or "") for message in _DEPTH_ERRORS):
            raise NestingError(f"SyntaxError: {exc.msg}", exc.lineno or 1, exc.offset or 1) from None
    except ValueError:
        pass


def parse_module(text: str, *, compiled: bool = False) -> cst.Module:
    """``libcst.parse_module`` that cannot crash the interpreter on deep nesting; raises
    :class:`NestingError` for text it refuses."""
    check_nesting(text, compiled=compiled)
    if len(text) <= _SHARED_PARSE_MAX_CHARS:
        parser = _parse_thread()
        if parser is not None:
            return parser.run(_parse, text)
    stack = min(max(len(text) * _PARSE_STACK_PER_CHAR, _PARSE_STACK_MIN), _PARSE_STACK_MAX)
    return _with_stack(stack, _parse, text)


def _parse(text: str) -> cst.Module:
    with gc_paused():
        if _fast_construction_pays(len(text)):
            with _fast_node_construction():
                return cst.parse_module(text)
        return cst.parse_module(text)


# Building the fast initializers costs about as much as they save on this many
# characters of parsing; a process that parses less (one small file) does without.
_FAST_CONSTRUCTION_AFTER = 100_000
_PARSED_CHARS = 0


def _fast_construction_pays(size: int) -> bool:
    global _PARSED_CHARS
    _PARSED_CHARS += size
    return _PARSED_CHARS >= _FAST_CONSTRUCTION_AFTER or _fast_initializers.cache_info().currsize > 0


def prepare_fast_parsing() -> None:
    """Build and install what fast parsing needs now (in a process about to fork workers
    that will parse much, so that they inherit it)."""
    with _CONSTRUCTION_LOCK:
        _install_initializers()


_CONSTRUCTION_LOCK = threading.Lock()
_FAST_DEPTH = 0
# Read by every faster initializer: whether to call ``__post_init__`` (LibCST's
# ``_validate()``), as the dataclass's own ``__init__`` does. Off only while a parse runs.
_VALIDATING = types.CellType(True)
_INSTALLED = False


def _install_initializers() -> None:
    """Give every node class its faster initializer, once per process (the caller holds
    _CONSTRUCTION_LOCK). Classes keep them: assigning ``__init__`` invalidates what the
    interpreter caches about a class, so they are not swapped around each parse."""
    global _INSTALLED
    if not _INSTALLED:
        for cls, faster in _fast_initializers():
            cls.__init__ = faster  # type: ignore[misc]
        _INSTALLED = True


@functools.cache
def _fast_initializers() -> tuple[tuple[type, Callable[..., None]], ...]:
    """``(node class, a faster __init__)`` for every concrete LibCST node class."""
    found: list[tuple[type, Callable[..., None]]] = []
    for cls in sorted(NODE_TYPES, key=lambda node_type: node_type.__qualname__):
        if "__init__" in cls.__dict__ and not inspect.isabstract(cls) and cls.__module__.startswith("libcst."):
            faster = _initializer(cls)
            if faster is not None:
                found.append((cls, faster))
    return tuple(found)


def _initializer(cls: type) -> Callable[..., None] | None:
    """The ``__init__`` of the frozen dataclass ``cls``, setting slots through their
    descriptors, and calling ``__post_init__`` (LibCST's ``_validate()``) only while
    ``_VALIDATING`` holds; None for a class it cannot stand in for.

    Its code is a template shared by every class whose fields are slots at the same
    places (a few dozen templates for LibCST's hundreds of classes), with the fields'
    names as parameter names, their defaults as the function's defaults, and the
    setters, factories and names in its closure: compiling one function per class
    would cost more than it saves on a small run."""
    specs = dataclasses.fields(cls)
    values: dict[str, object] = {"_FACTORY": _HAS_DEFAULT_FACTORY, "_object_setattr": object.__setattr__}
    declared = cls.__dataclass_fields__.values()  # type: ignore[attr-defined]
    if any(spec._field_type is dataclasses._FIELD_INITVAR for spec in declared):  # type: ignore[attr-defined]
        return None  # an ``InitVar`` is a parameter of ``__init__`` that ``fields()`` does not list
    defaults: list[object] = []
    slots: list[bool] = []
    for number, spec in enumerate(specs):
        name = spec.name
        if not spec.init or spec.kw_only or not name.isidentifier() or name.startswith("_") or name == "self":
            return None
        if spec.default is not dataclasses.MISSING:
            defaults.append(spec.default)
        elif spec.default_factory is not dataclasses.MISSING:
            defaults.append(_HAS_DEFAULT_FACTORY)
            values[f"_factory_{number}"] = spec.default_factory
        elif defaults:
            return None  # a required field after one with a default: not a dataclass signature
        slot = next((klass.__dict__[name] for klass in cls.__mro__ if name in klass.__dict__), None)
        is_slot = isinstance(slot, types.MemberDescriptorType)
        slots.append(is_slot)
        if is_slot:
            values[f"_set_{number}"] = slot.__set__  # type: ignore[union-attr]
        else:
            values[f"_name_{number}"] = name
    post_init = hasattr(cls, "__post_init__")
    template = _template(tuple(slots), post_init)
    closure = tuple(
        _VALIDATING if name == "_validating" else types.CellType(values.get(name)) for name in template.co_freevars
    )
    code = template.replace(co_varnames=("self", *(spec.name for spec in specs)), co_name="__init__")
    if hasattr(code, "co_qualname"):  # Python 3.11+
        code = code.replace(co_qualname=f"{cls.__qualname__}.__init__")
    init = types.FunctionType(code, {"__builtins__": builtins}, "__init__", tuple(defaults) or None, closure)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


@functools.cache
def _template(slots: tuple[bool, ...], post_init: bool) -> types.CodeType:
    """The code of an initializer for fields that are slots where ``slots`` says so:
    each argument (or, when it is the factory sentinel, what its factory makes) set
    through its slot's setter or ``object.__setattr__``, then (with ``post_init``)
    ``self.__post_init__()`` unless validation is off."""
    params = [f"_arg_{number}" for number in range(len(slots))]
    free = ["_FACTORY", "_object_setattr", "_validating"]
    body = []
    for number, is_slot in enumerate(slots):
        value = f"_factory_{number}() if _arg_{number} is _FACTORY else _arg_{number}"
        free.append(f"_factory_{number}")
        if is_slot:
            free.append(f"_set_{number}")
            body.append(f"_set_{number}(self, {value})")
        else:
            free.append(f"_name_{number}")
            body.append(f"_object_setattr(self, _name_{number}, {value})")
    if post_init:
        body += ["if _validating:", "    self.__post_init__()"]
    source = "\n".join(
        [
            f"def _make({', '.join(free)}):",
            f"    def __init__({', '.join(['self', *params])}):",
            *(f"        {line}" for line in body or ["pass"]),
            "    return __init__",
        ]
    )
    outer = compile(source, "<fastdb-lint node initializer>", "exec").co_consts[0]
    return next(const for const in outer.co_consts if isinstance(const, types.CodeType))


@contextlib.contextmanager
def _fast_node_construction() -> Iterator[None]:
    """Node classes built meanwhile (the parser's nodes) skip ``_validate()`` and set
    their fields through their slot descriptors: about a tenth of a parse. LibCST
    validates every node it constructs, the parser's too, though what it builds from
    source text is valid by construction. Nodes that fixes build are validated as
    always, outside a parse."""
    global _FAST_DEPTH
    with _CONSTRUCTION_LOCK:
        _install_initializers()
        _FAST_DEPTH += 1
        _VALIDATING.cell_contents = False
    try:
        yield
    finally:
        with _CONSTRUCTION_LOCK:
            _FAST_DEPTH -= 1
            if _FAST_DEPTH == 0:
                _VALIDATING.cell_contents = True


_Outcome = tuple[cst.Module | None, BaseException | None]


class _ParseThread:
    """A daemon thread with a large stack that runs the calls handed to it, one at a time."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[str], cst.Module], str, queue.SimpleQueue[_Outcome]]] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._serve, name="fastdb-lint-parse", daemon=True)

    def run(self, func: Callable[[str], cst.Module], text: str) -> cst.Module:
        reply: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self._jobs.put((func, text, reply))
        module, failure = reply.get()
        if failure is not None:
            raise failure
        assert module is not None
        return module

    def _serve(self) -> None:
        while True:
            self._run_one(*self._jobs.get())

    @staticmethod
    def _run_one(func: Callable[[str], cst.Module], text: str, reply: queue.SimpleQueue[_Outcome]) -> None:
        try:
            outcome: _Outcome = (func(text), None)
        except BaseException as exc:  # re-raised in the calling thread
            outcome = (None, exc)
        reply.put(outcome)


_PARSER: _ParseThread | None = None
# Whether the platform refused a thread with a stack that large.
_PARSER_REFUSED = False


def _parse_thread() -> _ParseThread | None:
    """This process's parse thread, started on first use."""
    global _PARSER, _PARSER_REFUSED
    if _PARSER is None and not _PARSER_REFUSED:
        with _STACK_LOCK:
            if _PARSER is None and not _PARSER_REFUSED:
                parser = _ParseThread()
                previous = threading.stack_size()
                try:
                    threading.stack_size(_PARSE_STACK_MIN)
                    parser.thread.start()
                    _PARSER = parser
                except (ValueError, RuntimeError):
                    _PARSER_REFUSED = True
                finally:
                    threading.stack_size(previous)
    return _PARSER


def _reset_after_fork() -> None:
    """In a forked child, where the parent's parse thread does not run: a lock another
    thread held at the fork would stay held, and a parse it was running (validation
    off) would never end. No parse can span a fork in the forking thread itself."""
    global _PARSER, _STACK_LOCK, _CONSTRUCTION_LOCK, _FAST_DEPTH
    _PARSER = None
    _STACK_LOCK = threading.Lock()
    _CONSTRUCTION_LOCK = threading.Lock()
    _FAST_DEPTH = 0
    _VALIDATING.cell_contents = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _with_stack(size: int, func: Callable[[str], cst.Module], text: str) -> cst.Module:
    outcome: list[cst.Module] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(func(text))
        except BaseException as exc:  # re-raised in the calling thread
            failure.append(exc)

    thread: threading.Thread | None = threading.Thread(target=target, name="fastdb-lint-parse", daemon=True)
    with _STACK_LOCK:
        previous = threading.stack_size()
        try:
            threading.stack_size(size)
            assert thread is not None
            thread.start()
        except (ValueError, RuntimeError):  # the platform refuses a stack that large
            thread = None
        finally:
            threading.stack_size(previous)
    if thread is None:
        return func(text)
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
