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
    # Calls evaluated outside every function body (module and class level, decorators
    # and default values).
    module_calls: frozenset[str]
    # Keyword argument names of every call and class definition.
    keywords: frozenset[str]
    # The last name of every class base (``*b`` and ``b[...]`` read as ``b``).
    bases: frozenset[str]
    # ``async def``, ``await``, ``async for`` or ``async with`` anywhere.
    has_async: bool
    # A plain (not ``async``) ``with`` statement anywhere.
    has_with: bool
    # Dotted names read by absolute imports: ``a.b`` for ``import a.b``; ``m`` and
    # ``m.n`` for ``from m import n`` (``m`` alone for ``from m import *``).
    import_paths: frozenset[str]
    # A relative import (``from . import x``, ``from ..m import x``).
    relative_import: bool
    # Identifiers inside the strings of annotations (``x: "orm.Mapped[int]"``,
    # ``Mapped["dt.date"]``, nested strings included), which ``names`` does not hold.
    string_annotation_names: frozenset[str]
    # The last name of every exception class an ``except`` clause names (tuple elements
    # included) and, for a name bound by an import ``as``, the original name; ``""``
    # for a bare ``except:``.
    handler_types: frozenset[str]
    # Functions defined outside every function whose body is only ``pass``, ``...``
    # and string constants.
    empty_functions: frozenset[str]
    # The last name of the callee of every ``def``/``async def`` decorator that is a
    # call (``get`` for ``@router.get("/items")``).
    decorator_calls: frozenset[str]
    # Attribute names (``b`` in ``a.b``, loaded or stored).
    attribute_names: frozenset[str]
    # The last name of every callee called with at least one argument (positional,
    # keyword or unpacked) and, for a name bound by an import ``as``, the original name.
    calls_with_args: frozenset[str]
    # The same for the callees whose first positional argument is a list display
    # (``select`` for ``select([a, b])``).
    list_arg_calls: frozenset[str]
    # ``(a, b)`` for every method ``b`` called on what a call of ``a`` returns, awaited
    # or not: ``("query", "get")`` for ``x.query(M).get(pk)``, ``("execute", "all")``
    # for ``(await x.execute(s)).all()``; ``a`` is the last name of the inner callee
    # (and, for a name bound by an import ``as``, the original name too).
    chained_calls: frozenset[tuple[str, str]]
    # An f-string with a replacement field, a ``%`` or ``+`` binary operation or a
    # ``+=``: every way, but ``.format()`` (see ``calls``), of building text from values.
    has_formatting: bool
    # Calls anywhere inside a ``lambda`` (nested functions included) and, for a name
    # bound by an import ``as``, the original name too.
    lambda_calls: frozenset[str]
    # For every class statement: its name, the last name of each base (``*b`` and
    # ``b[...]`` read as ``b``), then the original names of the bases bound by an
    # import ``as``.
    class_bases: frozenset[tuple[str, ...]]
    # Classes whose body (its own statements: assignment and annotation targets,
    # functions, classes) binds neither ``__tablename__`` nor ``__table__``, and binds
    # ``__abstract__``, if at all, last to the literal ``False``.
    tableless_classes: frozenset[str]
    # The last name of every callee whose call is the whole value of an assignment made
    # directly in a class body (``Column`` for ``id = Column(...)``) and, for a name
    # bound by an import ``as``, the original name too.
    class_assigned_calls: frozenset[str]
    # The same for the callees of calls without ``*``/``**`` arguments, ``index=``, or a
    # ``unique=``/``primary_key=`` other than the literal ``False``, that have a
    # ``foreign_key=`` or a positional ``ForeignKey(...)`` (or a call of a name imported
    # ``as`` from ``ForeignKey``): ``mapped_column`` for ``mapped_column(ForeignKey("u.id"))``.
    unindexed_foreign_keys: frozenset[str]
    # The same for the callees given, directly as an argument, a call without ``*``/``**``
    # arguments that has ``nullable=False`` (the literal) and no ``server_default`` but
    # the literal ``None``: ``add_column`` for ``op.add_column("t", sa.Column("c",
    # sa.String, nullable=False))``.
    not_null_arguments: frozenset[str]
    # The last name of every callee whose result is called at once (``sessionmaker`` for
    # ``sessionmaker(bind=engine)()``) and, for a name bound by an import ``as``, the
    # original name too.
    called_results: frozenset[str]
    # ``keyword=name`` for every keyword argument whose value is a name or an attribute
    # (``name`` its last name), ``keyword=name()`` for a call of one without arguments,
    # ``keyword=name(...)`` with arguments, a ``lambda`` returning a call read as the
    # call: ``default=now(...)`` for ``default=lambda: datetime.now(timezone.utc)``;
    # for a name bound by an import ``as``, the entries of the original name too.
    keyword_values: frozenset[str]
    # Names assigned the literal ``None`` outside every function and class: each name
    # target of ``x = None`` (``x = y = None`` included) and ``x: T = None``.
    module_none_names: frozenset[str]
    # The last name of every callee whose call is the operand of an ``await``
    # (``execute`` for ``await session.execute(stmt)``) and, for a name bound by an
    # import ``as``, the original name too; the same for the next three.
    awaited_calls: frozenset[str]
    # Calls whose innermost enclosing function, as the lint traversal scopes calls, is a
    # plain ``def``: a def's decorators, parameter defaults and annotations are in it;
    # lambdas and classes are not functions.
    plain_def_calls: frozenset[str]
    # Calls whose innermost enclosing function, scoped the same way, is an ``async def``,
    # but for the operands of ``await``, decorators and calls inside a ``lambda``.
    unawaited_async_calls: frozenset[str]
    # Calls in the body (not inside a nested function, lambda or class) of a ``try``
    # statement that has an ``except`` clause without a ``raise`` or a ``.rollback()``,
    # ``.close()`` or ``.aclose()`` call of its own (those inside a nested function,
    # class or ``except`` clause are not its own).
    quiet_try_calls: frozenset[str]
    # Before each ``://`` that a ``:`` then an ``@`` follow in one literal text of a
    # ``str`` constant (an f-string's replacement fields split it; implicitly
    # concatenated literals are one constant), the longest run of URL scheme characters
    # (``[A-Za-z0-9_+]``), lowercased: the URLs that can carry a literal password
    # (``postgresql`` for ``"postgresql://app:pw@db/app"``, not for
    # ``f"postgresql://{user}:{password}@db/app"``).
    credential_url_schemes: frozenset[str]
    # Names ``n`` given an augmented assignment to an attribute (``n.a += 1``) that are
    # also bound to a call, an ``await`` or a name: ``n = v`` (annotated, chained and
    # ``:=`` included) or ``for n in v`` (comprehensions included).
    aug_call_owners: frozenset[str]
    # The function scopes, as the session analysis sees them: ``(parent, parameters)``
    # for each, the parent by index; 0 is the module (``(-1, {})``). A ``def`` opens one
    # (its decorators, parameters and annotations included), whose parameters are the
    # named ones (not ``*args``/``**kwargs``); a class body, a lambda or a comprehension
    # belongs to the scope around it.
    scopes: tuple[tuple[int, frozenset[str]], ...]
    # For every method call ``r.m(...)``: ``(m, scoped, other, scope)``, ``scoped`` and
    # ``other`` being what the session analysis can give ``r`` a kind through (see
    # ``_kind_names``): plain names, resolved in the call's ``scope``, and the rest
    # (attribute names, ``"self.x"``), resolved the same way anywhere in the file (the
    # scope is 0 without plain names). None
    # for an ``await``, a subscript... (this and the next two leave out entries without
    # names).
    method_receivers: frozenset[tuple[str, frozenset[str], frozenset[str], int]]
    # The same for the method calls inside loops (as ``loop_calls``).
    loop_method_receivers: frozenset[tuple[str, frozenset[str], frozenset[str], int]]
    # ``(name, scoped, other, scope)`` for every binding through which the session
    # analysis can give a name a kind in ``scope``, ``scoped`` and ``other`` being what
    # the kind can come from (as for ``method_receivers``): a parameter (every
    # identifier of its annotation, string annotations included, and of its default); an
    # assignment, annotated or not, to a name or to ``self.x``/``cls.x`` (as ``"self.x"``:
    # the value's ``_kind_names`` and the annotation's identifiers); an annotation in a
    # class body (as ``"self.x"``); ``with ... as name`` (the context's ``_kind_names``);
    # an import ``as`` (the original last name). Bindings of ``self.x`` and imports are
    # in the module's scope wherever they are.
    kind_sources: frozenset[tuple[str, frozenset[str], frozenset[str], int]]
    # ``(m, calls, root)`` for every method call ``r.m(...)``: the last names of the
    # callees along ``r``'s chain of calls, attributes and ``await``s, and the name the
    # chain starts from (``""`` if none): ``("delete", {"query", "filter"}, "db")`` for
    # ``db.query(M).filter(c).delete()``; callees bound by an import ``as`` add their
    # original names. This and the next two leave out chains without calls or name.
    receiver_chains: frozenset[tuple[str, frozenset[str], str]]
    # The same for the first argument of every call given a positional one (not
    # ``*``-unpacked), with the callee's last name: ``("execute", {"values", "update"},
    # "update")`` for ``session.execute(update(M).values(a=1))``.
    argument_chains: frozenset[tuple[str, frozenset[str], str]]
    # For every ``.update()``/``.delete()`` called on a chain through a ``query()`` call:
    # the method and the last names of the callees between it and the outermost
    # ``query()``: ``("delete", {"filter"})`` for ``db.query(M).filter(c).delete()``.
    query_writes: frozenset[tuple[str, frozenset[str]]]
    # The same for the value of every assignment to a name (``=``, annotated, ``:=``),
    # with the name: ``("rows", {"all", "scalars"}, "session")`` for
    # ``rows = (await session.scalars(stmt)).all()``.
    assigned_chains: frozenset[tuple[str, frozenset[str], str]]
    # Every name (``ast.Name``) anywhere inside the arguments of a call whose callee's
    # last name is ``add_task`` or ``BackgroundTask``; every name of the file when one
    # of these is bound by an import ``as`` (its calls cannot be told by name).
    task_argument_names: frozenset[str]


_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_ASYNC = (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)
_TRY = tuple(t for t in (ast.Try, getattr(ast, "TryStar", None)) if t is not None)
_IN_LOOP, _IN_FUNCTION = 1, 4
# Inside an ``async def``, inside a plain ``def`` (see ``plain_def_calls``), in the
# body of a ``try`` with a quiet ``except`` clause (see ``quiet_try_calls``).
_IN_ASYNC_DEF, _IN_PLAIN_DEF, _IN_QUIET_TRY = 1024, 2048, 4096
_IN_LAMBDA, _IN_CLASS = 8, 16
# The bits above these flags hold the index of the function scope (see ``scope_parents``).
_SCOPE_SHIFT = 16
_FLAGS = (1 << _SCOPE_SHIFT) - 1
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


def _binds_table(body: list[ast.stmt]) -> bool:
    """Whether a class body binds ``__tablename__`` or ``__table__``, or binds
    ``__abstract__`` last to anything but the literal ``False``."""
    abstract = False
    for stmt in body:
        cls = type(stmt)
        value: ast.expr | None = None
        if cls is ast.Assign:
            targets = [t.id for t in stmt.targets if type(t) is ast.Name]
            value = stmt.value
        elif cls is ast.AnnAssign:
            targets = [stmt.target.id] if type(stmt.target) is ast.Name else []
            value = stmt.value
        elif cls in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            targets = [stmt.name]
        else:
            continue
        if "__tablename__" in targets or "__table__" in targets:
            return True
        if "__abstract__" in targets:
            abstract = not (type(value) is ast.Constant and value.value is False)
    return abstract


def _keyword_value(value: ast.expr) -> tuple[ast.expr, str] | None:
    """The name or attribute a keyword argument's value is, or calls (a ``lambda``
    returning a call read as the call), and ``""``, ``"()"`` or ``"(...)"``."""
    if type(value) is ast.Lambda and type(value.body) is ast.Call:
        value = value.body
    suffix = ""
    if type(value) is ast.Call:
        suffix = "(...)" if value.args or value.keywords else "()"
        value = value.func
    return (value, suffix) if type(value) in (ast.Name, ast.Attribute) else None


def _literal(expr: ast.expr, value: object) -> bool:
    return type(expr) is ast.Constant and expr.value is value


def _has_splat(call: ast.Call) -> bool:
    return any(type(a) is ast.Starred for a in call.args) or any(k.arg is None for k in call.keywords)


def _unindexed(call: ast.Call) -> bool:
    """No ``*``/``**`` arguments, no ``index=``, ``unique=``/``primary_key=`` only ``False``."""
    for keyword in call.keywords:
        if keyword.arg is None or keyword.arg == "index":
            return False
        if keyword.arg in ("unique", "primary_key") and not _literal(keyword.value, False):
            return False
    return not any(type(a) is ast.Starred for a in call.args)


def _not_null(call: ast.Call) -> bool:
    """``nullable=False`` and no ``server_default`` but ``None``, without ``*``/``**``."""
    if _has_splat(call):
        return False
    keywords = {k.arg: k.value for k in call.keywords}
    nullable, default = keywords.get("nullable"), keywords.get("server_default")
    return nullable is not None and _literal(nullable, False) and (default is None or _literal(default, None))


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

# Methods an ``except`` clause calls to clean up after a failed session (see
# ``quiet_try_calls``).
_CLEANUP_METHODS = frozenset({"rollback", "close", "aclose"})
_OWN_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ExceptHandler)
# The values a binding counts with for ``aug_call_owners``.
_BINDING_VALUES = (ast.Call, ast.Await, ast.Name)
# Fields holding nothing a shape records: expression contexts and operators (read by
# their parent where they matter).
_LEAF_FIELDS = frozenset({"ctx", "op", "ops"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    """``cls``'s fields that may hold nodes worth walking, last first."""
    fields = _CHILD_FIELDS[cls] = tuple(f for f in reversed(cls._fields) if f not in _LEAF_FIELDS)  # type: ignore[attr-defined]
    return fields


def _quiet_handler(handler: ast.ExceptHandler) -> bool:
    """An ``except`` clause without a ``raise`` or a ``.rollback()``/``.close()``/
    ``.aclose()`` call of its own (nested functions, classes and ``except`` clauses
    have their own)."""
    stack: list[ast.AST] = list(handler.body)
    while stack:
        node = stack.pop()
        cls = type(node)
        if cls in _OWN_SCOPES:
            continue
        if cls is ast.Raise:
            return False
        if cls is ast.Call and type(node.func) is ast.Attribute and node.func.attr in _CLEANUP_METHODS:
            return False
        stack.extend(ast.iter_child_nodes(node))
    return True


def _literal_pieces(values: list[ast.expr]) -> list[str | None]:
    """The literal texts of an f-string's parts (adjacent ones joined), None for each
    replacement field."""
    pieces: list[str | None] = []
    for part in values:
        if type(part) is ast.Constant and type(part.value) is str:
            last = pieces[-1] if pieces else None
            if last is not None:
                pieces[-1] = last + part.value
            else:
                pieces.append(part.value)
        else:
            pieces.append(None)
    return pieces


def _credential_schemes(pieces: list[str | None], out: set[str]) -> None:
    """Add to ``out`` the schemes of the ``://`` in ``pieces`` (a string's literal texts
    in order, None for a replacement field) that a ``:`` then an ``@`` follow within one
    piece."""
    if not any(piece is not None and "@" in piece for piece in pieces):
        return
    later = False
    for piece in reversed(pieces):
        if piece is None:
            continue
        for match in _URL_SCHEME.finditer(piece):
            colon = piece.find(":", match.end())
            if later or (colon >= 0 and piece.find("@", colon + 1) >= 0):
                out.add(match.group(1).lower())
        colon = piece.find(":")
        if colon >= 0 and piece.find("@", colon + 1) >= 0:
            later = True


# Nodes that can bind a name (or ``self.x``) to something the session analysis types.
_KIND_BINDERS = frozenset({ast.arguments, ast.Assign, ast.AnnAssign, ast.With, ast.AsyncWith, ast.alias, ast.ClassDef})
# Methods whose result's kind the session analysis derives from the receiver's kind.
_KIND_FROM_RECEIVER = ("begin", "connect")
_NO_NAMES: frozenset[str] = frozenset()
# Methods of a query that write.
_QUERY_WRITES = frozenset({"update", "delete"})
# Callees that hand their arguments to a background task.
_TASK_SUBMITTERS = frozenset({"add_task", "BackgroundTask"})


def _identifiers(node: ast.AST | None, out: set[str]) -> None:
    """Add every name and attribute name of ``node`` to ``out``, those of the strings in
    it read as annotations included."""
    if node is None:
        return
    node_cls = type(node)
    if node_cls is ast.Name:
        out.add(node.id)
        return
    if node_cls is ast.Constant and type(node.value) is not str:
        return
    for child in ast.walk(node):
        child_cls = type(child)
        if child_cls is ast.Name:
            out.add(child.id)
        elif child_cls is ast.Attribute:
            out.add(child.attr)
        elif child_cls is ast.Constant and type(child.value) is str:
            _string_annotation_names(child, out)


def _kind_names(expr: ast.AST, scoped: set[str], other: set[str]) -> None:
    """Add the names through which the session analysis can give ``expr`` a kind: a
    name (to ``scoped``: which binding it reads depends on the scope); the last name of
    an attribute (``"self.x"`` for ``self.x``/``cls.x``) to ``other``; for a call, those
    of its callee and, for ``x.begin()``/``x.connect()``, those of ``x``."""
    cls = type(expr)
    if cls is ast.Name:
        scoped.add(expr.id)
    elif cls is ast.Attribute:
        owner = expr.value
        other.add(f"self.{expr.attr}" if type(owner) is ast.Name and owner.id in ("self", "cls") else expr.attr)
    elif cls is ast.Call:
        func = expr.func
        if type(func) is not ast.Call:
            _kind_names(func, scoped, other)
        if type(func) is ast.Attribute and func.attr in _KIND_FROM_RECEIVER:
            _kind_names(func.value, scoped, other)


def _binding_key(target: ast.AST) -> str | None:
    if type(target) is ast.Name:
        return target.id
    if type(target) is ast.Attribute and type(target.value) is ast.Name and target.value.id in ("self", "cls"):
        return f"self.{target.attr}"
    return None


def _walk_chain(expr: ast.AST, stop: str | None = None) -> tuple[set[str], ast.AST]:
    """The last names of the callees along ``expr``'s chain of calls, attributes and
    ``await``s, and where the walk ended: the chain's root or, with ``stop``, the
    outermost call whose callee's last name is ``stop`` or that calls a plain name
    (neither of which it counts)."""
    calls: set[str] = set()
    while True:
        cls = type(expr)
        if cls is ast.Await:
            expr = expr.value
        elif cls is ast.Call:
            func = expr.func
            name = _last_name(func)
            if stop is not None and (name == stop or type(func) is ast.Name):
                return calls, expr
            if name is not None:
                calls.add(name)
            expr = func
        elif cls is ast.Attribute:
            expr = expr.value
        else:
            return calls, expr


def _chain(expr: ast.AST) -> tuple[frozenset[str], str]:
    """The last names of the callees along ``expr``'s chain of calls, attributes and
    ``await``s, and the name the chain starts from (``""`` when it starts elsewhere)."""
    calls, root = _walk_chain(expr)
    return (frozenset(calls) if calls else _NO_NAMES), root.id if type(root) is ast.Name else ""


def _after_query(expr: ast.AST) -> tuple[frozenset[str], str]:
    """The last names of the callees along ``expr``'s chain outside its outermost
    ``query()`` call, and ``"query"``; without such a call, those of the whole chain and
    the name of the function the chain starts by calling (``""`` if none)."""
    names, end = _walk_chain(expr, "query")
    if type(end) is not ast.Call:
        return frozenset(names), ""
    func = end.func
    return frozenset(names), func.id if type(func) is ast.Name else "query"


def _with_original_callees(
    chains: set[tuple[str, frozenset[str], str]], aliases: dict[str, str], *, named: bool = False
) -> frozenset[tuple[str, frozenset[str], str]]:
    """``chains`` with the original names of the callees bound by an import ``as`` added
    (to the first element too, with ``named``)."""
    out: set[tuple[str, frozenset[str], str]] = set()
    for first, calls, root in chains:
        if not calls.isdisjoint(aliases):
            calls = calls | {aliases[c] for c in calls if c in aliases}
        out.add((first, calls, root))
        if named and first in aliases:
            out.add((aliases[first], calls, root))
    return frozenset(out)


def _kind_bindings(node: ast.AST, scope: int, out: set[tuple[str, frozenset[str], frozenset[str], int]]) -> None:
    """Add the ``kind_sources`` entries of one of the ``_KIND_BINDERS`` in ``scope`` to
    ``out``. Annotations and defaults are resolved through the module's names (as
    ``other`` names)."""
    cls = type(node)
    scoped: set[str] = set()
    other: set[str] = set()
    if cls is ast.arguments:
        positional = [*node.posonlyargs, *node.args]
        defaults = [None] * (len(positional) - len(node.defaults)) + node.defaults
        for arg, default in [*zip(positional, defaults), *zip(node.kwonlyargs, node.kw_defaults)]:
            if arg.annotation is None and default is None:
                continue
            other = set()
            _identifiers(arg.annotation, other)
            _identifiers(default, other)
            if other:
                out.add((arg.arg, _NO_NAMES, frozenset(other), scope))
    elif cls is ast.Assign or cls is ast.AnnAssign:
        if node.value is not None:
            _kind_names(node.value, scoped, other)
        if cls is ast.AnnAssign:
            _identifiers(node.annotation, other)
        if scoped or other:
            values = (frozenset(scoped), frozenset(other))
            for target in node.targets if cls is ast.Assign else (node.target,):
                key = _binding_key(target)
                if key is not None:
                    # An attribute of ``self`` is read the same way in every scope.
                    out.add((key, *values, 0 if key.startswith("self.") else scope))
    elif cls is ast.With or cls is ast.AsyncWith:
        for item in node.items:
            if type(item.optional_vars) is ast.Name:
                scoped, other = set(), set()
                _kind_names(item.context_expr, scoped, other)
                if scoped or other:
                    out.add((item.optional_vars.id, frozenset(scoped), frozenset(other), scope))
    elif cls is ast.alias:
        if node.asname is not None:
            out.add((node.asname, _NO_NAMES, frozenset({node.name.rsplit(".", 1)[-1]}), 0))
    elif cls is ast.ClassDef:
        for stmt in node.body:
            if type(stmt) is ast.AnnAssign and type(stmt.target) is ast.Name:
                other = set()
                _identifiers(stmt.annotation, other)
                out.add((f"self.{stmt.target.id}", _NO_NAMES, frozenset(other), 0))


def file_shape(tree: ast.Module) -> FileShape:
    names: set[str] = set()
    calls: set[str] = set()
    loop_calls: set[str] = set()
    module_calls: set[str] = set()
    keywords: set[str] = set()
    bases: set[str] = set()
    aliases: dict[str, str] = {}
    has_async = has_with = False
    import_paths: set[str] = set()
    relative_import = False
    annotation_names: set[str] = set()
    handler_types: set[str] = set()
    empty_functions: set[str] = set()
    decorator_calls: set[str] = set()
    attribute_names: set[str] = set()
    calls_with_args: set[str] = set()
    list_arg_calls: set[str] = set()
    chained_calls: set[tuple[str, str]] = set()
    has_formatting = False
    lambda_calls: set[str] = set()
    class_statements: list[tuple[str, list[str]]] = []
    tableless_classes: set[str] = set()
    class_assigned_calls: set[str] = set()
    # (callee, last names of its positional call arguments) of unindexed calls, and
    # the callees that have a ``foreign_key=`` among them.
    unindexed_calls: list[tuple[str, list[str]]] = []
    unindexed_foreign_keys: set[str] = set()
    not_null_arguments: set[str] = set()
    called_results: set[str] = set()
    keyword_values: list[tuple[str, ast.expr, str]] = []
    module_none_names: set[str] = set()
    awaited_calls: set[str] = set()
    plain_def_calls: set[str] = set()
    unawaited_async_calls: set[str] = set()
    quiet_try_calls: set[str] = set()
    credential_url_schemes: set[str] = set()
    aug_owners: set[str] = set()
    bound_names: set[str] = set()
    # Ids of the calls that are the operand of an ``await``, and of those that decorate.
    awaited_ids: set[int] = set()
    decorator_ids: set[int] = set()
    method_receivers: set[tuple[str, frozenset[str], frozenset[str], int]] = set()
    loop_method_receivers: set[tuple[str, frozenset[str], frozenset[str], int]] = set()
    kind_sources: set[tuple[str, frozenset[str], frozenset[str], int]] = set()
    scopes: list[tuple[int, frozenset[str]]] = [(-1, _NO_NAMES)]
    receiver_chains: set[tuple[str, frozenset[str], str]] = set()
    argument_chains: set[tuple[str, frozenset[str], str]] = set()
    assigned_chains: set[tuple[str, frozenset[str], str]] = set()
    query_writes: list[tuple[str, frozenset[str], str]] = []
    base_names: list[str] = []
    called_names: list[tuple[str, int]] = []
    task_arguments: list[ast.expr] = []

    def record_call(name: str, flags: int) -> None:
        calls.add(name)
        if flags & _IN_LOOP:
            loop_calls.add(name)
        if not flags & _IN_FUNCTION:
            module_calls.add(name)

    stack: list[tuple[Any, int]] = [(tree, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, flags = pop()
        cls = type(node)
        # The commonest nodes first.
        if cls is ast.Name:
            names.add(node.id)
            continue
        if cls is ast.Constant:
            value = node.value
            if type(value) is str and "://" in value and "@" in value:
                _credential_schemes([value], credential_url_schemes)
            continue
        if cls in _KIND_BINDERS:
            _kind_bindings(node, flags >> _SCOPE_SHIFT, kind_sources)
        if (cls is ast.Assign or cls is ast.AnnAssign or cls is ast.NamedExpr) and node.value is not None:
            value_calls, value_root = _chain(node.value)
            if value_calls or value_root:
                for target in node.targets if cls is ast.Assign else (node.target,):
                    if type(target) is ast.Name:
                        assigned_chains.add((target.id, value_calls, value_root))
        if cls is ast.Attribute:
            names.add(node.attr)
            attribute_names.add(node.attr)
        elif cls is ast.Call:
            callee = node.func
            if type(callee) is ast.Call:
                called_name = _last_name(callee.func)
                if called_name is not None:
                    called_results.add(called_name)
            name = _last_name(callee)
            if name is not None:
                record_call(name, flags)
                if id(node) in awaited_ids:
                    awaited_calls.add(name)
                elif flags & _IN_ASYNC_DEF and not flags & _IN_LAMBDA and id(node) not in decorator_ids:
                    unawaited_async_calls.add(name)
                if flags & _IN_PLAIN_DEF:
                    plain_def_calls.add(name)
                if flags & _IN_QUIET_TRY:
                    quiet_try_calls.add(name)
                if type(callee) is ast.Name:
                    called_names.append((name, flags))
                if flags & _IN_LAMBDA:
                    lambda_calls.add(name)
                if name in _TASK_SUBMITTERS:
                    task_arguments.extend(node.args)
                    task_arguments.extend(keyword.value for keyword in node.keywords)
                if _unindexed(node):
                    if any(k.arg == "foreign_key" for k in node.keywords):
                        unindexed_foreign_keys.add(name)
                    inner_calls = [_last_name(a.func) for a in node.args if type(a) is ast.Call]
                    unindexed_calls.append((name, [n for n in inner_calls if n is not None]))
                arguments = [*node.args, *(k.value for k in node.keywords)]
                if any(type(a) is ast.Call and _not_null(a) for a in arguments):
                    not_null_arguments.add(name)
                args = node.args
                if args or node.keywords:
                    calls_with_args.add(name)
                    if args and type(args[0]) is ast.List:
                        list_arg_calls.add(name)
                    if args and type(args[0]) is not ast.Starred:
                        argument_calls, argument_root = _chain(args[0])
                        if argument_calls or argument_root:
                            argument_chains.add((name, argument_calls, argument_root))
                if type(callee) is ast.Attribute:
                    inner = callee.value
                    receiver_calls, receiver_root = _chain(inner)
                    if receiver_calls or receiver_root:
                        receiver_chains.add((name, receiver_calls, receiver_root))
                    receiver: set[str] = set()
                    receiver_other: set[str] = set()
                    _kind_names(inner, receiver, receiver_other)
                    if receiver or receiver_other:
                        # Other names are read the same way in every scope.
                        scope = flags >> _SCOPE_SHIFT if receiver else 0
                        method_receiver = (name, frozenset(receiver), frozenset(receiver_other), scope)
                        method_receivers.add(method_receiver)
                        if flags & _IN_LOOP:
                            loop_method_receivers.add(method_receiver)
                    if name in _QUERY_WRITES:
                        after, start = _after_query(inner)
                        if start:
                            query_writes.append((name, after, start))
                    if type(inner) is ast.Await:
                        inner = inner.value
                    if type(inner) is ast.Call:
                        inner_name = _last_name(inner.func)
                        if inner_name is not None:
                            chained_calls.add((inner_name, name))
        elif cls is ast.keyword:
            if node.arg is not None:
                names.add(node.arg)
                keywords.add(node.arg)
                keyword_value = _keyword_value(node.value)
                if keyword_value is not None:
                    keyword_values.append((node.arg, *keyword_value))
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
                for decorator in node.decorator_list:
                    if type(decorator) is ast.Call:
                        decorator_name = _last_name(decorator.func)
                        if decorator_name is not None:
                            decorator_calls.add(decorator_name)
            if cls is ast.AsyncFunctionDef:
                has_async = True
            # The lint traversal scopes a def's decorators, defaults and annotations to
            # the def; the calls of a try body stop at every function.
            flags &= ~_IN_QUIET_TRY
            if cls is not ast.Lambda:
                decorator_ids.update(id(decorator) for decorator in node.decorator_list)
                own = _IN_ASYNC_DEF if cls is ast.AsyncFunctionDef else _IN_PLAIN_DEF
                flags = flags & ~(_IN_ASYNC_DEF | _IN_PLAIN_DEF) | own
            if cls is ast.Lambda:
                push((node.body, flags | _IN_FUNCTION | _IN_LAMBDA))
            else:
                # Its own scope, from its decorators on: the analysis enters it there.
                arguments = node.args
                parameters = (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
                scopes.append((flags >> _SCOPE_SHIFT, frozenset(parameter.arg for parameter in parameters)))
                flags = flags & _FLAGS | (len(scopes) - 1) << _SCOPE_SHIFT
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
            first_base = len(base_names)
            for base in node.bases:
                if isinstance(base, ast.Starred):
                    # LibCST keeps the star on the argument: the analyses read ``b``.
                    base = base.value
                base_name = _last_name(base.value if isinstance(base, ast.Subscript) else base)
                if base_name is not None:
                    bases.add(base_name)
                    base_names.append(base_name)
            class_statements.append((node.name, base_names[first_base:]))
            if not _binds_table(node.body):
                tableless_classes.add(node.name)
            for stmt in node.body:
                if type(stmt) in (ast.Assign, ast.AnnAssign) and type(stmt.value) is ast.Call:
                    assigned = _last_name(stmt.value.func)
                    if assigned is not None:
                        class_assigned_calls.add(assigned)
            flags |= _IN_CLASS
            flags &= ~_IN_QUIET_TRY
            decorator_ids.update(id(decorator) for decorator in node.decorator_list)
        elif cls in _LOOPS:
            flags |= _IN_LOOP
            if cls in (ast.For, ast.AsyncFor) and type(node.target) is ast.Name and type(node.iter) in _BINDING_VALUES:
                bound_names.add(node.target.id)
        elif cls in _TRY:
            if node.handlers and any(_quiet_handler(handler) for handler in node.handlers):
                for field in ("finalbody", "orelse", "handlers"):
                    for child in reversed(getattr(node, field)):
                        push((child, flags))
                for child in reversed(node.body):
                    push((child, flags | _IN_QUIET_TRY))
                continue
        elif cls is ast.With:
            has_with = True
        elif cls is ast.ExceptHandler:
            if node.type is None:
                handler_types.add("")
            else:
                _handler_types(node.type, handler_types)
        elif cls is ast.Import:
            import_paths.update(alias.name for alias in node.names)
        elif cls is ast.ImportFrom:
            if node.level:
                relative_import = True
            if not node.level and node.module is not None:
                import_paths.add(node.module)
                import_paths.update(f"{node.module}.{a.name}" for a in node.names if a.name != "*")
        elif cls in (ast.Assign, ast.AnnAssign, ast.AugAssign):
            if cls is ast.AugAssign:
                if type(node.op) is ast.Add:
                    has_formatting = True
            elif cls is ast.AnnAssign:
                _string_annotation_names(node.annotation, annotation_names)
            if cls is not ast.AugAssign and not flags & (_IN_FUNCTION | _IN_CLASS) and _literal(node.value, None):
                targets = node.targets if cls is ast.Assign else [node.target]
                module_none_names.update(t.id for t in targets if type(t) is ast.Name)
            if cls is ast.AugAssign:
                if type(node.target) is ast.Attribute and type(node.target.value) is ast.Name:
                    aug_owners.add(node.target.value.id)
            elif type(node.value) in _BINDING_VALUES:
                targets = node.targets if cls is ast.Assign else [node.target]
                bound_names.update(t.id for t in targets if type(t) is ast.Name)
        elif cls is ast.BinOp:
            if type(node.op) in (ast.Add, ast.Mod):
                has_formatting = True
        elif cls is ast.Await:
            if type(node.value) is ast.Call:
                awaited_ids.add(id(node.value))
        elif cls is ast.NamedExpr:
            if type(node.value) in _BINDING_VALUES:
                bound_names.add(node.target.id)
        elif cls is ast.comprehension:
            if type(node.target) is ast.Name and type(node.iter) in _BINDING_VALUES:
                bound_names.add(node.target.id)
        elif cls is ast.JoinedStr:
            if not has_formatting and any(type(part) is ast.FormattedValue for part in node.values):
                has_formatting = True
            _credential_schemes(_literal_pieces(node.values), credential_url_schemes)
        if cls in _ASYNC:
            has_async = True
        fields = _CHILD_FIELDS.get(cls)
        if fields is None:
            fields = _child_fields(cls)
        for field in fields:
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
            record_call(original, flags)
    handler_types.update([aliases[name] for name in handler_types if name in aliases])
    bases.update(aliases[name] for name in base_names if name in aliases)
    calls_with_args.update([aliases[name] for name in calls_with_args if name in aliases])
    list_arg_calls.update([aliases[name] for name in list_arg_calls if name in aliases])
    chained_calls.update([(aliases[inner], outer) for inner, outer in chained_calls if inner in aliases])
    lambda_calls.update([aliases[name] for name in lambda_calls if name in aliases])
    class_bases = {(name, *own, *(aliases[b] for b in own if b in aliases)) for name, own in class_statements}
    class_assigned_calls.update([aliases[name] for name in class_assigned_calls if name in aliases])
    for name, inner_calls in unindexed_calls:
        if any(n == "ForeignKey" or aliases.get(n) == "ForeignKey" for n in inner_calls):
            unindexed_foreign_keys.add(name)
    unindexed_foreign_keys.update([aliases[name] for name in unindexed_foreign_keys if name in aliases])
    not_null_arguments.update([aliases[name] for name in not_null_arguments if name in aliases])
    called_results.update([aliases[name] for name in called_results if name in aliases])
    for scoped_calls in (awaited_calls, plain_def_calls, unawaited_async_calls, quiet_try_calls):
        scoped_calls.update([aliases[name] for name in scoped_calls if name in aliases])
    keyword_value_names: set[str] = set()
    for keyword, value, suffix in keyword_values:
        value_name = _last_name(value)
        keyword_value_names.add(f"{keyword}={value_name}{suffix}")
        if type(value) is ast.Name and value_name in aliases:
            keyword_value_names.add(f"{keyword}={aliases[value_name]}{suffix}")
    if _TASK_SUBMITTERS.isdisjoint(aliases.values()):
        task_argument_names = {
            child.id for argument in task_arguments for child in ast.walk(argument) if type(child) is ast.Name
        }
    else:
        task_argument_names = names
    return FileShape(
        names=frozenset(names),
        calls=frozenset(calls),
        loop_calls=frozenset(loop_calls),
        module_calls=frozenset(module_calls),
        keywords=frozenset(keywords),
        bases=frozenset(bases),
        has_async=has_async,
        has_with=has_with,
        import_paths=frozenset(import_paths),
        relative_import=relative_import,
        string_annotation_names=frozenset(annotation_names),
        handler_types=frozenset(handler_types),
        empty_functions=frozenset(empty_functions),
        decorator_calls=frozenset(decorator_calls),
        attribute_names=frozenset(attribute_names),
        calls_with_args=frozenset(calls_with_args),
        list_arg_calls=frozenset(list_arg_calls),
        chained_calls=frozenset(chained_calls),
        has_formatting=has_formatting,
        lambda_calls=frozenset(lambda_calls),
        class_bases=frozenset(class_bases),
        tableless_classes=frozenset(tableless_classes),
        class_assigned_calls=frozenset(class_assigned_calls),
        unindexed_foreign_keys=frozenset(unindexed_foreign_keys),
        not_null_arguments=frozenset(not_null_arguments),
        called_results=frozenset(called_results),
        keyword_values=frozenset(keyword_value_names),
        module_none_names=frozenset(module_none_names),
        awaited_calls=frozenset(awaited_calls),
        plain_def_calls=frozenset(plain_def_calls),
        unawaited_async_calls=frozenset(unawaited_async_calls),
        quiet_try_calls=frozenset(quiet_try_calls),
        credential_url_schemes=frozenset(credential_url_schemes),
        aug_call_owners=frozenset(aug_owners & bound_names),
        scopes=tuple(scopes),
        method_receivers=frozenset(method_receivers),
        loop_method_receivers=frozenset(loop_method_receivers),
        kind_sources=frozenset(kind_sources),
        receiver_chains=_with_original_callees(receiver_chains, aliases),
        argument_chains=_with_original_callees(argument_chains, aliases, named=True),
        assigned_chains=_with_original_callees(assigned_chains, aliases),
        query_writes=frozenset(
            (method, after) for method, after, start in query_writes if start == "query" or aliases.get(start) == "query"
        ),
        task_argument_names=frozenset(task_argument_names),
    )
