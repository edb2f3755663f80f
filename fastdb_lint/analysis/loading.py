"""Where ORM instances come from and which of their relationships are loaded.

Fed by the lint traversal (:meth:`InstanceOrigins.enter` / :meth:`InstanceOrigins.leave`),
this analysis follows, inside each function, the names bound to

- statements: ``stmt = select(User).options(selectinload(User.posts))``;
- results of an ``AsyncSession``: ``await session.execute(stmt)``, ``.scalars()``;
- lists and instances: ``.all()``, ``.first()``, ``await session.get(User, pk)``,
  ``for user in users``;
- instances the function creates (``User(...)``) or receives (``user: User``), which are
  not loaded until ``await session.refresh(user)``.

For each instance it knows the mapped class, the relationships loaded so far (loader
options, ``refresh(obj, [names])``, ``await obj.awaitable_attrs.rel``, assignments) and
whether the loader options could be read at all. What it cannot follow it forgets:
a name rebound to anything unknown has no origin, and rules stay silent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Sequence

import libcst as cst

from fastdb_lint.analysis.index import FileFacts, Relationship
from fastdb_lint.analysis.syntax import dotted_cst, string_value, target_names
from fastdb_lint.analysis.sqlalchemy_api import (
    EAGER_LOADERS,
    LAZY_LOAD_STRATEGIES,
    LAZY_LOADER_OPTIONS,
    NEUTRAL_LOADER_OPTIONS,
    RESULT_SAME,
    RESULT_TO_INSTANCE,
    RESULT_TO_SCALARS,
    SCALARS_TO_INSTANCE,
    SCALARS_TO_LIST,
    SELECT_CHAIN_METHODS,
    SELECT_FUNCTIONS,
    DbKind,
)

if TYPE_CHECKING:
    from fastdb_lint.context import FileContext

_LOADING_SESSIONS = (DbKind.ASYNC_SESSION, DbKind.ASYNC_REGISTRY)
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)
_BLOCKS = frozenset({cst.IndentedBlock, cst.SimpleStatementSuite})
_ENTER_TYPES = frozenset({cst.Attribute, cst.For, cst.With, *_COMPREHENSIONS})
_LEAVE_TYPES = frozenset(
    {cst.FunctionDef, cst.Await, cst.Assign, cst.AnnAssign, cst.NamedExpr, cst.AugAssign, cst.Del, *_COMPREHENSIONS}
)
Hook = Callable[[cst.CSTNode], None]
_MAX_BASES = 20


class Shape(enum.Enum):
    STATEMENT = "select statement"
    ROWS = "result of rows"
    SCALARS = "scalar result"
    ASYNC_ROWS = "async result of rows"
    ASYNC_SCALARS = "async scalar result"
    LIST = "list of instances"
    INSTANCE = "instance"


@dataclass(frozen=True)
class Origin:
    shape: Shape
    # Qualified name of the mapped class.
    model: str
    # Relationships known to be loaded (or assigned) on the instance.
    eager: frozenset[str] = frozenset()
    # Relationships loaded by the originating statement's options (kept by refresh()).
    options_eager: frozenset[str] = frozenset()
    # Loader options or refresh names the analysis cannot read: assume all loaded.
    opaque: bool = False
    # True when the object came from an AsyncSession query (or was refreshed through one).
    loaded: bool = True
    # The `select(...)` call (or `session.get(...)` call) the instance was loaded by.
    source: cst.Call | None = None

    def with_shape(self, shape: Shape) -> Origin:
        return replace(self, shape=shape)


@dataclass
class _Binding:
    origin: Origin | None
    # Blocks (ids of IndentedBlock nodes) enclosing the assignment, outermost first.
    path: tuple[int, ...]


class InstanceOrigins:
    """Origins of the names of the functions being traversed."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self._scopes: list[dict[str, _Binding]] = []
        self._saved: list[list[tuple[str, _Binding | None]]] = []
        self._lazy_cache: dict[str, dict[str, Relationship]] = {}
        self._fields_cache: dict[str, frozenset[str]] = {}
        self._class_cache: dict[str, str | None] = {}
        self._packages: dict[str, list[tuple[str, FileFacts]]] = {}

    # -- queries ---------------------------------------------------------------

    def origin(self, expr: cst.BaseExpression | None) -> Origin | None:
        """Origin of the value ``expr`` evaluates to in the current function."""
        if expr is None or not self._scopes:
            return None
        if type(expr) is cst.Name:
            binding = self._scopes[-1].get(expr.value)
            return binding.origin if binding is not None else None
        if type(expr) is cst.Await:
            return self._awaited(expr.expression)
        if type(expr) is cst.Call:
            return self._call(expr)
        if type(expr) is cst.Subscript:
            base = self.origin(expr.value)
            if base is not None and base.shape is Shape.LIST and len(expr.slice) == 1:
                index = expr.slice[0].slice
                if isinstance(index, cst.Index) and _is_int(index.value):
                    return base.with_shape(Shape.INSTANCE)
            return None
        return None

    def lazy_relationships(self, model: str) -> dict[str, Relationship]:
        """Relationships of a mapped class (own and inherited) that load on access."""
        cached = self._lazy_cache.get(model)
        if cached is not None:
            return cached
        found: dict[str, Relationship] = {}
        all_relationships: dict[str, Relationship] = {}
        for cls_qual in reversed(self._class_lineage(model)):
            located = self.ctx.project.class_(cls_qual)
            if located is not None:
                all_relationships.update(located[1].relationships)
        for attr, rel in all_relationships.items():
            if rel.lazy is None or rel.lazy in LAZY_LOAD_STRATEGIES:
                found[attr] = rel
        self._lazy_cache[model] = found
        return found

    def unloaded(self, origin: Origin | None, attr: str) -> Relationship | None:
        """The relationship ``attr`` when reading it on ``origin`` would lazy-load."""
        if origin is None or origin.shape is not Shape.INSTANCE or not origin.loaded or origin.opaque:
            return None
        if attr in origin.eager:
            return None
        return self.lazy_relationships(origin.model).get(attr)

    def unloaded_relationship(self, node: cst.Attribute) -> Relationship | None:
        """The relationship read by ``node`` (``obj.rel``) when the read lazy-loads."""
        return self.unloaded(self.origin(node.value), node.attr.value)

    def class_fields(self, qualname: str) -> frozenset[str]:
        """Annotated attribute names of a project class and its project bases."""
        cached = self._fields_cache.get(qualname)
        if cached is not None:
            return cached
        names: set[str] = set()
        for cls_qual in self._class_lineage(qualname):
            located = self.ctx.project.class_(cls_qual)
            if located is not None:
                names |= set(located[1].attr_types)
        result = frozenset(names)
        self._fields_cache[qualname] = result
        return result

    def is_model(self, qualname: str | None) -> bool:
        """Whether ``qualname`` names a project class (directly or through re-exports)."""
        return self.resolve_class(qualname) is not None

    def resolve_class(self, qualname: str | None) -> str | None:
        """Qualified name of the project class ``qualname`` refers to, following
        re-exports such as ``from .user import User`` in a package ``__init__``."""
        if qualname is None:
            return None
        if qualname in self._class_cache:
            return self._class_cache[qualname]
        project = self.ctx.project
        symbol = project.symbol(qualname)
        resolved: str | None = symbol if project.class_(symbol) is not None else None
        module, _, name = symbol.rpartition(".")
        if resolved is None and module and project.find_module(module) is None:
            # A package whose __init__ is not indexed: the one module below it that
            # defines the class.
            found = [f"{m}.{name}" for m, f in self._modules_under(module) if name in f.classes]
            resolved = found[0] if len(found) == 1 else None
        self._class_cache[qualname] = resolved
        return resolved

    def _modules_under(self, package: str) -> list[tuple[str, FileFacts]]:
        """The indexed modules inside ``package``, in index order."""
        found = self._packages.get(package)
        if found is None:
            prefix = f"{package}."
            found = self._packages[package] = [(m, f) for m, f in self.ctx.project.files.items() if m.startswith(prefix)]
        return found

    # -- traversal hooks -------------------------------------------------------

    def enter_hooks(self) -> dict[type, Hook]:
        """The node types whose entry updates the analysis, with what to call."""
        hooks: dict[type, Hook] = {kind: self.enter for kind in (cst.FunctionDef, *_ENTER_TYPES)}
        hooks[cst.Attribute] = self._enter_attribute  # type: ignore[assignment]
        return hooks

    def leave_hooks(self) -> dict[type, Hook]:
        """The node types whose exit updates the analysis, with what to call."""
        return {kind: self.leave for kind in _LEAVE_TYPES}

    def enter(self, node: cst.CSTNode) -> None:
        # Dispatch on the exact node type: this runs for every node of every file.
        kind = type(node)
        if kind is cst.FunctionDef:
            self._enter_function()
            return
        if not self._scopes or kind not in _ENTER_TYPES:
            return
        if kind is cst.Attribute:
            self._awaitable_attr(node)  # type: ignore[arg-type]
        elif kind is cst.For:
            assert isinstance(node, cst.For)
            self._bind_loop_target(node.target, node.iter, node.asynchronous is not None)
        elif kind is cst.With:
            assert isinstance(node, cst.With)
            for item in node.items:
                if item.asname is not None:
                    for name in target_names(item.asname.name):
                        self._set(name, None)
        else:
            assert isinstance(node, _COMPREHENSIONS)
            saved: list[tuple[str, _Binding | None]] = []
            self._saved.append(saved)
            comp: cst.CompFor | None = node.for_in
            while comp is not None:
                for name in target_names(comp.target):
                    saved.append((name, self._scopes[-1].get(name)))
                self._bind_loop_target(comp.target, comp.iter, comp.asynchronous is not None)
                comp = comp.inner_for_in

    def leave(self, node: cst.CSTNode) -> None:
        kind = type(node)
        if not self._scopes or kind not in _LEAVE_TYPES:
            return
        if kind is cst.FunctionDef:
            self._scopes.pop()
        elif kind is cst.Await:
            assert isinstance(node, cst.Await)
            self._refresh(node.expression)
        elif kind is cst.Assign:
            assert isinstance(node, cst.Assign)
            origin = self.origin(node.value)
            for target in node.targets:
                self._assign(target.target, origin if len(node.targets) == 1 else None)
        elif kind is cst.AnnAssign:
            assert isinstance(node, cst.AnnAssign)
            if node.value is not None:
                self._assign(node.target, self.origin(node.value))
        elif kind is cst.NamedExpr:
            assert isinstance(node, cst.NamedExpr)
            self._assign(node.target, self.origin(node.value))
        elif kind is cst.AugAssign or kind is cst.Del:
            assert isinstance(node, (cst.AugAssign, cst.Del))
            for name in target_names(node.target):
                self._set(name, None)
        else:
            scope = self._scopes[-1]
            for name, previous in reversed(self._saved.pop() if self._saved else []):
                if previous is None:
                    scope.pop(name, None)
                else:
                    scope[name] = previous

    # -- binding ---------------------------------------------------------------

    def _enter_function(self) -> None:
        scope: dict[str, _Binding] = {}
        self._scopes.append(scope)
        function = self.ctx.function
        if function is None:
            return
        for name, param in function.params.items():
            if param.annotation is None:
                continue
            annotation = param.annotation.annotation
            if isinstance(annotation, (cst.Name, cst.Attribute)):
                qual = self.resolve_class(self.ctx.imports.resolve(dotted_cst(annotation) or ""))
                if qual is not None:
                    scope[name] = _Binding(Origin(Shape.INSTANCE, qual, loaded=False), ())

    def _path(self) -> tuple[int, ...]:
        path: list[int] = []
        for node in reversed(self.ctx.stack):
            node_type = type(node)
            if node_type is cst.FunctionDef:
                break
            if node_type in _BLOCKS:
                path.append(id(node))
        return tuple(reversed(path))

    def _set(self, name: str, origin: Origin | None) -> None:
        if not self._scopes:
            return
        scope = self._scopes[-1]
        path = self._path()
        previous = scope.get(name)
        if previous is not None and _siblings(previous.path, path):
            origin = _merge(previous.origin, origin)
        if origin is None and previous is None:
            return
        scope[name] = _Binding(origin, path)

    def _assign(self, target: cst.BaseExpression, origin: Origin | None) -> None:
        if isinstance(target, cst.Name):
            self._set(target.value, origin)
            return
        if isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
            self._mark_loaded(target.value.value, target.attr.value)
            return
        for name in target_names(target):
            self._set(name, None)

    def _bind_loop_target(self, target: cst.BaseAssignTargetExpression, iterable: cst.BaseExpression, is_async: bool) -> None:
        origin = self.origin(iterable)
        element: Origin | None = None
        if origin is not None:
            if is_async and origin.shape is Shape.ASYNC_SCALARS:
                element = origin.with_shape(Shape.INSTANCE)
            elif not is_async and origin.shape in (Shape.SCALARS, Shape.LIST):
                element = origin.with_shape(Shape.INSTANCE)
        if isinstance(target, cst.Name):
            self._set(target.value, element)
        else:
            for name in target_names(target):
                self._set(name, None)

    def _mark_loaded(self, name: str, attr: str) -> None:
        binding = self._scopes[-1].get(name) if self._scopes else None
        if binding is None or binding.origin is None or binding.origin.shape is not Shape.INSTANCE:
            return
        binding.origin = replace(binding.origin, eager=binding.origin.eager | {attr})

    def _enter_attribute(self, node: cst.Attribute) -> None:
        if self._scopes:
            self._awaitable_attr(node)

    def _awaitable_attr(self, node: cst.Attribute) -> None:
        # obj.awaitable_attrs.rel
        inner = node.value
        if (
            type(inner) is cst.Attribute
            and inner.attr.value == "awaitable_attrs"
            and type(inner.value) is cst.Name
        ):
            self._mark_loaded(inner.value.value, node.attr.value)

    def _refresh(self, expr: cst.BaseExpression) -> None:
        # await session.refresh(obj[, attribute_names])
        if not (
            isinstance(expr, cst.Call)
            and isinstance(expr.func, cst.Attribute)
            and expr.func.attr.value == "refresh"
            and expr.args
            and expr.args[0].keyword is None
            and isinstance(expr.args[0].value, cst.Name)
            and self.ctx.kind(expr.func.value) in _LOADING_SESSIONS
        ):
            return
        name = expr.args[0].value.value
        binding = self._scopes[-1].get(name)
        if binding is None or binding.origin is None or binding.origin.shape is not Shape.INSTANCE:
            return
        origin = binding.origin
        names_arg = next(
            (a for a in expr.args[1:] if a.keyword is None or a.keyword.value == "attribute_names"), None
        )
        if names_arg is None:
            kept = origin.options_eager if origin.loaded else frozenset()
            binding.origin = replace(origin, eager=kept, loaded=True, opaque=origin.opaque and origin.loaded)
            return
        names = _string_list(names_arg.value)
        if names is None:
            binding.origin = replace(origin, loaded=True, opaque=True)
        else:
            binding.origin = replace(origin, eager=origin.eager | names, loaded=True)

    # -- evaluation ------------------------------------------------------------

    def _awaited(self, expr: cst.BaseExpression) -> Origin | None:
        if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Attribute):
            return None
        method = expr.func.attr.value
        receiver = expr.func.value
        if method in SCALARS_TO_LIST | SCALARS_TO_INSTANCE | RESULT_TO_INSTANCE:
            # await async_result.all() / .first() (AsyncResult, AsyncScalarResult)
            base = self.origin(receiver)
            if base is not None and base.shape is Shape.ASYNC_SCALARS:
                if method in SCALARS_TO_LIST:
                    return base.with_shape(Shape.LIST)
                if method in SCALARS_TO_INSTANCE:
                    return base.with_shape(Shape.INSTANCE)
            if base is not None and base.shape is Shape.ASYNC_ROWS and method in RESULT_TO_INSTANCE:
                return base.with_shape(Shape.INSTANCE)
            if base is not None:
                return None
        if self.ctx.kind(receiver) not in _LOADING_SESSIONS:
            return None
        if method in ("get", "get_one"):
            return self._session_get(expr)
        if not expr.args or expr.args[0].keyword is not None:
            return None
        statement = self.origin(expr.args[0].value)
        if statement is None or statement.shape is not Shape.STATEMENT:
            return None
        shape = {
            "scalar": Shape.INSTANCE,
            "scalars": Shape.SCALARS,
            "exec": Shape.SCALARS,
            "execute": Shape.ROWS,
            "stream_scalars": Shape.ASYNC_SCALARS,
            "stream": Shape.ASYNC_ROWS,
        }.get(method)
        return statement.with_shape(shape) if shape is not None else None

    def _session_get(self, call: cst.Call) -> Origin | None:
        if not call.args or call.args[0].keyword is not None:
            return None
        model = self._model(call.args[0].value)
        if model is None:
            return None
        eager: frozenset[str] = frozenset()
        opaque = False
        for arg in call.args:
            if arg.star:
                opaque = True
            elif arg.keyword is not None and arg.keyword.value == "options":
                value = arg.value
                if isinstance(value, (cst.List, cst.Tuple)):
                    option_args = [
                        cst.Arg(value=e.value, star="*" if isinstance(e, cst.StarredElement) else "")
                        for e in value.elements
                    ]
                    loaded, unreadable = self._options(option_args)
                    eager |= loaded
                    opaque |= unreadable
                else:
                    opaque = True
        return Origin(Shape.INSTANCE, model, eager, eager, opaque, True, call)

    def _call(self, call: cst.Call) -> Origin | None:
        func = call.func
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            base = self.origin(func.value)
            if base is None:
                return None
            if base.shape is Shape.STATEMENT:
                if method == "options":
                    loaded, unreadable = self._options(call.args)
                    return replace(
                        base,
                        eager=base.eager | loaded,
                        options_eager=base.options_eager | loaded,
                        opaque=base.opaque or unreadable,
                    )
                return base if method in SELECT_CHAIN_METHODS else None
            if base.shape is Shape.ROWS:
                if method in RESULT_TO_SCALARS:
                    return base.with_shape(Shape.SCALARS)
                if method in RESULT_TO_INSTANCE:
                    return base.with_shape(Shape.INSTANCE)
                return base if method in RESULT_SAME else None
            if base.shape is Shape.SCALARS:
                if method in SCALARS_TO_LIST:
                    return base.with_shape(Shape.LIST)
                if method in SCALARS_TO_INSTANCE:
                    return base.with_shape(Shape.INSTANCE)
                return base if method in RESULT_SAME else None
            if base.shape is Shape.ASYNC_ROWS and method in RESULT_TO_SCALARS:
                return base.with_shape(Shape.ASYNC_SCALARS)
            if base.shape is Shape.ASYNC_SCALARS and method in RESULT_SAME:
                return base
            return None
        if isinstance(func, cst.Name) and func.value == "list" and not self._shadowed("list"):
            if len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star:
                inner = self.origin(call.args[0].value)
                if inner is not None and inner.shape in (Shape.SCALARS, Shape.LIST):
                    return inner.with_shape(Shape.LIST)
            return None
        callee = self.ctx.qualname(func)
        if callee in SELECT_FUNCTIONS:
            if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
                return None
            model = self._model(call.args[0].value)
            return Origin(Shape.STATEMENT, model, source=call) if model is not None else None
        model = self.resolve_class(callee)
        if model is not None and self.lazy_relationships(model):
            # A mapped class instantiated here: not loaded from the database.
            return Origin(Shape.INSTANCE, model, loaded=False, source=call)
        return None

    def _model(self, expr: cst.BaseExpression) -> str | None:
        if isinstance(expr, cst.Name) and expr.value == "cls":
            return self._own_class()
        if not isinstance(expr, (cst.Name, cst.Attribute)):
            return None
        return self.resolve_class(self.ctx.qualname(expr))

    def _own_class(self) -> str | None:
        """The class of a classmethod whose first parameter is ``cls``."""
        function = self.ctx.function
        if function is None or function.class_name is None or not self.ctx.classes:
            return None
        params = function.node.params.params
        if not params or params[0].name.value != "cls":
            return None
        module = self.ctx.module_name
        return self.resolve_class(f"{module}.{function.class_name}" if module else function.class_name)

    def _options(self, args: Sequence[cst.Arg]) -> tuple[frozenset[str], bool]:
        """Relationship names loaded by loader options, and whether any is unreadable."""
        loaded: set[str] = set()
        for arg in args:
            if arg.star or arg.keyword is not None:
                return frozenset(loaded), True
            root = arg.value
            while (
                isinstance(root, cst.Call)
                and isinstance(root.func, cst.Attribute)
                and isinstance(root.func.value, cst.Call)
            ):
                root = root.func.value  # joinedload(A.b).selectinload(B.c): first link
            if not isinstance(root, cst.Call):
                return frozenset(loaded), True
            callee = self.ctx.qualname(root.func)
            if callee in NEUTRAL_LOADER_OPTIONS or callee in LAZY_LOADER_OPTIONS:
                continue
            if callee not in EAGER_LOADERS:
                return frozenset(loaded), True
            if not root.args:
                return frozenset(loaded), True
            for option_arg in root.args:
                if option_arg.keyword is not None:
                    continue
                attr = _relationship_attr(option_arg.value)
                if attr is None:
                    return frozenset(loaded), True
                loaded.add(attr)
        return frozenset(loaded), False

    def _class_lineage(self, qualname: str) -> list[str]:
        """The class and its project bases, most derived first."""
        lineage: list[str] = []
        pending = [qualname]
        while pending and len(lineage) < _MAX_BASES:
            current = pending.pop(0)
            if current in lineage:
                continue
            lineage.append(current)
            located = self.ctx.project.class_(current)
            if located is not None:
                for base in located[1].bases:
                    resolved = self.resolve_class(base) if base != "?" else None
                    if resolved is not None:
                        pending.append(resolved)
        return lineage

    def _shadowed(self, name: str) -> bool:
        imports = self.ctx.imports
        return name in imports.bindings or name in imports.local_defs or any(
            name in scope.bindings for scope in self.ctx.functions
        )


def _relationship_attr(expr: cst.BaseExpression) -> str | None:
    # Model.rel, Model.rel.of_type(X), Model.rel.and_(...)
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("of_type", "and_"):
        expr = expr.func.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    return None


def _string_list(expr: cst.BaseExpression) -> frozenset[str] | None:
    if not isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
        return None
    names: set[str] = set()
    for element in expr.elements:
        value = element.value
        if isinstance(element, cst.StarredElement) or not isinstance(value, cst.SimpleString):
            return None
        evaluated = string_value(value)
        if not isinstance(evaluated, str):
            return None
        names.add(evaluated)
    return frozenset(names)


def _siblings(first: tuple[int, ...], second: tuple[int, ...]) -> bool:
    """Whether two assignments sit in different branches (neither block encloses the other)."""
    shorter = min(len(first), len(second))
    return first[:shorter] != second[:shorter]


def _merge(first: Origin | None, second: Origin | None) -> Origin | None:
    if first is None or second is None:
        return None
    if first.shape is not second.shape or first.model != second.model:
        return None
    return replace(
        second,
        eager=first.eager | second.eager,
        options_eager=first.options_eager | second.options_eager,
        opaque=first.opaque or second.opaque,
        loaded=first.loaded and second.loaded,
    )


def _is_int(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Integer):
        return True
    return isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus) and isinstance(expr.expression, cst.Integer)
