"""FDB3xx: the query API (SQLAlchemy 2.0 style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import libcst as cst

from fastdb_lint.analysis.preconditions import (
    SESSION_SOURCES,
    SYNC_SESSION_SOURCES,
    last_names,
    receiver_may_be,
)
from fastdb_lint.analysis.chains import (
    DELETE_FUNCTIONS,
    EXECUTE_METHODS,
    INSERT_FUNCTIONS,
    QUERY,
    QUERY_SESSIONS,
    UPDATE_FUNCTIONS,
    WHERE_METHODS,
    Link,
    Statement,
    chain_top,
    enclosing_loop,
    is_entity,
    names_in,
    positional_args,
    select_entity,
    split_chain,
    statement_of,
    strip_await,
)
from fastdb_lint.analysis.fastapi import ROUTE_METHODS
from fastdb_lint.analysis.index import CallValue
from fastdb_lint.analysis.sqlalchemy_api import (
    SELECT_FUNCTIONS,
    SESSION_QUERY_METHODS,
    DbKind,
)
from fastdb_lint.analysis.syntax import name_counts, string_value
from fastdb_lint.diagnostics import FixAvailability
from fastdb_lint.fixes import map_line_whitespace, parse_expression
from fastdb_lint.rules.base import Invalid, ProjectTerms, Rule, Valid

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape
    from fastdb_lint.context import FileContext
    from fastdb_lint.fixes import FixBuilder

_SYNC_SESSIONS = frozenset({DbKind.SYNC_SESSION, DbKind.SYNC_REGISTRY})
_ASYNC_SESSIONS = frozenset({DbKind.ASYNC_SESSION, DbKind.ASYNC_REGISTRY})

# Query methods the rewrite carries over, and their name on a select().
_QUERY_STEPS: dict[str, str] = {
    "filter": "where",
    "where": "where",
    "filter_by": "filter_by",
    "order_by": "order_by",
    "limit": "limit",
    "offset": "offset",
    "join": "join",
    "outerjoin": "outerjoin",
    "options": "options",
    "distinct": "distinct",
    "group_by": "group_by",
    "having": "having",
    "with_for_update": "with_for_update",
    "execution_options": "execution_options",
}
# Steps that keep `select(func.count()).select_from(Model)` equal to Query.count().
_COUNT_DIRECT_STEPS = frozenset({"filter", "where", "filter_by", "join", "outerjoin"})
_ROW_TERMINALS = frozenset({"all", "first", "one", "one_or_none"})
_TERMINALS = _ROW_TERMINALS | {"scalar", "count", "get"}
_JOINS = frozenset({"join", "outerjoin"})
_JOINED_LOADERS = frozenset({"sqlalchemy.orm.joinedload", "sqlalchemy.orm.contains_eager"})
_BATCH_STEPS = frozenset({"limit", "offset", "slice", "fetch"})
_SLEEPS = frozenset({"asyncio.sleep", "time.sleep", "anyio.sleep", "trio.sleep"})
_WRITE_KEYWORDS = ("insert", "update", "delete", "create", "drop", "alter", "truncate", "set", "vacuum", "grant")
_STRING_WRAPPERS = frozenset({"textwrap.dedent", "inspect.cleandoc"})
# Result methods that pass the rows of a session call on.
_RESULT_STEPS = frozenset({"scalars", "unique", "mappings", "tuples", "columns", "yield_per"})


# Names a file's shape must call for the rules to find something (see `applies`).
_SELECT_CALLS = last_names(SELECT_FUNCTIONS)
# `update(M)`/`delete(M)`, `Query.update()/.delete()`, `table.update()/.delete()`.
_WRITE_CALLS = last_names(UPDATE_FUNCTIONS | DELETE_FUNCTIONS)
# The calls through which `_session_call` reaches a session's rows.
_SESSION_ROW_CALLS = EXECUTE_METHODS | {QUERY}
_QUERY_METHOD = frozenset({QUERY})
_LEN = frozenset({"len"})
_EXECUTE_METHOD = frozenset({"execute"})
_UNIQUE = frozenset({"unique"})
_LISTING_CALLS = frozenset({"all", "fetchall", "list"})
_UNBOUNDED_READS = frozenset({"scalars", "exec"})


def _chains_may_call(
    shape: FileShape,
    chains: frozenset[tuple[str, frozenset[str], str]],
    firsts: frozenset[str],
    callees: frozenset[str],
    *,
    direct: bool = True,
) -> bool:
    """Whether one of ``chains`` (``shape.receiver_chains`` or ``argument_chains``) whose
    first element is in ``firsts`` can hold a call of one of ``callees``: it calls one
    (unless not ``direct``), or starts from a name assigned such a chain (directly or
    through other names)."""
    found = [(calls, root) for first, calls, root in chains if first in firsts]
    if not found:
        return False
    if direct and any(not calls.isdisjoint(callees) for calls, _ in found):
        return True
    named: set[str] = set()
    pending = list(shape.assigned_chains)
    while pending:
        new = {name for name, calls, root in pending if not calls.isdisjoint(callees) or root in named} - named
        if not new:
            break
        named |= new
        pending = [entry for entry in pending if entry[0] not in named]
    return any(root in named for _, root in found)


def _row_terminal_on_execute(shape: FileShape) -> bool:
    """Whether a row terminal (``all()``, ``first()``...) may be called, through
    ``unique()`` calls, on an ``execute()`` result or on a name assigned one."""
    chained = shape.chained_calls
    heads = {"execute", "unique"} if ("execute", "unique") in chained else {"execute"}
    if any((head, terminal) in chained for head in heads for terminal in _ROW_TERMINALS):
        return True
    results = {name for name, calls, _ in shape.assigned_chains if "execute" in calls}
    return any(
        method in _ROW_TERMINALS and calls <= _UNIQUE and root in results
        for method, calls, root in shape.receiver_chains
    )


# -- shared helpers ----------------------------------------------------------------


def _parent_of(stack: Sequence[cst.CSTNode], index: int) -> cst.CSTNode | None:
    return stack[index - 1] if index >= 1 else None


def _locally_bound(ctx: FileContext, name: str) -> bool:
    return any(name in s.params or name in s.assignments for s in ctx.functions)


def _builtin(ctx: FileContext, func: cst.BaseExpression, name: str) -> bool:
    """``func`` is the builtin ``name`` (not imported, defined or bound locally)."""
    if not isinstance(func, cst.Name) or func.value != name:
        return False
    imports = ctx.imports
    return name not in imports.bindings and name not in imports.local_defs and not _locally_bound(ctx, name)


def _has_from_import(ctx: FileContext, module: str) -> bool:
    for stmt in ctx.module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if (
                    isinstance(small, cst.ImportFrom)
                    and not small.relative
                    and small.module is not None
                    and ctx.module.code_for_node(small.module) == module
                ):
                    return True
    return False


def _import_name(ctx: FileContext, fix: FixBuilder, module: str, name: str, *accepted: str) -> str | None:
    """Code naming ``module.name`` in this file: the name itself when it already refers
    to it (or to one of ``accepted``), ``alias.name`` for an ``import module as alias``,
    else the name after adding ``from module import name`` to the fix."""
    if not _locally_bound(ctx, name):
        resolved = ctx.imports.resolve(name)
        if resolved is not None and resolved in (f"{module}.{name}", *accepted):
            return name
    alias = next(
        (
            a
            for a, target in sorted(ctx.imports.bindings.items())
            if target == module and ctx.imports.resolve(a) == module and not _locally_bound(ctx, a)
        ),
        None,
    )
    free = not (_locally_bound(ctx, name) or name in ctx.imports.bindings or name in ctx.imports.local_defs)
    if alias is not None and (not free or not _has_from_import(ctx, module)):
        return f"{alias}.{name}"
    if not free:
        return None
    fix.add_import(module, name)
    return name


def _session_call(ctx: FileContext, expr: cst.BaseExpression, depth: int = 0) -> cst.Call | None:
    """The session call whose rows ``expr`` holds: through ``await``, result methods
    (``.scalars()``, ``.unique()``...), ``.all()``, a legacy query chain, and local names
    assigned once."""
    if depth > 6:
        return None
    expr = strip_await(expr)
    if isinstance(expr, cst.Name):
        values = ctx.assigned(expr.value)
        if values is None or len(values) != 1 or values[0] is None:
            return None
        return _session_call(ctx, values[0], depth + 1)
    if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Attribute):
        return None
    method = expr.func.attr.value
    receiver = expr.func.value
    if method in EXECUTE_METHODS and ctx.kind(receiver) in QUERY_SESSIONS:
        return expr
    if method in _RESULT_STEPS or method in ("all", "fetchall"):
        found = _session_call(ctx, receiver, depth + 1)
        if found is not None:
            return found
    statement = statement_of(ctx, expr, (QUERY,))
    return statement.call if statement is not None else None


def _statement_arg(call: cst.Call) -> cst.BaseExpression | None:
    if not call.args or call.args[0].keyword is not None or call.args[0].star:
        return None
    return call.args[0].value


def _calls_named(node: cst.CSTNode, names: frozenset[str]) -> list[cst.Call]:
    """Method calls named ``names`` inside a (small) expression."""
    found: list[cst.Call] = []
    pending: list[cst.CSTNode] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, cst.Call) and isinstance(current.func, cst.Attribute) and current.func.attr.value in names:
            found.append(current)
        pending.extend(current.children)
    return found


def _leading_text(expr: cst.BaseExpression) -> str | None:
    """The literal text a string expression starts with (f-strings and concatenations too)."""
    if isinstance(expr, cst.SimpleString):
        value = string_value(expr)
        return value if isinstance(value, str) else None
    if isinstance(expr, cst.ConcatenatedString):
        return _leading_text(expr.left)
    if isinstance(expr, cst.FormattedString):
        first = expr.parts[0] if expr.parts else None
        return first.value if isinstance(first, cst.FormattedStringText) else None
    return None


def _await_allowed(stack: Sequence[cst.CSTNode]) -> bool:
    """``await`` may be inserted at ``stack[-1]`` without changing what the code is."""
    for node in reversed(stack[:-1]):
        if isinstance(node, (cst.Lambda, cst.GeneratorExp, cst.ClassDef)):
            return False
        if isinstance(node, cst.FunctionDef):
            return node.asynchronous is not None
    return False


# -- the query rewrite ---------------------------------------------------------------


def _reindent(node: cst.BaseExpression, extra: str) -> cst.BaseExpression:
    """``node`` with every continuation line (and comment line) shifted right by ``extra``."""

    def shift(whitespace: cst.ParenthesizedWhitespace | cst.EmptyLine) -> cst.CSTNode:
        if isinstance(whitespace, cst.ParenthesizedWhitespace):
            return whitespace.with_changes(last_line=cst.SimpleWhitespace(whitespace.last_line.value + extra))
        return whitespace.with_changes(whitespace=cst.SimpleWhitespace(whitespace.whitespace.value + extra))

    return map_line_whitespace(node, shift)


def _method(value: cst.BaseExpression, name: str, *args: cst.Arg) -> cst.Call:
    return cst.Call(func=cst.Attribute(value=value, attr=cst.Name(name)), args=list(args))


def _apply_steps(base: cst.BaseExpression, steps: Sequence[Link]) -> cst.BaseExpression:
    current = base
    for step in steps:
        assert step.call is not None
        attr = step.attribute.with_changes(value=current, attr=step.attribute.attr.with_changes(value=_QUERY_STEPS[step.name]))
        current = step.call.with_changes(func=attr)
    return current


def _joined_eager(ctx: FileContext, steps: Sequence[Link]) -> bool | None:
    """Whether loader options load a relationship with a join (None: cannot tell)."""
    unknown = False
    for step in steps:
        if step.name != "options":
            continue
        for arg in step.args:
            chain = split_chain(arg.value)
            # The loader is the chain's first call: `joinedload(...)`, `orm.joinedload(...)`.
            calls = [chain.root] if isinstance(chain.root, cst.Call) else []
            calls.extend(link.call for link in chain.links if link.call is not None)
            callee = ctx.callee(calls[0]) if calls else None
            if callee in _JOINED_LOADERS or any(link.name in ("joinedload", "contains_eager") for link in chain.links):
                return True
            if arg.star or callee is None:
                unknown = True
    return None if unknown else False


def _is_limit_one(step: Link) -> bool:
    args = step.args
    return (
        step.name == "limit"
        and len(args) == 1
        and isinstance(args[0].value, cst.Integer)
        and args[0].value.value == "1"
    )


@dataclass
class _QueryChain:
    query: cst.Call  # session.query(...)
    steps: tuple[Link, ...]
    # The call that runs the query; None when the chain is iterated by a `for`.
    terminal: Link | None
    # The expression the rewrite replaces.
    node: cst.BaseExpression

    @property
    def ending(self) -> str:
        return self.terminal.name if self.terminal is not None else "__iter__"


def _rewrite_query(
    ctx: FileContext, fix: FixBuilder, chain: _QueryChain, *, awaited: bool
) -> cst.BaseExpression | None:
    """The 2.0-style expression computing what the legacy chain computes, or None when
    the chain is not one the rewrite understands."""
    query, steps, terminal, ending = chain.query, chain.steps, chain.terminal, chain.ending
    if any(step.call is None or step.name not in _QUERY_STEPS for step in steps):
        return None
    columns = positional_args(query)
    terminal_args = positional_args(terminal.call) if terminal is not None and terminal.call is not None else []
    if not columns or terminal_args is None:
        return None
    if (ending == "get") != bool(terminal_args) or len(terminal_args) > 1:
        return None
    assert isinstance(query.func, cst.Attribute)
    session = query.func.value
    entities = [is_entity(ctx, column) for column in columns]
    select_code = "select"
    if ending != "get":
        found = _import_name(ctx, fix, "sqlalchemy", "select", "sqlmodel.select")
        if found is None:
            return None
        select_code = found

    def select_call() -> cst.Call:
        return cst.Call(
            func=parse_expression(select_code),
            args=query.args,
            whitespace_after_func=query.whitespace_after_func,
            whitespace_before_args=query.whitespace_before_args,
            lpar=query.lpar,
            rpar=query.rpar,
        )

    method: str
    extra_args: list[cst.Arg] = []
    unique = False
    if ending == "count":
        func_code = _import_name(ctx, fix, "sqlalchemy", "func", "sqlmodel.func")
        if func_code is None:
            return None
        count = parse_expression(f"{select_code}({func_code}.count())")
        if len(columns) == 1 and entities[0] and all(s.name in _COUNT_DIRECT_STEPS for s in steps):
            base = cst.Call(
                func=cst.Attribute(value=count, attr=cst.Name("select_from")),
                args=query.args,
                whitespace_before_args=query.whitespace_before_args,
            )
            statement = _apply_steps(base, steps)
        else:
            inner = _method(_apply_steps(select_call(), steps), "subquery")
            statement = _method(count, "select_from", cst.Arg(inner))
        method = "scalar"
    elif ending == "scalar":
        statement = _apply_steps(select_call(), steps)
        method = "scalar"
    elif ending == "get":
        assert terminal is not None and terminal.call is not None
        if len(columns) != 1 or not entities[0] or any(s.name != "options" for s in steps):
            return None
        if any(arg.keyword is not None or arg.star == "**" for step in steps for arg in step.args):
            return None
        options = [
            cst.StarredElement(value=arg.value) if arg.star == "*" else cst.Element(value=arg.value)
            for step in steps
            for arg in step.args
        ]
        statement = columns[0]
        extra_args = [terminal.call.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
        if options:
            extra_args.append(
                cst.Arg(
                    keyword=cst.Name("options"),
                    value=cst.List(elements=options),
                    equal=cst.AssignEqual(
                        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
                    ),
                )
            )
        method = "get"
    else:
        # all(), first(), one(), one_or_none(), iteration: entities or rows, as Query gave.
        single = len(columns) == 1
        if single and entities[0] is None:
            return None
        duplicates = any(s.name in _JOINS for s in steps) or _joined_eager(ctx, steps) is not False
        if duplicates:
            if any(e is True for e in entities):
                unique = True
            elif any(e is None for e in entities):
                return None
        statement = _apply_steps(select_call(), steps)
        method = "scalars" if single and entities[0] else "execute"

    dot_space = terminal.attribute.dot.whitespace_before if terminal is not None else None
    pretty = isinstance(dot_space, cst.ParenthesizedWhitespace) and method != "get"
    closing = dot_space
    if ending == "first" and not (steps and _is_limit_one(steps[-1])):
        # Query.first() applied LIMIT 1.
        limit_dot = cst.Dot()
        if pretty:
            assert isinstance(dot_space, cst.ParenthesizedWhitespace)
            limit_dot = cst.Dot(whitespace_before=dot_space)
            closing = dot_space.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
        statement = cst.Call(
            func=cst.Attribute(value=statement, dot=limit_dot, attr=cst.Name("limit")), args=[cst.Arg(cst.Integer("1"))]
        )
    session_attr = cst.Attribute(value=session, dot=query.func.dot, attr=cst.Name(method))
    if pretty:
        # The chain ends on a line of its own: the statement goes on indented lines
        # between `session.scalars(` and `)`, the closing parenthesis where the
        # terminal call was.
        assert isinstance(dot_space, cst.ParenthesizedWhitespace) and closing is not None
        unit = ctx.module.default_indent
        opening = cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(),
            indent=dot_space.indent,
            last_line=cst.SimpleWhitespace(dot_space.last_line.value + unit),
        )
        call = cst.Call(
            func=session_attr,
            args=[cst.Arg(value=_reindent(statement, unit), whitespace_after_arg=closing)],
            whitespace_before_args=opening,
        )
        terminal_dot = cst.Dot(
            whitespace_before=cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(), indent=dot_space.indent, last_line=dot_space.last_line
            )
        )
    else:
        args = [cst.Arg(value=statement)]
        if extra_args:
            space = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            args = [cst.Arg(value=statement, comma=space), *(a.with_changes(comma=space) for a in extra_args[:-1]), extra_args[-1]]
        call = cst.Call(func=session_attr, args=args)
        terminal_dot = terminal.attribute.dot if terminal is not None else cst.Dot()

    result: cst.BaseExpression = cst.Await(expression=call) if awaited else call
    if method in ("scalars", "execute"):
        if terminal is not None and awaited or unique and awaited:
            result = result.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        if unique:
            result = _method(result, "unique")
        if terminal is not None:
            assert terminal.call is not None
            result = terminal.call.with_changes(
                func=terminal.attribute.with_changes(value=result, dot=terminal_dot), lpar=(), rpar=()
            )
    return result


def _query_chain(query: cst.Call, stack: Sequence[cst.CSTNode]) -> tuple[_QueryChain, int] | None:
    """The legacy chain started by ``query`` (the node being visited) up to the call that
    runs it (or up to the `for` that iterates it), and that expression's index in ``stack``."""
    top, top_index = chain_top(stack)
    chain = split_chain(top)
    position = next((i for i, link in enumerate(chain.links) if link.call is query), None)
    if position is None:
        return None
    steps: list[Link] = []
    for link in chain.links[position + 1 :]:
        if link.call is not None and link.name in _QUERY_STEPS:
            steps.append(link)
            continue
        if link.call is None or link.name not in _TERMINALS:
            return None
        index = next((i for i in range(len(stack) - 1, -1, -1) if stack[i] is link.call), None)
        if index is None:
            return None
        return _QueryChain(query, tuple(steps), link, link.call), index
    parent = _parent_of(stack, top_index)
    if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is top and parent.asynchronous is None:
        return _QueryChain(query, tuple(steps), None, top), top_index
    return None


def _query_get(ctx: FileContext, call: cst.Call, sessions: frozenset[DbKind]) -> cst.Call | None:
    """The ``session.query(Model)`` of ``session.query(Model).get(pk)``."""
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value != "get":
        return None
    query = func.value
    if not (isinstance(query, cst.Call) and isinstance(query.func, cst.Attribute) and query.func.attr.value == "query"):
        return None
    if ctx.kind(query.func.value) not in sessions:
        return None
    columns = positional_args(query)
    pk = positional_args(call)
    if columns is None or len(columns) != 1 or pk is None or len(pk) != 1:
        return None
    return query


def _report_query(rule: Rule, node: cst.Call, sessions: frozenset[DbKind], message: str, *, awaited: bool) -> None:
    ctx = rule.ctx
    func = node.func
    if not isinstance(func, cst.Attribute) or func.attr.value != "query":
        return
    if ctx.kind(func.value) not in sessions:
        return
    stack = ctx.stack
    found = _query_chain(node, stack)
    if not awaited and found is not None and found[0].terminal is not None:
        if _query_get(ctx, found[0].terminal.node, sessions) is not None:
            return  # FDB303's business
    fix = ctx.fix("Rewrite the query with `select()`", unsafe=True)
    new: cst.BaseExpression | None = None
    target: cst.BaseExpression | None = None
    if found is not None:
        chain, index = found
        target = chain.node
        parent = _parent_of(stack, index)
        if not awaited:
            new = _rewrite_query(ctx, fix, chain, awaited=False)
        elif isinstance(parent, cst.Await) and parent.expression is target:
            new = _rewrite_query(ctx, fix, chain, awaited=True)
            if isinstance(new, cst.Await):
                new = new.with_changes(whitespace_after_await=parent.whitespace_after_await)
            if new is not None and target.lpar:
                # The parentheses after `await` are replaced too; line breaks need them.
                new = new.with_changes(lpar=target.lpar, rpar=target.rpar)
            target = parent
        elif _await_allowed(stack[: index + 1]):
            new = _rewrite_query(ctx, fix, chain, awaited=True)
            # A node's range excludes its own parentheses: they stay in the source.
            tight = isinstance(parent, (cst.Subscript, cst.Attribute, cst.Call)) or (
                isinstance(parent, cst.BinaryOperation) and isinstance(parent.operator, cst.Power)
            )
            if isinstance(new, cst.Await) and tight and not target.lpar:
                new = new.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    if new is None or target is None:
        fix.fail()
    else:
        fix.replace(target, new)
    ctx.report(node, message, fix)


# -- rules ----------------------------------------------------------------------------


class LegacyQueryApi(Rule):
    """
    ## What it does
    Flags `session.query(...)` on a sync `Session` (or a `scoped_session`), the legacy
    1.x query API.

    ## Why is this bad?
    SQLAlchemy 2.0 unified ORM and Core querying on `select()` executed with
    `session.execute()`/`scalars()`/`scalar()`; `Query` is a legacy API kept for
    compatibility, it has no async counterpart (an `AsyncSession` has no `query()`),
    and mixing both styles makes the code base harder to move to async. The guidelines
    ask for the 2.0 style everywhere.

    Only objects the analysis knows to be sessions are checked: `request.query`,
    search or analytics clients, `self.query` of other classes and Flask-SQLAlchemy's
    `Model.query` are not flagged.

    ## Example
    ```python
    users = db.query(User).filter(User.active == True).order_by(User.name).all()
    total = db.query(User).count()
    ```

    ## Use instead
    ```python
    users = db.scalars(select(User).where(User.active == True).order_by(User.name)).all()
    total = db.scalar(select(func.count()).select_from(User))
    ```

    ## Fix safety
    Unsafe. The fix rewrites chains of `.query(...)` followed by `filter`, `filter_by`,
    `where`, `order_by`, `limit`, `offset`, `join`, `outerjoin`, `options`, `distinct`,
    `group_by` (and `having`, `with_for_update`, `execution_options`) and ended by
    `all()`, `first()`, `one()`, `one_or_none()`, `scalar()` or `count()`, keeping the
    chain's comments and layout, and imports `select`/`func` once:
    a single entity becomes `session.scalars(select(M)...)`, several entities or
    columns `session.execute(select(a, b)...)` (rows, as `Query` returned), `first()`
    gets the `.limit(1)` that `Query.first()` applied, `count()` becomes
    `session.scalar(select(func.count()).select_from(M)...)` (over a subquery when the
    chain has `distinct`, `group_by`, `limit`, `offset`, `order_by` or several columns,
    as `Query.count()` did), and `.unique()` is added where `Query` de-duplicated
    entities (joins, joined eager loads). What still differs: `scalar()` no longer
    raises `MultipleResultsFound`, and entities repeated through implicit joins in
    `WHERE` are no longer de-duplicated. Chains that are assigned and continued
    elsewhere, that end in another method, or whose selected expression cannot be told
    to be an entity or a column are reported without a fix. `session.query(M).get(pk)`
    is FDB303's.
    """

    code = "FDB301"
    name = "legacy-query-api"
    summary = "Legacy `Session.query()` API"
    fix = FixAvailability.UNSAFE
    triggers = ("query",)
    valid = [
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def list_users(db: Session):\n"
            "    return db.scalars(select(User)).all()\n"
        ),
        # request.query / search clients / self.query of a non-session class
        Valid(
            "from fastapi import Request\n"
            "async def search(request: Request, es):\n"
            "    params = request.query\n"
            "    return await es.query(index='users', body={'q': params})\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "class Analytics:\n"
            "    def __init__(self, client):\n"
            "        self.client = client\n"
            "    def run(self, db: Session):\n"
            "        return self.query('select 1')\n"
            "    def query(self, sql):\n"
            "        return self.client.query(sql)\n"
        ),
        # Flask-SQLAlchemy's Model.query is out of scope.
        Valid(
            "from flask_sqlalchemy import SQLAlchemy\n"
            "db = SQLAlchemy()\n"
            "def find(name):\n"
            "    return User.query.filter_by(name=name).first()\n"
        ),
        # session.query(M).get(pk) is FDB303's.
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def get_user(db: Session, user_id: int):\n"
            "    return db.query(User).get(user_id)\n"
        ),
        # An AsyncSession's query() is FDB302's.
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(session: AsyncSession):\n"
            "    return await session.query(User).all()\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def list_users(db: Session):\n"
            "    return db.query(User).filter(User.active == True).order_by(User.name).all()\n",
            fixed="from sqlalchemy.orm import Session\n"
            "from sqlalchemy import select\n"
            "def list_users(db: Session):\n"
            "    return db.scalars(select(User).where(User.active == True).order_by(User.name)).all()\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy import Column\n"
            "from sqlalchemy.orm import Session\n"
            "def find(db: Session, name: str):\n"
            "    return db.query(User).filter_by(name=name).first()\n",
            fixed="from sqlalchemy import Column, select\n"
            "from sqlalchemy.orm import Session\n"
            "def find(db: Session, name: str):\n"
            "    return db.scalars(select(User).filter_by(name=name).limit(1)).first()\n",
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def one(db: Session, user_id: int):\n"
            "    return db.query(User).where(User.id == user_id).one()\n",
            fixed="from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def one(db: Session, user_id: int):\n"
            "    return db.scalars(select(User).where(User.id == user_id)).one()\n",
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def names(db: Session):\n"
            "    return db.query(User.id, User.name).offset(10).limit(5).all()\n",
            fixed="from sqlalchemy.orm import Session\n"
            "from sqlalchemy import select\n"
            "def names(db: Session):\n"
            "    return db.execute(select(User.id, User.name).offset(10).limit(5)).all()\n",
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def total(db: Session) -> int:\n"
            "    return db.query(User).filter(User.active == True).count()\n",
            fixed="from sqlalchemy.orm import Session\n"
            "from sqlalchemy import select, func\n"
            "def total(db: Session) -> int:\n"
            "    return db.scalar(select(func.count()).select_from(User).where(User.active == True))\n",
        ),
        Invalid(
            "import sqlalchemy as sa\n"
            "from sqlalchemy.orm import Session\n"
            "def distinct_names(db: Session) -> int:\n"
            "    return db.query(User.name).distinct().count()\n",
            fixed="import sqlalchemy as sa\n"
            "from sqlalchemy.orm import Session\n"
            "def distinct_names(db: Session) -> int:\n"
            "    return db.scalar(sa.select(sa.func.count()).select_from(sa.select(User.name).distinct().subquery()))\n",
        ),
        Invalid(
            "from sqlalchemy.orm import Session, joinedload\n"
            "def with_posts(db: Session):\n"
            "    users = (\n"
            "        db.query(User)\n"
            "        # only active users\n"
            "        .filter(User.active == True)  # flag column\n"
            "        .options(joinedload(User.posts))\n"
            "        .all()\n"
            "    )\n"
            "    return users\n",
            fixed="from sqlalchemy.orm import Session, joinedload\n"
            "from sqlalchemy import select\n"
            "def with_posts(db: Session):\n"
            "    users = (\n"
            "        db.scalars(\n"
            "            select(User)\n"
            "            # only active users\n"
            "            .where(User.active == True)  # flag column\n"
            "            .options(joinedload(User.posts))\n"
            "        ).unique()\n"
            "        .all()\n"
            "    )\n"
            "    return users\n",
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def latest(db: Session):\n"
            "    return db.query(func.max(Post.created_at)).scalar()\n",
            fixed="from sqlalchemy.orm import Session\n"
            "from sqlalchemy import select\n"
            "def latest(db: Session):\n"
            "    return db.scalar(select(func.max(Post.created_at)))\n",
        ),
        # A query kept in a variable and continued elsewhere: reported, not rewritten.
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def search(db: Session, name: str | None):\n"
            "    q = db.query(User)\n"
            "    if name:\n"
            "        q = q.filter(User.name == name)\n"
            "    return q.all()\n",
            line=3,
        ),
        Invalid(
            "from app.db import SessionLocal\n"
            "def report():\n"
            "    with SessionLocal() as session:\n"
            "        return session.query(Item).all()\n",
            files={"app/db.py": "from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker()\n"},
            fixed="from app.db import SessionLocal\n"
            "from sqlalchemy import select\n"
            "def report():\n"
            "    with SessionLocal() as session:\n"
            "        return session.scalars(select(Item)).all()\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return receiver_may_be(shape, project, SYNC_SESSION_SOURCES, _QUERY_METHOD)

    def visit_Call(self, node: cst.Call) -> None:
        _report_query(
            self,
            node,
            _SYNC_SESSIONS,
            "Legacy `Session.query()` API: use `select()` with `session.scalars()`/`execute()`",
            awaited=False,
        )


class QueryOnAsyncSession(Rule):
    """
    ## What it does
    Flags `.query(...)` called on an `AsyncSession` (or an `async_scoped_session`).

    ## Why is this bad?
    `AsyncSession` has no `query()` method: the call raises `AttributeError` at run
    time. Async code must use 2.0-style `select()` executed with
    `await session.execute()`/`scalars()`/`scalar()`, as the guidelines require.

    ## Example
    ```python
    users = await session.query(User).filter(User.active == True).all()
    ```

    ## Use instead
    ```python
    users = (await session.scalars(select(User).where(User.active == True))).all()
    ```

    ## Fix safety
    Unsafe: the same rewrite as FDB301 (see there for what it understands and what
    differs), with the session call awaited. It is offered only where `await` may be
    written (inside `async def`, not in a lambda or a generator expression); an
    existing `await` in front of the chain is reused.
    """

    code = "FDB302"
    name = "query-on-async-session"
    summary = "`AsyncSession` has no `query()` method"
    fix = FixAvailability.UNSAFE
    triggers = ("query",)
    valid = [
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(session: AsyncSession):\n"
            "    return (await session.scalars(select(User))).all()\n"
        ),
        Valid(
            "from fastapi import Request\n"
            "async def search(request: Request, es):\n"
            "    params = request.query\n"
            "    return await es.query(index='users', q=request.query_params['q'], extra=params)\n"
        ),
        Valid(
            "class Repo:\n"
            "    def __init__(self, index):\n"
            "        self.index = index\n"
            "    async def find(self, text):\n"
            "        return await self.query(text)\n"
            "    async def query(self, text):\n"
            "        return await self.index.query(text)\n"
        ),
        Valid(
            "from flask_sqlalchemy import SQLAlchemy\n"
            "async def find(name):\n"
            "    return User.query.filter_by(name=name).first()\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def list_users(session: AsyncSession):\n"
            "    return await session.query(User).filter(User.active == True).all()\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from sqlalchemy import select\n"
            "async def list_users(session: AsyncSession):\n"
            "    return (await session.scalars(select(User).where(User.active == True))).all()\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def count(session: AsyncSession) -> int:\n"
            "    return session.query(User).count()\n",
            fixed="from sqlalchemy import select, func\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def count(session: AsyncSession) -> int:\n"
            "    return await session.scalar(select(func.count()).select_from(User))\n",
        ),
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def get_user(session: AsyncSession, user_id: int):\n"
            "    return await session.query(User).get(user_id)\n",
            fixed="from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def get_user(session: AsyncSession, user_id: int):\n"
            "    return await session.get(User, user_id)\n",
        ),
        # No `await` can be written in a plain `def`: reported without a fix.
        Invalid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "def list_users(session: AsyncSession):\n"
            "    return session.query(User).all()\n",
        ),
        Invalid(
            "from typing import Annotated\n"
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from app.db import get_session\n"
            "SessionDep = Annotated[AsyncSession, Depends(get_session)]\n"
            "async def first_user(session: SessionDep):\n"
            "    user = await session.query(User).order_by(User.id).first()\n"
            "    return user\n",
            fixed="from typing import Annotated\n"
            "from fastapi import Depends\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from app.db import get_session\n"
            "from sqlalchemy import select\n"
            "SessionDep = Annotated[AsyncSession, Depends(get_session)]\n"
            "async def first_user(session: SessionDep):\n"
            "    user = (await session.scalars(select(User).order_by(User.id).limit(1))).first()\n"
            "    return user\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # An async session is typed through `sqlalchemy.ext.asyncio`/`sqlmodel.ext.asyncio`:
        # imported somewhere in the project, or reached as an attribute here.
        return QUERY in shape.calls and (project.asyncio or "asyncio" in shape.names)

    def visit_Call(self, node: cst.Call) -> None:
        _report_query(
            self,
            node,
            _ASYNC_SESSIONS,
            "`AsyncSession` has no `query()` method: use `await session.scalars(select(...))`",
            awaited=True,
        )


class LegacyQueryGet(Rule):
    """
    ## What it does
    Flags `session.query(Model).get(pk)` on a sync session.

    ## Why is this bad?
    `Query.get()` is deprecated since SQLAlchemy 1.4 and legacy in 2.0; the guidelines
    ask for `session.get(Model, pk)`, which does the same identity-map lookup and exists
    on `AsyncSession` too.

    ## Example
    ```python
    user = db.query(User).get(user_id)
    ```

    ## Use instead
    ```python
    user = db.get(User, user_id)
    ```

    ## Fix safety
    Safe: `Query.get()` is implemented by the same lookup as `Session.get()`. Chains
    with more steps (`.options(...).get(pk)`) are FDB301's.
    """

    code = "FDB303"
    name = "legacy-query-get"
    summary = "`session.query(Model).get(pk)` is deprecated"
    fix = FixAvailability.SAFE
    triggers = ("query",)
    valid = [
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def get_user(db: Session, user_id: int):\n"
            "    return db.get(User, user_id)\n"
        ),
        Valid(
            "def get_value(cache, key):\n"
            "    return cache.query(Key).get(key)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def get_user(db: Session, user_id: int):\n"
            "    return db.query(User).get(user_id)\n",
            fixed="from sqlalchemy.orm import Session\n"
            "def get_user(db: Session, user_id: int):\n"
            "    return db.get(User, user_id)\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "class Repository:\n"
            "    def __init__(self, session: Session):\n"
            "        self.session = session\n"
            "    def find(self, pk):\n"
            "        return self.session.query(models.Item).get(\n"
            "            pk\n"
            "        ).name\n",
            fixed="from sqlalchemy.orm import Session\n"
            "class Repository:\n"
            "    def __init__(self, session: Session):\n"
            "        self.session = session\n"
            "    def find(self, pk):\n"
            "        return self.session.get(\n"
            "            models.Item, pk\n"
            "        ).name\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return (QUERY, "get") in shape.chained_calls and receiver_may_be(
            shape, project, SYNC_SESSION_SOURCES, _QUERY_METHOD
        )

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        query = _query_get(ctx, node, _SYNC_SESSIONS)
        if query is None:
            return
        assert isinstance(query.func, cst.Attribute)
        model = query.args[0].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        new = cst.Call(
            func=cst.Attribute(value=query.func.value, dot=query.func.dot, attr=cst.Name("get")),
            args=[model, *node.args],
            whitespace_before_args=node.whitespace_before_args,
        )
        fix = ctx.fix("Use `session.get(Model, pk)`").replace(node, new)
        ctx.report(node, "`Query.get()` is deprecated: use `session.get(Model, pk)`", fix)


class LegacySelectList(Rule):
    """
    ## What it does
    Flags `select([a, b])`, the list form of `select()`.

    ## Why is this bad?
    SQLAlchemy 2.0 removed the list form: `select()` takes the columns and entities
    as positional arguments, and the list form raises `ArgumentError`.

    ## Example
    ```python
    stmt = select([User.id, User.name])
    ```

    ## Use instead
    ```python
    stmt = select(User.id, User.name)
    ```

    ## Fix safety
    Safe: the list's elements become the arguments, comments and layout kept. A list
    followed by other legacy arguments (`select([...], whereclause)`, `from_obj=`) is
    reported without a fix.
    """

    code = "FDB304"
    name = "legacy-select-list"
    summary = "`select([...])` list form was removed in SQLAlchemy 2.0"
    fix = FixAvailability.SAFE
    triggers = ("select",)
    valid = [
        Valid("from sqlalchemy import select\nstmt = select(User.id, User.name)\n"),
        Valid("from sqlalchemy import select\nstmt = select(*columns)\n"),
        Valid("from sqlalchemy import select\nstmt = select(*[User.id, User.name])\n"),
        Valid("import select\nready = select.select([sock], [], [])\n"),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import select\nstmt = select([User.id, User.name])\n",
            fixed="from sqlalchemy import select\nstmt = select(User.id, User.name)\n",
            line=2,
        ),
        Invalid(
            "import sqlalchemy as sa\n"
            "stmt = sa.select(\n"
            "    [\n"
            "        users.c.id,  # key\n"
            "        users.c.name,\n"
            "    ]\n"
            ").where(users.c.id > 5)\n",
            fixed="import sqlalchemy as sa\n"
            "stmt = sa.select(\n"
            "        users.c.id,  # key\n"
            "        users.c.name,\n"
            "    ).where(users.c.id > 5)\n",
        ),
        Invalid(
            "from sqlalchemy.sql import select\nstmt = select([users.c.id], users.c.id > 5)\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return "select" in shape.list_arg_calls

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if not node.args or ctx.callee(node) not in ("sqlalchemy.select",):
            return
        first = node.args[0]
        if first.keyword is not None or first.star or not isinstance(first.value, cst.List):
            return
        fix = ctx.fix("Pass the columns as arguments")
        if len(node.args) != 1 or first.value.lpar:
            fix.fail()
        else:
            fix.replace(node, _unpack_list(node, first, first.value))
        ctx.report(node, "`select([...])` list form was removed in SQLAlchemy 2.0: use `select(a, b)`", fix)


def _unpack_list(call: cst.Call, arg: cst.Arg, items: cst.List) -> cst.Call:
    args: list[cst.Arg] = []
    for element in items.elements:
        if isinstance(element, cst.StarredElement):
            args.append(
                cst.Arg(value=element.value, star="*", comma=element.comma, whitespace_after_star=element.whitespace_before_value)
            )
        else:
            args.append(cst.Arg(value=element.value, comma=element.comma))
    before = items.lbracket.whitespace_after
    if isinstance(before, cst.SimpleWhitespace) and not before.value:
        before = call.whitespace_before_args
    if args:
        last = args[-1]
        after = items.rbracket.whitespace_before
        if isinstance(after, cst.SimpleWhitespace) and not after.value:
            after = arg.whitespace_after_arg
        if isinstance(arg.comma, cst.Comma) and not isinstance(last.comma, cst.Comma):
            last = last.with_changes(comma=arg.comma)
        args[-1] = last.with_changes(whitespace_after_arg=after)
    return call.with_changes(args=args, whitespace_before_args=before)


_COUNTED = "Rows counted in Python: use `select(func.count())`"
_SUMMED = "Rows summed in Python: use `select(func.sum(...))`"


@dataclass
class _Aggregation:
    call: cst.Call
    # The local list/result name the aggregation reads, when it reads one.
    name: str | None
    function: cst.FunctionDef | None


class PythonSideAggregation(Rule):
    """
    ## What it does
    Flags counting or summing in Python what the database should aggregate:
    `len(<session query>.all())`, `len(<...>.scalars().all())`, `len(rows)` of such a
    list used for nothing else, and `sum(x.col for x in <session query result>)`.

    ## Why is this bad?
    Loading every row (and building an ORM instance for each) just to count or add
    them moves the whole table over the wire; `func.count()`/`func.sum()` compute the
    same in the database and return one row, as the guidelines require.

    ## Example
    ```python
    total = len(session.scalars(select(Order)).all())
    revenue = sum(o.amount for o in session.scalars(select(Order)))
    ```

    ## Use instead
    ```python
    total = session.scalar(select(func.count()).select_from(Order))
    revenue = session.scalar(select(func.sum(Order.amount)))
    ```

    ## Fix safety
    No fix. Not flagged: `len()`/`sum()` of a list that the function also uses for
    other things (the rows are needed anyway), and sums over relationship collections
    or other iterables that are not a session query's result.
    """

    code = "FDB305"
    name = "python-side-aggregation"
    summary = "Aggregation done in Python instead of SQL"
    triggers = ("len", "sum")
    valid = [
        Valid(
            "from sqlalchemy import func, select\n"
            "from sqlalchemy.orm import Session\n"
            "def count_orders(db: Session) -> int:\n"
            "    return db.scalar(select(func.count()).select_from(Order))\n"
        ),
        # The list is also returned: counting it costs nothing more.
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def page(session: AsyncSession):\n"
            "    items = (await session.scalars(select(Item).limit(20))).all()\n"
            "    return {'items': items, 'count': len(items)}\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def total(db: Session, order):\n"
            "    return sum(line.amount for line in order.lines)\n"
        ),
        Valid(
            "def size(rows):\n"
            "    return len(rows.all())\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def count_items(db: Session) -> int:\n"
            "    return len(db.query(Item).all())\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def count_users(session: AsyncSession) -> int:\n"
            "    result = await session.execute(select(User))\n"
            "    return len(result.scalars().all())\n",
            line=5,
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def count_users(session: AsyncSession) -> int:\n"
            "    users = (await session.scalars(select(User))).all()\n"
            "    return len(users)\n",
            line=5,
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def revenue(db: Session) -> int:\n"
            "    return sum(o.amount for o in db.scalars(select(Order)))\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # `len()` of listed rows (or of a name assigned them), `sum()` of a comprehension.
        listed = _chains_may_call(shape, shape.argument_chains, _LEN, _LISTING_CALLS)
        if not listed and "sum" not in shape.calls_with_args:
            return False
        return receiver_may_be(shape, project, SESSION_SOURCES, _SESSION_ROW_CALLS)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._pending: list[_Aggregation] = []

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        if len(node.args) != 1 or node.args[0].keyword is not None or node.args[0].star:
            return
        value = node.args[0].value
        if _builtin(ctx, func, "len"):
            self._len(node, value)
        elif _builtin(ctx, func, "sum"):
            self._sum(node, value)

    def _len(self, node: cst.Call, value: cst.BaseExpression) -> None:
        ctx = self.ctx
        if isinstance(value, cst.Name):
            values = ctx.assigned(value.value)
            if values is None or len(values) != 1 or values[0] is None or not self._listed_rows(values[0]):
                return
            self._defer(node, value.value)
        elif self._listed_rows(value):
            ctx.report(node, _COUNTED)

    def _listed_rows(self, expr: cst.BaseExpression) -> bool:
        """``<session result>.all()`` or ``list(<session result>)``."""
        expr = strip_await(expr)
        if isinstance(expr, cst.Call) and _builtin(self.ctx, expr.func, "list") and len(expr.args) == 1:
            arg = expr.args[0]
            return arg.keyword is None and not arg.star and _session_call(self.ctx, arg.value) is not None
        if not (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute)):
            return False
        if expr.func.attr.value not in ("all", "fetchall") or expr.args:
            return False
        return _session_call(self.ctx, expr.func.value) is not None

    def _sum(self, node: cst.Call, value: cst.BaseExpression) -> None:
        ctx = self.ctx
        if not isinstance(value, (cst.GeneratorExp, cst.ListComp)):
            return
        comp = value.for_in
        if comp.inner_for_in is not None or not isinstance(comp.target, cst.Name):
            return
        target = comp.target.value
        element = value.elt
        root = split_chain(element).root if isinstance(element, cst.Attribute) else None
        if not (isinstance(root, cst.Name) and root.value == target):
            return  # sum(x.col for x in ...) only
        iterable = comp.iter
        if isinstance(iterable, cst.Name):
            values = ctx.assigned(iterable.value)
            if values is None or len(values) != 1 or values[0] is None or _session_call(ctx, values[0]) is None:
                return
            self._defer(node, iterable.value)
        elif _session_call(ctx, iterable) is not None:
            ctx.report(node, _SUMMED)

    def _defer(self, node: cst.Call, name: str) -> None:
        function = self.ctx.function
        self._pending.append(_Aggregation(node, name, function.node if function else None))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        uses: dict[str, int] | None = None
        remaining: list[_Aggregation] = []
        for pending in self._pending:
            if pending.function is not node:
                remaining.append(pending)
                continue
            assert pending.name is not None
            if uses is None:
                uses = name_counts(node, attribute_names=False)
            # One use in the assignment, one in the aggregation: nothing else needs the rows.
            if uses.get(pending.name, 0) == 2:
                counted = isinstance(pending.call.func, cst.Name) and pending.call.func.value == "len"
                self.ctx.report(pending.call, _COUNTED if counted else _SUMMED)
        self._pending = remaining


@dataclass
class _LoopQuery:
    call: cst.Call
    loop: cst.CSTNode
    is_while: bool


class QueryInLoop(Rule):
    """
    ## What it does
    Flags a session query (`execute`, `scalar`, `scalars`, `get`, `get_one`, `query`,
    `refresh`, SQLModel's `exec`) inside the body of a `for`/`async for`/`while` loop or
    in the repeated part of a comprehension.

    ## Why is this bad?
    One query per item is the N+1 pattern: a round trip for every row of the outer
    result. The guidelines ask to eager-load related rows (`selectinload`) or to fetch
    them in one batch (`where(Model.id.in_(ids))`).

    ## Example
    ```python
    for user in users:
        posts = (await session.scalars(select(Post).where(Post.author_id == user.id))).all()
    ```

    ## Use instead
    ```python
    users = (await session.scalars(select(User).options(selectinload(User.posts)))).all()
    ```

    ## Fix safety
    No fix. Not flagged: loops over batches or pages that run one query per chunk (a
    `limit`/`offset`/`slice` or an `in_()` built from the loop variable, or in a
    `while` loop from a variable it updates); retry loops (`for attempt in range(n)`
    whose variable the query does not use, tenacity's `Retrying`, a `while` loop whose
    query sits in a `try` or that sleeps between rounds); writes (`insert`/`update`/
    `delete` statements) and loops that execute a list of statements.
    """

    code = "FDB306"
    name = "query-in-loop"
    summary = "Query inside a loop (N+1)"
    valid = [
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import selectinload\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def posts(session: AsyncSession):\n"
            "    users = (await session.scalars(select(User).options(selectinload(User.posts)))).all()\n"
            "    return {u.id: [p.id for p in u.posts] for u in users}\n"
        ),
        # Batches: one query per chunk of an explicit size.
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def export(db: Session, total: int):\n"
            "    for offset in range(0, total, 500):\n"
            "        rows = db.scalars(select(User).order_by(User.id).offset(offset).limit(500)).all()\n"
            "        write(rows)\n"
        ),
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def load(session: AsyncSession, ids: list[int]):\n"
            "    found = []\n"
            "    for start in range(0, len(ids), 100):\n"
            "        chunk = ids[start:start + 100]\n"
            "        stmt = select(User).where(User.id.in_(chunk))\n"
            "        found.extend((await session.scalars(stmt)).all())\n"
            "    return found\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def pages(db: Session):\n"
            "    page = 0\n"
            "    while True:\n"
            "        batch = db.query(User).order_by(User.id).offset(page * 100).limit(100).all()\n"
            "        if not batch:\n"
            "            break\n"
            "        page += 1\n"
        ),
        # Retry loops around one call.
        Valid(
            "from sqlalchemy import text\n"
            "from sqlalchemy.exc import OperationalError\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def ping(session: AsyncSession):\n"
            "    for attempt in range(3):\n"
            "        try:\n"
            "            return await session.execute(text('SELECT 1'))\n"
            "        except OperationalError:\n"
            "            continue\n"
        ),
        Valid(
            "import time\n"
            "from sqlalchemy import text\n"
            "from sqlalchemy.orm import Session\n"
            "def wait_for_db(db: Session):\n"
            "    while True:\n"
            "        try:\n"
            "            db.execute(text('SELECT 1'))\n"
            "            break\n"
            "        except Exception:\n"
            "            time.sleep(1)\n"
        ),
        Valid(
            "from sqlalchemy import delete\n"
            "from sqlalchemy.orm import Session\n"
            "def clear(db: Session, tables):\n"
            "    for table in tables:\n"
            "        db.execute(table.delete())\n"
            "    for model in (User, Post):\n"
            "        db.execute(delete(model))\n"
        ),
        Valid(
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def first(session: AsyncSession, ids):\n"
            "    users = [u for u in (await session.scalars(select(User).where(User.id.in_(ids)))).all()]\n"
            "    return users\n"
        ),
        Valid(
            "def fetch_all(client, urls):\n"
            "    return [client.get(url) for url in urls]\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def posts(session: AsyncSession, users):\n"
            "    counts = {}\n"
            "    for user in users:\n"
            "        counts[user.id] = await session.scalar(select(Post.id).where(Post.author_id == user.id))\n"
            "    return counts\n",
            line=6,
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def load(db: Session, ids):\n"
            "    return [db.get(User, i) for i in ids]\n",
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def refresh_all(db: Session, users):\n"
            "    for user in users:\n"
            "        db.refresh(user)\n"
            "        db.query(Post).filter(Post.author_id == user.id).limit(10).all()\n",
            count=2,
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def ancestors(db: Session, node):\n"
            "    while node.parent_id is not None:\n"
            "        node = db.get(Node, node.parent_id)\n"
            "    return node\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return receiver_may_be(shape, project, SESSION_SOURCES, SESSION_QUERY_METHODS, loop=True)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._pending: list[_LoopQuery] = []
        self._throttled: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        if not isinstance(func, cst.Attribute):
            if isinstance(func, cst.Name) and ctx.callee(node) in _SLEEPS:
                self._throttle()
            return
        method = func.attr.value
        if ctx.callee(node) in _SLEEPS:
            self._throttle()
            return
        if method not in SESSION_QUERY_METHODS or ctx.kind(func.value) not in QUERY_SESSIONS:
            return
        loop = enclosing_loop(ctx.stack)
        if loop is None:
            return
        derived = self._loop_names(loop.targets, is_while=isinstance(loop.node, cst.While))
        statement: Statement | None = None
        if method in EXECUTE_METHODS:
            argument = _statement_arg(node)
            if argument is None or self._is_write_or_given(argument, loop.targets):
                return
            statement = statement_of(ctx, argument)
        elif method == "query":
            top, _ = chain_top(ctx.stack)
            statement = statement_of(ctx, top, (QUERY,))
        if statement is not None and (
            self._is_batch(statement, derived)
            or isinstance(loop.node, cst.While) and statement.has("limit", "fetch", "slice")
        ):
            return
        if self._is_retry(node, loop.node, loop.iterable, derived):
            return
        self._pending.append(_LoopQuery(node, loop.node, isinstance(loop.node, cst.While)))

    def _throttle(self) -> None:
        for node in self.ctx.ancestors():
            if isinstance(node, (cst.FunctionDef, cst.Lambda)):
                break
            if isinstance(node, cst.While):
                self._throttled.add(id(node))

    def _loop_names(self, targets: frozenset[str], *, is_while: bool) -> set[str]:
        """The loop's variables and the local names computed from them."""
        scope = self.ctx.function
        if scope is None:
            return set(targets)
        if is_while:
            # A while loop's progress lives in the local variables it updates.
            return set(scope.assignments)
        names = set(targets)
        changed = True
        while changed:
            changed = False
            for name, values in scope.assignments.items():
                if name not in names and any(v is not None and names_in(v) & names for v in values):
                    names.add(name)
                    changed = True
        return names

    def _is_write_or_given(self, argument: cst.BaseExpression, targets: frozenset[str]) -> bool:
        """A write statement, or a statement (or table, or SQL text) the loop iterates over."""
        ctx = self.ctx
        if isinstance(argument, cst.Name) and argument.value not in targets:
            argument = self._latest(argument)
        if statement_of(ctx, argument, UPDATE_FUNCTIONS | DELETE_FUNCTIONS | INSERT_FUNCTIONS) is not None:
            return True
        chain = split_chain(argument)
        root = chain.root
        if isinstance(root, cst.Name) and root.value in targets:
            return True
        if chain.links and chain.links[-1].name in ("insert", "update", "delete", "values"):
            return True
        calls = [root] if isinstance(root, cst.Call) else []
        calls.extend(link.call for link in chain.links if link.call is not None)
        text = next((c for c in calls if ctx.callee(c) == "sqlalchemy.text"), None)
        if text is None or not text.args:
            return False
        sql = text.args[0].value
        if isinstance(sql, cst.Name):
            if sql.value in targets:
                return True
            sql = self._latest(sql)
        if isinstance(sql, cst.Call) and ctx.callee(sql) in _STRING_WRAPPERS and sql.args:
            sql = sql.args[0].value
        words = (_leading_text(sql) or "").strip().split(None, 1)
        return bool(words) and words[0].lower() in _WRITE_KEYWORDS

    def _latest(self, name: cst.Name) -> cst.BaseExpression:
        """The value last assigned to a local name (the name itself when unknown)."""
        values = self.ctx.assigned(name.value)
        latest = values[-1] if values else None
        return latest if latest is not None else name

    def _is_batch(self, statement: Statement, derived: set[str]) -> bool:
        bounded: list[cst.Call] = statement.calls(*_BATCH_STEPS)
        for link in statement.links:
            for arg in link.args:
                bounded.extend(_calls_named(arg, frozenset({"in_"})))
        return any(names_in(arg) & derived for call in bounded for arg in call.args)

    def _is_retry(
        self, node: cst.Call, loop: cst.CSTNode, iterable: cst.BaseExpression | None, derived: set[str]
    ) -> bool:
        ctx = self.ctx
        if isinstance(loop, cst.For) and isinstance(iterable, cst.Call):
            callee = ctx.callee(iterable)
            if callee is not None and callee.startswith("tenacity."):
                return True
            if _builtin(ctx, iterable.func, "range") and not names_in(node) & derived:
                return True
        if isinstance(loop, cst.While):
            for ancestor in ctx.ancestors():
                if ancestor is loop:
                    break
                if isinstance(ancestor, (cst.Try, cst.TryStar)):
                    return True
        return False

    def finish(self) -> None:
        for pending in self._pending:
            if pending.is_while and id(pending.loop) in self._throttled:
                continue
            self.ctx.report(pending.call, "Query inside a loop (N+1): eager-load or batch with `in_()`")


@dataclass
class _RowsCandidate:
    call: cst.Call
    fix: FixBuilder
    # `.first()`/`.one()`/`.one_or_none()` (one row) rather than `.all()` (a list of rows).
    single_row: bool
    entity_name: str | None
    cancelled: bool = False


class RowsInsteadOfScalars(Rule):
    """
    ## What it does
    Flags `session.execute(select(Model)...)` (awaited or not) with a single ORM entity
    whose result is read with `.all()`, `.first()`, `.one()` or `.one_or_none()`
    without `.scalars()`.

    ## Why is this bad?
    `execute()` returns `Row` tuples: `.all()` gives `[(user,), ...]` and `.first()`
    gives `(user,)`, not `User` instances, so attribute access fails or the row leaks
    into responses. The 2.0 API reads entities with `.scalars()` (or
    `session.scalars()`).

    ## Example
    ```python
    users = (await session.execute(select(User))).all()
    ```

    ## Use instead
    ```python
    users = (await session.execute(select(User))).scalars().all()
    ```

    ## Fix safety
    Safe: inserts `.scalars()` before the result method. Not flagged: selects of several
    entities or columns, results already read through `.scalars()`, and rows used as
    rows (unpacked as one-element tuples such as `for (user,) in ...`, indexed with
    `row[0]`, or read as `row.User`).
    """

    code = "FDB307"
    name = "rows-instead-of-scalars"
    summary = "Single-entity `execute()` result read as rows"
    fix = FixAvailability.SAFE
    triggers = ("execute",)
    valid = [
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def users(session: AsyncSession):\n"
            "    return (await session.execute(select(User))).scalars().all()\n"
        ),
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def pairs(db: Session):\n"
            "    return db.execute(select(User.id, User.name)).all()\n"
        ),
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def names(db: Session):\n"
            "    return [user.name for (user,) in db.execute(select(User)).all()]\n"
        ),
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def names(db: Session):\n"
            "    rows = db.execute(select(User)).all()\n"
            "    for user, in rows:\n"
            "        print(user.name)\n"
        ),
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def first(db: Session):\n"
            "    return db.execute(select(User)).first()[0]\n"
        ),
        Valid(
            "from sqlalchemy import text\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def raw(session: AsyncSession):\n"
            "    return (await session.execute(text('SELECT id FROM user'))).all()\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def users(session: AsyncSession):\n"
            "    return (await session.execute(select(User).where(User.active))).all()\n",
            fixed="from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def users(session: AsyncSession):\n"
            "    return (await session.execute(select(User).where(User.active))).scalars().all()\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def by_email(db: Session, email: str):\n"
            "    stmt = select(User).where(User.email == email)\n"
            "    return db.execute(stmt).one_or_none()\n",
            fixed="from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "def by_email(db: Session, email: str):\n"
            "    stmt = select(User).where(User.email == email)\n"
            "    return db.execute(stmt).scalars().one_or_none()\n",
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session, joinedload\n"
            "def with_posts(db: Session):\n"
            "    return db.execute(select(User).options(joinedload(User.posts))).unique().all()\n",
            fixed="from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session, joinedload\n"
            "def with_posts(db: Session):\n"
            "    return db.execute(select(User).options(joinedload(User.posts))).scalars().unique().all()\n",
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from app.models import Item\n"
            "async def items(session: AsyncSession):\n"
            "    result = await session.execute(select(Item))\n"
            "    return result.first()\n",
            files={
                "app/models.py": "from sqlalchemy.orm import DeclarativeBase\n"
                "class Base(DeclarativeBase):\n    pass\n"
                "class Item(Base):\n    __tablename__ = 'item'\n"
            },
            fixed="from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "from app.models import Item\n"
            "async def items(session: AsyncSession):\n"
            "    result = await session.execute(select(Item))\n"
            "    return result.scalars().first()\n",
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        calls = shape.calls
        return (
            "execute" in shape.calls_with_args
            and not calls.isdisjoint(_SELECT_CALLS)
            and _row_terminal_on_execute(shape)
            and receiver_may_be(shape, project, SESSION_SOURCES, _EXECUTE_METHOD)
        )

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._candidates: list[_RowsCandidate] = []
        # (function id, name) -> candidates whose result (list or row) the name holds.
        self._results: dict[tuple[int, str], list[_RowsCandidate]] = {}
        # (function id, name) -> candidates whose rows a loop variable of that name holds.
        self._rows: dict[tuple[int, str], list[_RowsCandidate]] = {}

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in _ROW_TERMINALS or node.args:
            return
        uniques: list[Link] = []
        receiver = func.value
        while (
            isinstance(receiver, cst.Call)
            and isinstance(receiver.func, cst.Attribute)
            and receiver.func.attr.value == "unique"
        ):
            uniques.append(Link(receiver.func, receiver))
            receiver = receiver.func.value
        execute = self._execute_of(receiver)
        if execute is None:
            return
        argument = _statement_arg(execute)
        statement = statement_of(ctx, argument, SELECT_FUNCTIONS) if argument is not None else None
        entity = select_entity(ctx, statement) if statement is not None else None
        if entity is None:
            return
        entity_name = entity.attr.value if isinstance(entity, cst.Attribute) else entity.value if isinstance(entity, cst.Name) else None
        single_row = func.attr.value != "all"
        if self._used_as_row(node, entity_name):
            return
        current: cst.BaseExpression = _method(receiver, "scalars")
        for link in reversed(uniques):
            assert link.call is not None
            current = link.call.with_changes(func=link.attribute.with_changes(value=current))
        fix = ctx.fix("Insert `.scalars()`").replace(node, node.with_changes(func=func.with_changes(value=current)))
        candidate = _RowsCandidate(node, fix, single_row, entity_name)
        self._candidates.append(candidate)
        parent = ctx.parent
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
            self._track(self._results, parent.targets[0].target.value, candidate)
        elif isinstance(parent, cst.For) and parent.iter is node and isinstance(parent.target, cst.Name):
            self._track(self._rows, parent.target.value, candidate)

    def _track(self, table: dict[tuple[int, str], list[_RowsCandidate]], name: str, candidate: _RowsCandidate) -> None:
        function = self.ctx.function
        if function is not None:
            table.setdefault((id(function.node), name), []).append(candidate)

    def _tracked(self, table: dict[tuple[int, str], list[_RowsCandidate]], name: str) -> list[_RowsCandidate]:
        function = self.ctx.function
        return table.get((id(function.node), name), []) if function is not None else []

    def _execute_of(self, receiver: cst.BaseExpression) -> cst.Call | None:
        ctx = self.ctx
        expr = receiver
        if isinstance(expr, cst.Name):
            values = ctx.assigned(expr.value)
            if values is None or len(values) != 1 or values[0] is None:
                return None
            expr = values[0]
        awaited = isinstance(expr, cst.Await)
        expr = strip_await(expr)
        if not (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "execute"):
            return None
        kind = ctx.kind(expr.func.value)
        if kind in _SYNC_SESSIONS and not awaited or kind in _ASYNC_SESSIONS and awaited:
            return expr
        return None

    def _used_as_row(self, node: cst.Call, entity_name: str | None) -> bool:
        """The result is used right here as rows: indexed, unpacked, read with the Row API."""
        stack = self.ctx.stack
        parent = stack[-2] if len(stack) >= 2 else None
        if isinstance(parent, cst.Subscript) and parent.value is node:
            return True
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return _row_attribute(parent.attr.value, entity_name)
        if isinstance(parent, cst.Assign) and any(isinstance(t.target, (cst.Tuple, cst.List)) for t in parent.targets):
            return True
        if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is node:
            if isinstance(parent.target, (cst.Tuple, cst.List)):
                return True
            if isinstance(parent, cst.CompFor) and isinstance(parent.target, cst.Name) and len(stack) >= 3:
                comp = stack[-3]
                if isinstance(comp, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
                    return _reads_row(comp.elt, parent.target.value, entity_name)
        return False

    def visit_For(self, node: cst.For) -> None:
        self._loop_over(node.target, node.iter)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._loop_over(node.target, node.iter)
        comp = self.ctx.parent
        if (
            isinstance(comp, (cst.ListComp, cst.SetComp, cst.GeneratorExp))
            and isinstance(node.iter, cst.Name)
            and isinstance(node.target, cst.Name)
        ):
            for candidate in self._tracked(self._results, node.iter.value):
                if _reads_row(comp.elt, node.target.value, candidate.entity_name):
                    candidate.cancelled = True

    def _loop_over(self, target: cst.BaseAssignTargetExpression, iterable: cst.BaseExpression) -> None:
        if not isinstance(iterable, cst.Name):
            return
        for candidate in self._tracked(self._results, iterable.value):
            if isinstance(target, (cst.Tuple, cst.List)):
                candidate.cancelled = True
            elif isinstance(target, cst.Name) and not candidate.single_row:
                self._track(self._rows, target.value, candidate)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        value = node.value
        if isinstance(value, cst.Name):
            for candidate in self._tracked(self._results, value.value):
                if candidate.single_row:
                    candidate.cancelled = True
            for candidate in self._tracked(self._rows, value.value):
                candidate.cancelled = True
        elif isinstance(value, cst.Subscript) and isinstance(value.value, cst.Name):
            for candidate in self._tracked(self._results, value.value.value):
                candidate.cancelled = True

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if not isinstance(node.value, cst.Name):
            return
        name = node.value.value
        rows = [c for c in self._tracked(self._results, name) if c.single_row] + self._tracked(self._rows, name)
        for candidate in rows:
            if _row_attribute(node.attr.value, candidate.entity_name):
                candidate.cancelled = True

    def finish(self) -> None:
        for candidate in self._candidates:
            if not candidate.cancelled:
                self.ctx.report(
                    candidate.call,
                    "`execute()` of a single-entity `select()` returns rows: insert `.scalars()`",
                    candidate.fix,
                )


# Attributes that only a `Row` has.
_ROW_API = frozenset({"_mapping", "_asdict", "_fields", "_t", "_tuple", "t", "tuple"})


def _row_attribute(attr: str, entity_name: str | None) -> bool:
    return attr == entity_name or attr in _ROW_API


def _reads_row(element: cst.BaseExpression, target: str, entity_name: str | None) -> bool:
    """``row[0]...`` or ``row.User...`` (``row`` being ``target``) at the start of ``element``."""
    current: cst.BaseExpression = element
    while True:
        inner = current.func if isinstance(current, cst.Call) else current.value if isinstance(current, (cst.Attribute, cst.Subscript)) else None
        if inner is None:
            return False
        if isinstance(inner, cst.Name) and inner.value == target:
            if isinstance(current, cst.Subscript):
                return True
            return isinstance(current, cst.Attribute) and _row_attribute(current.attr.value, entity_name)
        current = inner


class UnboundedSelectInRoute(Rule):
    """
    ## What it does
    Flags a route handler returning `.scalars().all()` (or SQLModel's
    `session.exec(...).all()`) of a `select()` that has no `.limit()` (nor
    `.slice()`/`.fetch()`).

    ## Why is this bad?
    An endpoint that returns every row of a table grows with the table: responses get
    slower and larger until they time out. Paginate with `limit`/`offset` (or keyset
    pagination) from the start.

    ## Example
    ```python
    @router.get("/users")
    async def list_users(session: SessionDep):
        return (await session.scalars(select(User))).all()
    ```

    ## Use instead
    ```python
    @router.get("/users")
    async def list_users(session: SessionDep, limit: int = 50, offset: int = 0):
        return (await session.scalars(select(User).offset(offset).limit(limit))).all()
    ```

    ## Fix safety
    No fix. Opt-in: selects of small lookup tables are flagged too. A `limit` added
    anywhere in the statement's chain (also through `stmt = stmt.limit(...)`) counts.
    """

    code = "FDB308"
    name = "unbounded-select-in-route"
    summary = "Route returns every row of an unbounded `select()`"
    opt_in = True
    triggers = ("scalars", "exec")
    valid = [
        Valid(
            "from fastapi import APIRouter\n"
            "from sqlalchemy import select\n"
            "from app.db import SessionDep\n"
            "router = APIRouter()\n"
            "@router.get('/users')\n"
            "async def list_users(session: SessionDep, limit: int = 50):\n"
            "    return (await session.scalars(select(User).limit(limit))).all()\n",
            files={
                "app/db.py": "from typing import Annotated\n"
                "from fastapi import Depends\n"
                "from sqlalchemy.ext.asyncio import AsyncSession\n"
                "async def get_session(): ...\n"
                "SessionDep = Annotated[AsyncSession, Depends(get_session)]\n"
            },
        ),
        Valid(
            "from fastapi import APIRouter\n"
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "router = APIRouter()\n"
            "@router.get('/users')\n"
            "async def list_users(session: AsyncSession, limit: int = 50):\n"
            "    stmt = select(User).order_by(User.id)\n"
            "    stmt = stmt.limit(limit)\n"
            "    result = await session.execute(stmt)\n"
            "    return result.scalars().all()\n"
        ),
        Valid(
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def all_users(session: AsyncSession):\n"
            "    return (await session.scalars(select(User))).all()\n"
        ),
    ]
    invalid = [
        Invalid(
            "from fastapi import APIRouter\n"
            "from sqlalchemy import select\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "router = APIRouter()\n"
            "@router.get('/users')\n"
            "async def list_users(session: AsyncSession):\n"
            "    return (await session.scalars(select(User).order_by(User.name))).all()\n",
            line=7,
        ),
        # Enum/lookup tables are still flagged (the rule is opt-in).
        Invalid(
            "from fastapi import FastAPI\n"
            "from sqlalchemy import select\n"
            "from sqlalchemy.orm import Session\n"
            "app = FastAPI()\n"
            "@app.get('/countries')\n"
            "def countries(db: Session):\n"
            "    result = db.execute(select(Country))\n"
            "    countries = result.scalars().all()\n"
            "    return countries\n",
            line=9,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        calls = shape.calls
        return (
            "all" in calls
            and not calls.isdisjoint(_UNBOUNDED_READS)
            and not calls.isdisjoint(_SELECT_CALLS)
            and not calls.isdisjoint(ROUTE_METHODS)
            and receiver_may_be(shape, project, SESSION_SOURCES, _SESSION_ROW_CALLS)
        )

    def visit_Return(self, node: cst.Return) -> None:
        ctx = self.ctx
        function = ctx.function
        if function is None or not function.is_route or node.value is None:
            return
        statement = self._unbounded(node.value, 0)
        if statement is not None:
            ctx.report(node, "Route returns every row of a `select()` without `.limit()`: paginate")

    def _unbounded(self, expr: cst.BaseExpression, depth: int) -> Statement | None:
        ctx = self.ctx
        if depth > 4:
            return None
        if isinstance(expr, cst.Name):
            values = ctx.assigned(expr.value)
            if values is None or len(values) != 1 or values[0] is None:
                return None
            return self._unbounded(values[0], depth + 1)
        if not (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "all"):
            return None
        receiver = strip_await(expr.func.value)
        while isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute) and receiver.func.attr.value == "unique":
            receiver = strip_await(receiver.func.value)
        if not (isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute)):
            return None
        method = receiver.func.attr.value
        owner = receiver.func.value
        execute: cst.Call | None = None
        if method in ("scalars", "exec") and ctx.kind(owner) in QUERY_SESSIONS:
            execute = receiver
        elif method == "scalars" and not receiver.args:
            found = _session_call(ctx, owner)
            if found is not None and isinstance(found.func, cst.Attribute) and found.func.attr.value == "execute":
                execute = found
        if execute is None:
            return None
        argument = _statement_arg(execute)
        statement = statement_of(ctx, argument, SELECT_FUNCTIONS) if argument is not None else None
        if statement is None or statement.has(*("limit", "slice", "fetch")):
            return None
        return statement


class SelectFilterAlias(Rule):
    """
    ## What it does
    Flags `.filter(...)` on a 2.0 `select()` chain.

    ## Why is this bad?
    `Select.filter()` is only a synonym of `.where()` kept for code ported from
    `Query`; 2.0-style code reads more uniformly with `.where()`, the name Core and the
    documentation use.

    ## Example
    ```python
    stmt = select(User).filter(User.active == True)
    ```

    ## Use instead
    ```python
    stmt = select(User).where(User.active == True)
    ```

    ## Fix safety
    Safe: `filter()` and `where()` are the same method. Opt-in. `Query.filter()` on
    legacy query objects is left to FDB301.
    """

    code = "FDB309"
    name = "select-filter-alias"
    summary = "`.filter()` on a `select()`: use `.where()`"
    fix = FixAvailability.SAFE
    opt_in = True
    triggers = ("filter",)
    valid = [
        Valid("from sqlalchemy import select\nstmt = select(User).where(User.active == True)\n"),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def active(db: Session):\n"
            "    return db.query(User).filter(User.active == True).all()\n"
        ),
        Valid("def evens(items):\n    return filter(lambda x: x % 2 == 0, items)\n"),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import select\nstmt = select(User).filter(User.active == True).filter(User.age > 18)\n",
            fixed="from sqlalchemy import select\nstmt = select(User).where(User.active == True).where(User.age > 18)\n",
            count=2,
        ),
        Invalid(
            "from sqlalchemy import select\n"
            "def active(name):\n"
            "    stmt = select(User)\n"
            "    if name:\n"
            "        stmt = stmt.filter(User.name == name)\n"
            "    return stmt\n",
            fixed="from sqlalchemy import select\n"
            "def active(name):\n"
            "    stmt = select(User)\n"
            "    if name:\n"
            "        stmt = stmt.where(User.name == name)\n"
            "    return stmt\n",
            line=5,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return "filter" in shape.calls and not shape.calls.isdisjoint(_SELECT_CALLS)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "filter":
            return
        if statement_of(ctx, func.value, SELECT_FUNCTIONS) is None:
            return
        fix = ctx.fix("Use `.where()`").replace(func.attr, cst.Name("where"))
        ctx.report(func.attr, "`.filter()` on a `select()`: use `.where()`", fix)


class UpdateOrDeleteWithoutWhere(Rule):
    """
    ## What it does
    Flags an `update(M).values(...)` or `delete(M)` statement executed (or passed to
    `execute()`) with no `.where()`/`.filter()`/`.filter_by()` anywhere in its chain,
    and a legacy `session.query(M).update(...)`/`.delete()` with no filter.

    ## Why is this bad?
    Without a criterion the statement rewrites or deletes every row of the table:
    usually a forgotten `where`, and an expensive one to discover in production.

    ## Example
    ```python
    await session.execute(update(User).values(active=False))
    ```

    ## Use instead
    ```python
    await session.execute(update(User).where(User.id == user_id).values(active=False))
    ```

    ## Fix safety
    No fix. Not flagged: statements whose `where` is added by a later statement
    (`stmt = stmt.where(...)` before execution), ORM bulk updates by primary key
    (`execute(update(M), [{"id": 1, ...}, ...])`), Alembic's `op.execute()` (data
    migrations update whole tables on purpose), and deletes in test files (tables
    cleared on purpose).
    """

    code = "FDB310"
    name = "update-or-delete-without-where"
    summary = "`UPDATE`/`DELETE` without a `WHERE` clause"
    triggers = ("update", "delete")
    valid = [
        Valid(
            "from sqlalchemy import update\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def deactivate(session: AsyncSession, user_id: int):\n"
            "    await session.execute(update(User).where(User.id == user_id).values(active=False))\n"
        ),
        # The where is added in a later statement, before execution.
        Valid(
            "from sqlalchemy import delete\n"
            "from sqlalchemy.orm import Session\n"
            "def purge(db: Session, before):\n"
            "    stmt = delete(Event)\n"
            "    stmt = stmt.where(Event.created_at < before)\n"
            "    db.execute(stmt)\n"
        ),
        # Tables cleared on purpose in tests.
        Valid(
            "from sqlalchemy import delete\n"
            "def test_empty(session):\n"
            "    session.execute(delete(User))\n",
            path="tests/test_users.py",
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def clear(db: Session):\n"
            "    db.query(User).delete()\n",
            path="tests/conftest.py",
        ),
        Valid(
            "from sqlalchemy import update\n"
            "from sqlalchemy.orm import Session\n"
            "def rename(db: Session, rows):\n"
            "    db.execute(update(User), [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}])\n"
        ),
        Valid(
            "from sqlalchemy.orm import Session\n"
            "def close(db: Session, ids):\n"
            "    db.query(Ticket).filter(Ticket.id.in_(ids)).update({'open': False})\n"
        ),
        Valid(
            "import sqlalchemy as sa\n"
            "from alembic import op\n"
            "def upgrade():\n"
            "    op.execute(sa.update(sa.table('user', sa.column('active'))).values(active=True))\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import update\n"
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def deactivate_all(session: AsyncSession):\n"
            "    await session.execute(update(User).values(active=False))\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy import delete\n"
            "from sqlalchemy.orm import Session\n"
            "def purge(db: Session):\n"
            "    stmt = delete(Event).returning(Event.id)\n"
            "    return db.execute(stmt).all()\n",
            line=5,
        ),
        Invalid(
            "from sqlalchemy.orm import Session\n"
            "def reset(db: Session):\n"
            "    db.query(Item).update({'done': False})\n"
            "    db.query(Item).order_by(Item.id).delete()\n",
            count=2,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # Any receiver's `execute()` of an `update`/`delete` statement (or of a name
        # assigned one); `.update()`/`.delete()` of a session's `query()` chain without a
        # filter after its `query()`, or of a name assigned a `query()` chain.
        if _chains_may_call(shape, shape.argument_chains, EXECUTE_METHODS, _WRITE_CALLS):
            return True
        unfiltered = any(names.isdisjoint(WHERE_METHODS) for _, names in shape.query_writes)
        if not unfiltered and not _chains_may_call(
            shape, shape.receiver_chains, _WRITE_CALLS, _QUERY_METHOD, direct=False
        ):
            return False
        return receiver_may_be(shape, project, SESSION_SOURCES, _QUERY_METHOD)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        if type(func) is not cst.Attribute:
            return
        method = func.attr.value
        if method in ("update", "delete"):
            statement = statement_of(ctx, func.value, (QUERY,))
            if statement is None or statement.has(*WHERE_METHODS):
                return
            if method == "delete" and ctx.is_test_file:
                return
            ctx.report(node, f"`Query.{method}()` without a filter affects every row")
            return
        if method not in EXECUTE_METHODS:
            return
        root = split_chain(func.value).root
        owner = ctx.qualname(root) if isinstance(root, (cst.Name, cst.Attribute)) else None
        if owner is not None and owner.startswith("alembic"):
            return
        argument = _statement_arg(node)
        if argument is None:
            return
        statement = statement_of(ctx, argument, UPDATE_FUNCTIONS | DELETE_FUNCTIONS) or self._table_statement(argument)
        if statement is None or statement.has(*WHERE_METHODS):
            return
        expected_args = 0 if isinstance(statement.call.func, cst.Attribute) and statement.function in ("update", "delete") else 1
        if positional_args(statement.call) is None or len(statement.call.args) != expected_args:
            return  # legacy whereclause argument, or something unusual
        if statement.is_update or statement.function == "update":
            if not statement.has("values") and len(node.args) > 1:
                return  # ORM bulk UPDATE by primary key
            what = "UPDATE"
        else:
            if ctx.is_test_file:
                return
            what = "DELETE"
        ctx.report(node, f"`{what}` without `.where()` affects every row of the table")

    def _table_statement(self, expr: cst.BaseExpression) -> Statement | None:
        """``table.update()...`` / ``Model.__table__.delete()...`` (Core's method forms)."""
        chain = split_chain(expr)
        for index, link in enumerate(chain.links):
            if link.call is None:
                continue
            if link.name not in ("update", "delete") or not self._is_table(link.receiver):
                return None
            rest = chain.links[index + 1 :]
            if any(step.call is None for step in rest):
                return None
            return Statement(link.name, link.call, tuple(rest))
        return None

    def _is_table(self, expr: cst.BaseExpression) -> bool:
        ctx = self.ctx
        if isinstance(expr, cst.Attribute) and expr.attr.value == "__table__":
            return True
        if not isinstance(expr, cst.Name):
            return False
        values = ctx.assigned(expr.value)
        if values is not None:
            return len(values) == 1 and isinstance(values[0], cst.Call) and ctx.callee(values[0]) == "sqlalchemy.Table"
        qual = ctx.qualname(expr)
        value = ctx.project.value(qual) if qual is not None else None
        return isinstance(value, CallValue) and value.callee == "sqlalchemy.Table"
