"""Route handlers and dependencies (FastAPI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.index import CallValue
from fastdb_lint.analysis.syntax import dotted_cst, string_value

if TYPE_CHECKING:
    from fastdb_lint.context import FileContext

ROUTE_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "trace", "api_route", "websocket"}
)
APP_CLASSES = frozenset({"fastapi.FastAPI", "fastapi.APIRouter"})


def is_app_or_router(expr: cst.BaseExpression, ctx: FileContext) -> bool | None:
    """True/False when known, None when the object cannot be resolved."""
    qual = ctx.qualname(expr)
    if qual is None:
        return None
    if qual in APP_CLASSES:
        return False
    value = ctx.project.value(qual)
    if isinstance(value, CallValue):
        return value.callee in APP_CLASSES
    return None if ctx.project.find_module(qual.rpartition(".")[0]) is None else False


def route_decorator(decorator: cst.Decorator, ctx: FileContext) -> bool:
    call = decorator.decorator
    if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
        return False
    if call.func.attr.value not in ROUTE_METHODS:
        return False
    known = is_app_or_router(call.func.value, ctx)
    if known is not None:
        return known
    # Unresolvable object (e.g. a file the index could not read): accept only the
    # unmistakable shape ``@<name>.get("/path", ...)``.
    if not call.args or call.args[0].keyword is not None:
        return False
    first = call.args[0].value
    if not isinstance(first, cst.SimpleString):
        return False
    path = string_value(first)
    return isinstance(path, str) and path.startswith("/") and dotted_cst(call.func.value) is not None


def is_route_handler(node: cst.FunctionDef, ctx: FileContext) -> bool:
    return any(route_decorator(d, ctx) for d in node.decorators)


CACHE_DECORATORS = frozenset({"functools.lru_cache", "functools.cache", "async_lru.alru_cache"})
_APP_TYPES = APP_CLASSES | {"starlette.applications.Starlette"}


def decorator_qualname(decorator: cst.Decorator, ctx: FileContext) -> str | None:
    """Qualified name of ``@name`` or ``@name(...)``."""
    expr = decorator.decorator
    return ctx.qualname(expr.func if isinstance(expr, cst.Call) else expr)


def is_cached_function(node: cst.FunctionDef, ctx: FileContext) -> bool:
    """Decorated with ``functools.lru_cache``/``cache`` (its body runs once per arguments)."""
    return any(decorator_qualname(d, ctx) in CACHE_DECORATORS for d in node.decorators)


def is_lifespan(node: cst.FunctionDef, qualname: str, ctx: FileContext) -> bool:
    """A lifespan handler: passed as ``lifespan=`` to an app or router anywhere in the
    project, or an ``asynccontextmanager`` whose only parameter is annotated as the app."""
    if ctx.project.is_lifespan(qualname):
        return True
    if not any(decorator_qualname(d, ctx) == "contextlib.asynccontextmanager" for d in node.decorators):
        return False
    params = [*node.params.posonly_params, *node.params.params]
    return (
        len(params) == 1
        and params[0].annotation is not None
        and ctx.qualname(params[0].annotation.annotation) in _APP_TYPES
    )
