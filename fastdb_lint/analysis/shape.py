"""A file's shape: which names it calls, and where (in loops, in ``try`` blocks, outside
functions), read from the stdlib ``ast`` tree in the index pass.

A rule declares, through :meth:`~fastdb_lint.rules.base.Rule.applies`, the shape a file
must have for the rule to be able to report anything in it; a file where no enabled
rule applies is never parsed with LibCST. A shape over-approximates: every set holds
at least what the rule's analysis could see, so a rule that reads it soundly never
misses a finding. Names are exact identifiers, not substrings of the text.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from typing import Any

from fastdb_lint.memory import gc_paused


@dataclass(frozen=True)
class FileShape:
    # Every identifier: names, attribute names, keyword argument names, imported names
    # (original and alias), names of functions, classes and parameters.
    names: frozenset[str]
    # The last name of every callee (``f`` in ``f()``, ``b`` in ``a.b()``); for a name
    # bound by ``from m import a as b`` (or ``import a as b``), ``a`` as well.
    calls: frozenset[str]
    # Calls anywhere inside a ``for``/``while`` statement or a comprehension (its
    # iterable, nested functions and ``else`` included).
    loop_calls: frozenset[str]
    # Calls anywhere inside a ``try`` statement that has ``except`` handlers.
    try_calls: frozenset[str]
    # Calls evaluated outside every function body (module and class level, decorators
    # and default values).
    module_calls: frozenset[str]
    # Keyword argument names of every call and class definition.
    keywords: frozenset[str]
    # The last name of every class base (``*b`` and ``b[...]`` read as ``b``).
    bases: frozenset[str]
    # Attribute names assigned to (``x.a = ...``, ``x.a: T = ...``, ``x.a += ...``,
    # tuple targets included), and those of augmented assignments alone.
    attribute_stores: frozenset[str]
    attribute_aug_stores: frozenset[str]
    # ``async def``, ``await``, ``async for`` or ``async with`` anywhere.
    has_async: bool
    # A plain (not ``async``) ``with`` statement anywhere.
    has_with: bool
    # Dotted names read by absolute imports: ``a.b`` for ``import a.b``; ``m`` and
    # ``m.n`` for ``from m import n`` (``m`` alone for ``from m import *``).
    import_paths: frozenset[str]
    # Before each ``://`` in a ``str`` constant (f-string text included; implicitly
    # concatenated literals are one constant), the longest run of URL scheme characters
    # (``[A-Za-z0-9_+]``), lowercased: ``postgresql+asyncpg`` for
    # ``"postgresql+asyncpg://app@db/app"``.
    url_schemes: frozenset[str]
    # A class statement with two or more bases.
    multiple_bases: bool
    # A relative import (``from . import x``, ``from ..m import x``).
    relative_import: bool
    # Identifiers inside the strings of annotations (``x: "orm.Mapped[int]"``,
    # ``Mapped["dt.date"]``, nested strings included), which ``names`` does not hold.
    string_annotation_names: frozenset[str]
    # The last name of every exception class an ``except`` clause names (tuple elements
    # included) and, for a name bound by an import ``as``, the original name; ``""``
    # for a bare ``except:``.
    handler_types: frozenset[str]
    # Keyword arguments given the literal ``False`` (``nullable=False``).
    false_keywords: frozenset[str]
    # Functions defined outside every function whose body is only ``pass``, ``...``
    # and string constants.
    empty_functions: frozenset[str]


_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_ASYNC = (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)
_TRY = tuple(t for t in (ast.Try, getattr(ast, "TryStar", None)) if t is not None)
_IN_LOOP, _IN_TRY, _IN_FUNCTION = 1, 2, 4
# Fields of a function definition evaluated in the enclosing scope.
_DEFINITION_TIME = ("decorator_list", "args", "returns", "type_params")
_URL_SCHEME = re.compile(r"([A-Za-z0-9_+]*)://")


def parse_or_none(text: str) -> ast.Module | None:
    """The stdlib ``ast`` tree of ``text``, or None when CPython cannot parse it."""
    try:
        with warnings.catch_warnings(), gc_paused():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _is_noop(stmt: ast.stmt) -> bool:
    """``pass``, ``...`` or a string (implicitly concatenated f-strings included)."""
    if type(stmt) is ast.Pass:
        return True
    if type(stmt) is not ast.Expr:
        return False
    value = stmt.value
    return type(value) is ast.JoinedStr or (type(value) is ast.Constant and type(value.value) in (str, bytes, type(...)))


def _last_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _store_targets(target: ast.AST, out: list[ast.Attribute]) -> None:
    if isinstance(target, ast.Attribute):
        out.append(target)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _store_targets(element, out)
    elif isinstance(target, ast.Starred):
        _store_targets(target.value, out)


def _handler_types(expr: ast.AST, out: set[str]) -> None:
    if isinstance(expr, ast.Tuple):
        for element in expr.elts:
            _handler_types(element, out)
    elif isinstance(expr, ast.Starred):
        _handler_types(expr.value, out)
    else:
        name = _last_name(expr)
        if name is not None:
            out.add(name)


def _string_annotation_names(annotation: ast.AST, out: set[str], *, in_string: bool = False) -> None:
    """Add to ``out`` the identifiers of the strings in ``annotation``, parsed as the type
    analysis parses string annotations."""
    if type(annotation) is ast.Name and not in_string:
        return
    for node in ast.walk(annotation):
        cls = type(node)
        if cls is ast.Name:
            if in_string:
                out.add(node.id)
        elif cls is ast.Attribute:
            if in_string:
                out.add(node.attr)
        elif cls is ast.Constant and type(node.value) is str:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    parsed = ast.parse(node.value.strip(), mode="eval")
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            _string_annotation_names(parsed.body, out, in_string=True)


def file_shape(tree: ast.Module) -> FileShape:
    names: set[str] = set()
    calls: set[str] = set()
    loop_calls: set[str] = set()
    try_calls: set[str] = set()
    module_calls: set[str] = set()
    keywords: set[str] = set()
    bases: set[str] = set()
    stores: set[str] = set()
    aug_stores: set[str] = set()
    aliases: dict[str, str] = {}
    has_async = has_with = False
    import_paths: set[str] = set()
    url_schemes: set[str] = set()
    multiple_bases = relative_import = False
    annotation_names: set[str] = set()
    handler_types: set[str] = set()
    false_keywords: set[str] = set()
    empty_functions: set[str] = set()
    base_names: list[str] = []
    called_names: list[tuple[str, int]] = []

    stack: list[tuple[Any, int]] = [(tree, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, flags = pop()
        cls = type(node)
        if cls is ast.Name:
            names.add(node.id)
            continue
        if cls is ast.Attribute:
            names.add(node.attr)
        elif cls is ast.Call:
            callee = node.func
            name = _last_name(callee)
            if name is not None:
                calls.add(name)
                if flags & _IN_LOOP:
                    loop_calls.add(name)
                if flags & _IN_TRY:
                    try_calls.add(name)
                if not flags & _IN_FUNCTION:
                    module_calls.add(name)
                if type(callee) is ast.Name:
                    called_names.append((name, flags))
        elif cls is ast.keyword:
            if node.arg is not None:
                names.add(node.arg)
                keywords.add(node.arg)
                if type(node.value) is ast.Constant and node.value.value is False:
                    false_keywords.add(node.arg)
        elif cls is ast.alias:
            original = node.name
            names.update(original.split("."))
            if node.asname is not None:
                names.add(node.asname)
                aliases[node.asname] = original.rsplit(".", 1)[-1]
            continue
        elif cls is ast.arg:
            names.add(node.arg)
            if node.annotation is not None:
                _string_annotation_names(node.annotation, annotation_names)
        elif cls in _FUNCTIONS:
            if cls is not ast.Lambda:
                names.add(node.name)
                if not flags & _IN_FUNCTION and all(_is_noop(stmt) for stmt in node.body):
                    empty_functions.add(node.name)
                if node.returns is not None:
                    _string_annotation_names(node.returns, annotation_names)
            if cls is ast.AsyncFunctionDef:
                has_async = True
            if cls is ast.Lambda:
                push((node.body, flags | _IN_FUNCTION))
            else:
                for child in reversed(node.body):
                    push((child, flags | _IN_FUNCTION))
            for field in _DEFINITION_TIME:
                value = getattr(node, field, None)
                if isinstance(value, list):
                    for child in reversed(value):
                        push((child, flags))
                elif isinstance(value, ast.AST):
                    push((value, flags))
            continue
        elif cls is ast.ClassDef:
            names.add(node.name)
            if len(node.bases) > 1:
                multiple_bases = True
            for base in node.bases:
                if isinstance(base, ast.Starred):
                    # LibCST keeps the star on the argument: the analyses read ``b``.
                    base = base.value
                base_name = _last_name(base.value if isinstance(base, ast.Subscript) else base)
                if base_name is not None:
                    bases.add(base_name)
                    base_names.append(base_name)
        elif cls in _LOOPS:
            flags |= _IN_LOOP
        elif cls in _TRY:
            if node.handlers:
                flags |= _IN_TRY
        elif cls is ast.With:
            has_with = True
        elif cls is ast.ExceptHandler:
            if node.type is None:
                handler_types.add("")
            else:
                _handler_types(node.type, handler_types)
        elif cls is ast.Constant:
            value = node.value
            if type(value) is str and "://" in value:
                url_schemes.update(scheme.lower() for scheme in _URL_SCHEME.findall(value))
            continue
        elif cls is ast.Import:
            import_paths.update(alias.name for alias in node.names)
        elif cls is ast.ImportFrom:
            if node.level:
                relative_import = True
            if not node.level and node.module is not None:
                import_paths.add(node.module)
                import_paths.update(f"{node.module}.{a.name}" for a in node.names if a.name != "*")
        elif cls in (ast.Assign, ast.AnnAssign, ast.AugAssign):
            found: list[ast.Attribute] = []
            for target in node.targets if cls is ast.Assign else (node.target,):
                _store_targets(target, found)
            stores.update(a.attr for a in found)
            if cls is ast.AugAssign:
                aug_stores.update(a.attr for a in found)
            elif cls is ast.AnnAssign:
                _string_annotation_names(node.annotation, annotation_names)
        if cls in _ASYNC:
            has_async = True
        for field in reversed(cls._fields):
            value = getattr(node, field)
            if type(value) is list:
                for child in reversed(value):
                    if isinstance(child, ast.AST):
                        push((child, flags))
            elif isinstance(value, ast.AST):
                push((value, flags))

    for name, flags in called_names:
        original = aliases.get(name)
        if original is not None:
            calls.add(original)
            if flags & _IN_LOOP:
                loop_calls.add(original)
            if flags & _IN_TRY:
                try_calls.add(original)
            if not flags & _IN_FUNCTION:
                module_calls.add(original)
    handler_types.update([aliases[name] for name in handler_types if name in aliases])
    bases.update(aliases[name] for name in base_names if name in aliases)
    return FileShape(
        names=frozenset(names),
        calls=frozenset(calls),
        loop_calls=frozenset(loop_calls),
        try_calls=frozenset(try_calls),
        module_calls=frozenset(module_calls),
        keywords=frozenset(keywords),
        bases=frozenset(bases),
        attribute_stores=frozenset(stores),
        attribute_aug_stores=frozenset(aug_stores),
        has_async=has_async,
        has_with=has_with,
        import_paths=frozenset(import_paths),
        url_schemes=frozenset(url_schemes),
        multiple_bases=multiple_bases,
        relative_import=relative_import,
        string_annotation_names=frozenset(annotation_names),
        handler_types=frozenset(handler_types),
        false_keywords=frozenset(false_keywords),
        empty_functions=frozenset(empty_functions),
    )
