"""Method-call chains, the SQL statements built from them, and loops around calls.

SQLAlchemy code is written as chains: ``select(User).where(...).limit(10)``,
``session.query(User).filter(...).all()``, ``(await session.execute(stmt)).scalars()``.
This module splits such an expression into its root and its links, recognises the
statement a chain builds (``select()``/``update()``/``delete()``/``insert()`` or a
legacy ``session.query()``), follows a statement through the local names it is
assigned to (``stmt = select(User)``, ``stmt = stmt.where(...)``), tells ORM entities
from column expressions, and finds the loop a call is repeated by.

Everything answers None when it cannot tell; rules stay silent on None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import libcst as cst

from fastdb_lint.analysis.index import CallValue, NameValue
from fastdb_lint.analysis.models import ClassRole, ModelIndex
from fastdb_lint.analysis.sqlalchemy_api import SELECT_FUNCTIONS, DbKind
from fastdb_lint.analysis.syntax import target_names, type_from_cst

if TYPE_CHECKING:
    from fastdb_lint.context import FileContext

UPDATE_FUNCTIONS = frozenset({"sqlalchemy.update", "sqlmodel.update"})
DELETE_FUNCTIONS = frozenset({"sqlalchemy.delete", "sqlmodel.delete"})
INSERT_FUNCTIONS = frozenset({"sqlalchemy.insert", "sqlmodel.insert", "sqlalchemy.dialects.postgresql.insert"})
STATEMENT_FUNCTIONS = SELECT_FUNCTIONS | UPDATE_FUNCTIONS | DELETE_FUNCTIONS | INSERT_FUNCTIONS
# The legacy ``session.query(...)`` as a statement "function".
QUERY = "query"
QUERY_SESSIONS = frozenset({DbKind.SYNC_SESSION, DbKind.ASYNC_SESSION, DbKind.SYNC_REGISTRY, DbKind.ASYNC_REGISTRY})
# Session methods that run a statement given as their first argument.
EXECUTE_METHODS = frozenset({"execute", "scalar", "scalars", "exec", "stream", "stream_scalars"})
# Methods that narrow the rows a statement reads or writes.
WHERE_METHODS = frozenset({"where", "filter", "filter_by"})
# Callables producing ORM entities rather than column expressions.
ENTITY_FACTORIES = frozenset({"sqlalchemy.orm.aliased", "sqlalchemy.orm.with_polymorphic"})

_MAX_DEPTH = 8
_SCOPE_BOUNDARIES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)


# -- chains ----------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """One ``.name`` step of a chain; ``call`` is set when the step is a method call."""

    attribute: cst.Attribute
    call: cst.Call | None

    @property
    def name(self) -> str:
        return self.attribute.attr.value

    @property
    def receiver(self) -> cst.BaseExpression:
        """The expression the step is taken on."""
        return self.attribute.value

    @property
    def node(self) -> cst.BaseExpression:
        """The expression up to and including this step."""
        return self.call if self.call is not None else self.attribute

    @property
    def args(self) -> Sequence[cst.Arg]:
        return self.call.args if self.call is not None else ()


@dataclass(frozen=True)
class Chain:
    """``root.a(...).b.c(...)``: the root expression and the steps taken on it, in order."""

    root: cst.BaseExpression
    links: tuple[Link, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(link.name for link in self.links)

    def index(self, name: str) -> int | None:
        return next((i for i, link in enumerate(self.links) if link.name == name), None)


def split_chain(expr: cst.BaseExpression) -> Chain:
    """Split ``expr`` into its root and its attribute/method steps. The root is the
    innermost expression that is not itself a step: a name, a call of a name
    (``select(User)``), an ``await``, a subscript..."""
    links: list[Link] = []
    current = expr
    while True:
        if isinstance(current, cst.Call) and isinstance(current.func, cst.Attribute):
            links.append(Link(current.func, current))
            current = current.func.value
        elif isinstance(current, cst.Attribute):
            links.append(Link(current, None))
            current = current.value
        else:
            break
    links.reverse()
    return Chain(current, tuple(links))


def chain_top(stack: Sequence[cst.CSTNode]) -> tuple[cst.BaseExpression, int]:
    """The outermost expression that continues the chain of ``stack[-1]`` (the node being
    visited), and its index in ``stack``: for ``session.query(User)`` inside
    ``session.query(User).filter(x).all()``, the whole ``....all()`` call."""
    current = stack[-1]
    assert isinstance(current, cst.BaseExpression)
    index = len(stack) - 1
    while index >= 1:
        parent = stack[index - 1]
        if not (isinstance(parent, cst.Attribute) and parent.value is current):
            break
        grand = stack[index - 2] if index >= 2 else None
        if isinstance(grand, cst.Call) and grand.func is parent:
            current, index = grand, index - 2
        else:
            current, index = parent, index - 1
    return current, index


def strip_await(expr: cst.BaseExpression) -> cst.BaseExpression:
    return expr.expression if isinstance(expr, cst.Await) else expr


def positional_args(call: cst.Call) -> list[cst.BaseExpression] | None:
    """The call's arguments when all are plain positional ones (no keyword, no star)."""
    if any(arg.keyword is not None or arg.star for arg in call.args):
        return None
    return [arg.value for arg in call.args]


def names_in(node: cst.CSTNode) -> set[str]:
    """Every identifier read in a (small) expression, attribute names excluded."""
    found: set[str] = set()
    pending: list[cst.CSTNode] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, cst.Name):
            found.add(current.value)
            continue
        if isinstance(current, cst.Attribute):
            pending.append(current.value)
            continue
        if isinstance(current, cst.Arg) and current.keyword is not None:
            pending.append(current.value)
            continue
        pending.extend(current.children)
    return found


# -- statements ------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """A SQL statement built by a chain: ``function`` is the canonical name of the
    constructor (``"sqlalchemy.select"``...) or :data:`QUERY` for ``session.query()``;
    ``call`` is the constructor call; ``links`` are the calls applied to it, gathered
    over every assignment of the local names it flowed through."""

    function: str
    call: cst.Call
    links: tuple[Link, ...]
    # For QUERY: the session expression ``.query`` was called on.
    session: cst.BaseExpression | None = None

    @property
    def names(self) -> frozenset[str]:
        return frozenset(link.name for link in self.links)

    def has(self, *names: str) -> bool:
        return any(link.name in names for link in self.links)

    def calls(self, *names: str) -> list[cst.Call]:
        return [link.call for link in self.links if link.name in names and link.call is not None]

    @property
    def is_select(self) -> bool:
        return self.function in SELECT_FUNCTIONS

    @property
    def is_update(self) -> bool:
        return self.function in UPDATE_FUNCTIONS

    @property
    def is_delete(self) -> bool:
        return self.function in DELETE_FUNCTIONS


def statement_of(
    ctx: FileContext,
    expr: cst.BaseExpression | None,
    functions: Iterable[str] = STATEMENT_FUNCTIONS | {QUERY},
) -> Statement | None:
    """The statement ``expr`` builds, when it is one of ``functions``: a chain on a
    constructor call, or a local name every assignment of which is such a chain (a
    re-assignment such as ``stmt = stmt.where(...)`` adds its links)."""
    if expr is None:
        return None
    return _statement(ctx, expr, frozenset(functions), {}, 0)


def _statement(
    ctx: FileContext, expr: cst.BaseExpression, functions: frozenset[str], limits: dict[str, int], depth: int
) -> Statement | None:
    if depth > _MAX_DEPTH:
        return None
    chain = split_chain(expr)
    root = chain.root
    # The constructor: the root call, or the first step that is one (``sa.select(...)``).
    if isinstance(root, cst.Call):
        function = ctx.callee(root)
        if function in functions:
            return _after(Statement(function, root, ()), chain.links)
        return None
    for index, link in enumerate(chain.links):
        if link.call is None:
            continue
        if link.name == QUERY and QUERY in functions:
            if ctx.kind(link.receiver) in QUERY_SESSIONS:
                return _after(Statement(QUERY, link.call, (), link.receiver), chain.links[index + 1 :])
            return None
        function = ctx.callee(link.call)
        if function in functions:
            return _after(Statement(function, link.call, ()), chain.links[index + 1 :])
        if function is not None:
            return None
    if not isinstance(root, cst.Name) or any(link.call is None for link in chain.links):
        return None
    base = _name_statement(ctx, root.value, functions, limits, depth)
    return _after(base, chain.links) if base is not None else None


def _name_statement(
    ctx: FileContext, name: str, functions: frozenset[str], limits: dict[str, int], depth: int
) -> Statement | None:
    values = ctx.assigned(name)
    if not values:
        return None
    values = values[: limits.get(name, len(values))]
    if not values:
        return None
    found: list[Statement] = []
    for index, value in enumerate(values):
        if value is None:
            return None
        statement = _statement(ctx, value, functions, {**limits, name: index}, depth + 1)
        if statement is None:
            return None
        found.append(statement)
    first = found[0]
    if any(s.function != first.function for s in found):
        return None
    links: dict[int, Link] = {}
    for statement in found:
        for link in statement.links:
            links.setdefault(id(link.attribute), link)
    return Statement(first.function, first.call, tuple(links.values()), first.session)


def _after(statement: Statement, links: Sequence[Link]) -> Statement | None:
    if any(link.call is None for link in links):
        return None
    return Statement(statement.function, statement.call, (*statement.links, *links), statement.session)


# -- entities --------------------------------------------------------------------


def is_mapped_class(ctx: FileContext, qualname: str) -> bool | None:
    """Whether ``qualname`` names an ORM-mapped class (None when it cannot be told)."""
    symbol = ctx.project.symbol(qualname)
    role = ModelIndex.of(ctx.project).info(symbol).role
    if role is ClassRole.MAPPED:
        return True
    if role is ClassRole.UNKNOWN:
        found = ctx.project.class_(symbol)
        if found is not None and {"__tablename__", "__table__"} & found[1].body_names:
            return True  # its base cannot be seen, but it names its table
        return None
    return False


def is_entity(ctx: FileContext, expr: cst.BaseExpression, depth: int = 0) -> bool | None:
    """True for an ORM entity (a mapped class, ``aliased(Model)``, ``self.model`` typed
    ``type[Model]``), False for a column expression or a table, None when unknown."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(expr, cst.Call):
        callee = ctx.callee(expr)
        if callee in ENTITY_FACTORIES:
            return True
        if callee is not None and callee.startswith(("sqlalchemy.", "sqlmodel.")):
            return False
        if isinstance(expr.func, cst.Attribute) and is_entity(ctx, expr.func.value, depth + 1):
            return False  # Model.col.label("x"), Model.col.distinct()
        return None
    if isinstance(expr, cst.Attribute):
        owner = expr.value
        if isinstance(owner, cst.Name) and owner.value in ("self", "cls"):
            return _self_attr_entity(ctx, expr.attr.value)
        if is_entity(ctx, owner, depth + 1):
            return False  # Model.column, Model.__table__
    if isinstance(expr, cst.Name):
        values = ctx.assigned(expr.value)
        if values:
            results = {_value_entity(ctx, v) for v in values}
            return results.pop() if len(results) == 1 else None
        scope = ctx.function
        if scope is not None and expr.value in scope.params:
            return _annotation_entity(ctx, scope.params[expr.value].annotation)
    if not isinstance(expr, (cst.Name, cst.Attribute)):
        return None
    qual = ctx.qualname(expr)
    if qual is None:
        if isinstance(expr, cst.Name) and _is_free(ctx, expr.value):
            return True if _class_like(expr.value) else None
        return None
    if qual.startswith(("sqlalchemy.", "sqlmodel.")):
        return False
    qual = ctx.project.symbol(qual)
    mapped = is_mapped_class(ctx, qual)
    if mapped is not None:
        return mapped or None
    value = ctx.project.value(qual)
    if isinstance(value, CallValue):
        if value.callee in ENTITY_FACTORIES:
            return True
        if value.callee in ("sqlalchemy.Table",):
            return False
        return None
    if isinstance(value, NameValue):
        return None
    module = qual.rpartition(".")[0]
    if module and ctx.project.find_module(module) is not None:
        return None  # a project module that defines no such class
    return True if _class_like(qual.rpartition(".")[2]) else None


def _value_entity(ctx: FileContext, value: cst.BaseExpression | None) -> bool | None:
    if isinstance(value, cst.Call) and ctx.callee(value) in ENTITY_FACTORIES:
        return True
    return None


def _annotation_entity(ctx: FileContext, annotation: cst.Annotation | None) -> bool | None:
    if annotation is None:
        return None
    head = type_from_cst(annotation, ctx.imports)[0]
    return True if head in ("typing.Type", "type", "builtins.type") else None


def _self_attr_entity(ctx: FileContext, attr: str) -> bool | None:
    if not ctx.classes:
        return None
    class_qual = f"{ctx.module_name}.{ctx.classes[-1]}" if ctx.module_name else ctx.classes[-1]
    found = ctx.project.class_(class_qual)
    if found is None:
        return None
    _, cls = found
    tree = cls.self_attr_types.get(attr) or cls.attr_types.get(attr)
    if tree is None:
        return None
    return True if tree[0] in ("typing.Type", "type", "builtins.type") else None


def _is_free(ctx: FileContext, name: str) -> bool:
    """A name bound nowhere the analysis can see (not imported, not defined, not local)."""
    imports = ctx.imports
    if name in imports.bindings or name in imports.local_defs:
        return False
    return not any(name in scope.params or name in scope.assignments for scope in ctx.functions)


def _class_like(name: str) -> bool:
    return name[:1].isupper() and any(c.islower() for c in name)


def select_entity(ctx: FileContext, statement: Statement) -> cst.BaseExpression | None:
    """The entity of a ``select(Model)`` with exactly one column that is an ORM entity."""
    if not statement.is_select:
        return None
    args = positional_args(statement.call)
    if args is None or len(args) != 1:
        return None
    if any(link.name in _COLUMN_CHANGING for link in statement.links):
        return None
    return args[0] if is_entity(ctx, args[0]) else None


# Select methods that change what the statement returns.
_COLUMN_CHANGING = frozenset(
    {
        "add_columns", "with_only_columns", "column", "add_column", "subquery", "cte", "alias",
        "scalar_subquery", "exists", "union", "union_all", "except_", "except_all", "intersect",
        "intersect_all", "label", "lateral", "returning", "from_statement", "with_entities",
    }
)


# -- loops -----------------------------------------------------------------------


@dataclass(frozen=True)
class Loop:
    """A loop that repeats the node being visited."""

    node: cst.CSTNode  # For, While, or the comprehension
    # Names the loop binds (targets of the ``for``/comprehension clauses).
    targets: frozenset[str]
    iterable: cst.BaseExpression | None
    is_async: bool = False


def enclosing_loop(stack: Sequence[cst.CSTNode]) -> Loop | None:
    """The innermost loop whose repeated part (a ``for``/``while`` body, a
    comprehension's element, conditions and inner iterables) holds ``stack[-1]``,
    without leaving the enclosing function, lambda or class. A ``while`` condition
    does not count: it is how batch loops fetch their next chunk."""
    for index in range(len(stack) - 1, 0, -1):
        parent = stack[index - 1]
        child = stack[index]
        if isinstance(parent, _SCOPE_BOUNDARIES):
            return None
        if isinstance(parent, cst.For) and child is parent.body:
            return Loop(parent, frozenset(target_names(parent.target)), parent.iter, parent.asynchronous is not None)
        if isinstance(parent, cst.While) and child is parent.body:
            return Loop(parent, frozenset(), None)
        if isinstance(parent, cst.CompFor):
            if child is parent.iter:
                continue  # an inner clause's iterable repeats; its outer clause decides below
            if child is parent.inner_for_in or child in parent.ifs:
                return _comprehension_loop(stack, index - 1)
            continue
        if isinstance(parent, _COMPREHENSIONS):
            if child is parent.for_in:
                # Only the outermost iterable is evaluated once, outside the loop.
                if index + 1 < len(stack) and stack[index + 1] is parent.for_in.iter:
                    continue
                return _comprehension_loop(stack, index - 1)
            return _comprehension_loop(stack, index - 1)
    return None


def _comprehension_loop(stack: Sequence[cst.CSTNode], index: int) -> Loop:
    node = stack[index]
    while not isinstance(node, _COMPREHENSIONS) and index > 0:
        index -= 1
        node = stack[index]
    assert isinstance(node, _COMPREHENSIONS)
    targets: set[str] = set()
    comp: cst.CompFor | None = node.for_in
    while comp is not None:
        targets.update(target_names(comp.target))
        comp = comp.inner_for_in
    return Loop(node, frozenset(targets), node.for_in.iter, node.for_in.asynchronous is not None)
