"""Per-file lint context and the single traversal that drives every rule.

The :class:`Traversal` walks a LibCST module once. Before a node is handed to the rules
that registered for its type, the context updates the shared analyses it owns: the
ancestor stack, the enclosing function scopes (async-ness, route handler, dependency),
import bindings, and the function-local session bindings. Rules read these through
the :class:`FileContext`; they never walk the tree themselves.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Iterator

import libcst as cst

from fastdb_lint.analysis.alembic import AlembicFile, classify
from fastdb_lint.analysis.fastapi import is_route_handler
from fastdb_lint.analysis.imports import ImportTable
from fastdb_lint.analysis.index import FileFacts, ProjectIndex
from fastdb_lint.analysis.loading import InstanceOrigins
from fastdb_lint.analysis.sessions import SessionTypes, product_of
from fastdb_lint.analysis.sqlalchemy_api import DbKind
from fastdb_lint.analysis.strings import LocalValues
from fastdb_lint.analysis.syntax import dotted_cst, type_from_cst
from fastdb_lint.fixes import FixBuilder, PendingFix
from fastdb_lint.source import SourceText
from fastdb_lint.walk import TRIVIA_TYPES, Walker

if TYPE_CHECKING:
    from fastdb_lint.rules.base import Rule

_CONNECT_METHODS = {"connect", "begin"}
_KEYWORD_LITERALS = frozenset({cst.SimpleString, cst.Name, cst.Integer})

Handler = Callable[[cst.CSTNode], None]


@dataclass
class FunctionScope:
    node: cst.FunctionDef
    name: str
    qualname: str
    is_async: bool
    class_name: str | None
    is_route: bool = False
    is_dependency: bool = False
    bindings: dict[str, DbKind | None] = field(default_factory=dict)
    params: dict[str, cst.Param] = field(default_factory=dict)
    # Values assigned to local names so far, in source order; None stands for a binding
    # whose value is not an expression of its own (unpacking, loop or with target,
    # augmented assignment).
    assignments: dict[str, list[cst.BaseExpression | None]] = field(default_factory=dict)


@dataclass
class PendingFinding:
    rule: Rule
    node: cst.CSTNode
    message: str
    fix: PendingFix | None


class FileContext:
    """What rules know about the file being linted."""

    def __init__(
        self,
        *,
        path: str,
        relpath: str,
        source: SourceText,
        module: cst.Module,
        project: ProjectIndex,
        sessions: SessionTypes,
        facts: FileFacts | None,
        is_test_file: bool,
    ) -> None:
        self.path = path
        self.relpath = relpath
        self.source = source
        self.module = module
        self.project = project
        self.sessions = sessions
        self.facts = facts
        self.is_test_file = is_test_file
        module_name = facts.module if facts is not None else ""
        if facts is not None and facts.parse_ok:
            self.imports = facts.imports
            self._imports_from_traversal = False
        else:
            from fastdb_lint.analysis.index import module_name_for

            module_name, is_package = module_name_for(relpath)
            self.imports = ImportTable(module_name, is_package)
            for stmt in module.body:
                for name in _defined_names_cst(stmt):
                    self.imports.define(name)
            self._imports_from_traversal = True
        self.module_name = module_name
        self.stack: list[cst.CSTNode] = []
        self.functions: list[FunctionScope] = []
        # The innermost enclosing function (``functions[-1]``), None at module level.
        self.function: FunctionScope | None = None
        self.classes: list[str] = []
        self.pending: list[PendingFinding] = []
        self.current_rule: Rule | None = None
        # Origins of ORM instances (what was loaded through an AsyncSession, and how).
        self.loading = InstanceOrigins(self)
        # Assignments to plain names per scope (module, functions), in source order.
        self.values = LocalValues(self)
        # How many of the enclosing function scopes bind each name (parameters included).
        self._local_names: dict[str, int] = {}
        # Dotted names of the Attribute chains asked about, by node id (the node is kept
        # alongside so that its id cannot be reused).
        self._dotted: dict[int, tuple[cst.CSTNode, str | None]] = {}
        self._hooks: tuple[dict[type, tuple[Handler, ...]], dict[type, tuple[Handler, ...]]] | None = None

    @cached_property
    def from_imports(self) -> dict[str, cst.ImportFrom]:
        """The first module-level ``from m import a, b`` (absolute, not ``*``) of each
        module ``m``, by its dotted name."""
        found: dict[str, cst.ImportFrom] = {}
        for stmt in self.module.body:
            if type(stmt) is not cst.SimpleStatementLine:
                continue
            for small in stmt.body:
                if (
                    type(small) is cst.ImportFrom
                    and not small.relative
                    and small.module is not None
                    and not isinstance(small.names, cst.ImportStar)
                ):
                    module = dotted_cst(small.module)
                    if module is not None:
                        found.setdefault(module, small)
        return found

    @cached_property
    def alembic(self) -> AlembicFile:
        """What the file is to Alembic (a migration script, ``env.py``, neither)."""
        return classify(self.relpath, self.module)

    # -- names ---------------------------------------------------------------

    def qualname(self, expr: cst.CSTNode | None) -> str | None:
        """Canonical qualified name of a Name/Attribute chain (None for locals)."""
        if type(expr) is cst.Name:
            dotted: str | None = expr.value
            head = expr.value
        elif type(expr) is cst.Attribute:
            cached = self._dotted.get(id(expr))
            if cached is None:
                dotted = dotted_cst(expr)
                self._dotted[id(expr)] = (expr, dotted)
            else:
                dotted = cached[1]
            if dotted is None:
                return None
            head = dotted.partition(".")[0]
        else:
            return None
        if head in self._local_names:
            return None
        return self.imports.resolve(dotted)

    def callee(self, call: cst.Call) -> str | None:
        return self.qualname(call.func)

    # -- scopes ----------------------------------------------------------------

    @property
    def in_async_function(self) -> bool:
        return bool(self.functions) and self.functions[-1].is_async

    @property
    def parent(self) -> cst.CSTNode | None:
        """Parent of the node currently visited."""
        return self.stack[-2] if len(self.stack) >= 2 else None

    def ancestors(self) -> Iterator[cst.CSTNode]:
        """Ancestors of the current node, innermost first (the node itself excluded)."""
        return reversed(self.stack[:-1])

    def at_module_level(self) -> bool:
        return not self.functions

    # -- session inference ----------------------------------------------------

    def kind(self, expr: cst.BaseExpression | None) -> DbKind | None:
        """What database object ``expr`` evaluates to, or None when unknown."""
        if type(expr) is cst.Name:
            name = expr.value
            if name in self._local_names:
                for scope in reversed(self.functions):
                    if name in scope.bindings:
                        return scope.bindings[name]
                    if name in scope.params:
                        return None
            qual = self.imports.resolve(name)
            return self.sessions.kind_of_value(qual) if qual else None
        if type(expr) is cst.Attribute:
            if type(expr.value) is cst.Name and expr.value.value in ("self", "cls"):
                if self.classes:
                    class_qual = f"{self.module_name}.{self.classes[-1]}" if self.module_name else self.classes[-1]
                    return self.sessions.self_attr_kind(class_qual, expr.attr.value)
                return None
            qual = self.qualname(expr)
            return self.sessions.kind_of_value(qual) if qual else None
        if type(expr) is cst.Call:
            func = expr.func
            if type(func) is cst.Attribute:
                owner = self.kind(func.value)
                method = func.attr.value
                if owner is not None:
                    if owner.is_factory and method == "begin":
                        return product_of(owner)
                    if owner in (DbKind.SYNC_ENGINE, DbKind.ASYNC_ENGINE) and method in _CONNECT_METHODS:
                        return DbKind.ASYNC_CONNECTION if owner is DbKind.ASYNC_ENGINE else DbKind.SYNC_CONNECTION
                    return None
            owner = self.kind(func) if type(func) is not cst.Call else None
            produced = product_of(owner)
            if produced is not None:
                return produced
            callee = self.qualname(func)
            return self.sessions.kind_of_call(callee, self.keyword_qualnames(expr)) if callee else None
        return None

    def keyword_qualnames(self, call: cst.Call) -> dict[str, str]:
        out: dict[str, str] = {}
        for arg in call.args:
            if arg.keyword is not None:
                qual = self.qualname(arg.value)
                if qual is not None:
                    out[arg.keyword.value] = qual
                elif type(arg.value) in _KEYWORD_LITERALS:
                    out[arg.keyword.value] = "?"
        return out

    def is_session(self, expr: cst.BaseExpression | None) -> bool:
        kind = self.kind(expr)
        return kind is not None and kind.is_session

    def _bind(self, name: str, kind: DbKind | None) -> None:
        if self.functions:
            scope = self.functions[-1]
            if name not in scope.bindings and name not in scope.params:
                self._local_names[name] = self._local_names.get(name, 0) + 1
            scope.bindings[name] = kind

    # -- reporting -------------------------------------------------------------

    def report(self, node: cst.CSTNode, message: str | None = None, fix: PendingFix | None = None) -> None:
        rule = self.current_rule
        assert rule is not None, "report() is only valid while a rule handles a node"
        self.pending.append(PendingFinding(rule, node, message or rule.summary, fix))

    def fix(self, message: str, *, unsafe: bool = False) -> FixBuilder:
        return FixBuilder(self, message, unsafe=unsafe)

    # -- traversal hooks -------------------------------------------------------

    def hooks(self) -> tuple[dict[type, tuple[Handler, ...]], dict[type, tuple[Handler, ...]]]:
        """What entering and leaving a node of each type updates, in order: the
        context's scopes, then the loading analysis, then the local values on entry;
        the reverse on exit."""
        if self._hooks is None:
            enter: dict[type, list[Handler]] = {}
            leave: dict[type, list[Handler]] = {}
            for table in (self._enter_hooks(), self.loading.enter_hooks(), self.values.enter_hooks()):
                for kind, hook in table.items():
                    enter.setdefault(kind, []).append(hook)
            for table in (self.loading.leave_hooks(), self.values.leave_hooks(), self._leave_hooks()):
                for kind, hook in table.items():
                    leave.setdefault(kind, []).append(hook)
            self._hooks = (
                {kind: tuple(hooks) for kind, hooks in enter.items()},
                {kind: tuple(hooks) for kind, hooks in leave.items()},
            )
        return self._hooks

    def enter(self, node: cst.CSTNode) -> None:
        for hook in self.hooks()[0].get(type(node), ()):
            hook(node)

    def leave(self, node: cst.CSTNode) -> None:
        for hook in self.hooks()[1].get(type(node), ()):
            hook(node)

    def _enter_hooks(self) -> dict[type, Handler]:
        hooks: dict[type, Handler] = {
            cst.FunctionDef: self._enter_function,  # type: ignore[dict-item]
            cst.ClassDef: self._enter_class,  # type: ignore[dict-item]
            cst.For: self._enter_loop,  # type: ignore[dict-item]
            cst.CompFor: self._enter_loop,  # type: ignore[dict-item]
            cst.With: self._enter_with,  # type: ignore[dict-item]
        }
        if self._imports_from_traversal:
            hooks[cst.Import] = hooks[cst.ImportFrom] = self._enter_import  # type: ignore[assignment]
        return hooks

    def _leave_hooks(self) -> dict[type, Handler]:
        return {
            cst.FunctionDef: self._leave_function,
            cst.ClassDef: self._leave_class,
            cst.Assign: self._leave_assign,  # type: ignore[dict-item]
            cst.AnnAssign: self._leave_ann_assign,  # type: ignore[dict-item]
            cst.NamedExpr: self._leave_named_expr,  # type: ignore[dict-item]
            cst.AugAssign: self._leave_aug_assign,  # type: ignore[dict-item]
        }

    def _enter_class(self, node: cst.ClassDef) -> None:
        self.classes.append(node.name.value)

    def _enter_import(self, node: cst.Import | cst.ImportFrom) -> None:
        self.imports.add_cst(node)

    def _enter_loop(self, node: cst.For | cst.CompFor) -> None:
        target = node.target
        if type(target) is cst.Name:
            self._bind(target.value, None)
        self._record(target, None)

    def _enter_with(self, node: cst.With) -> None:
        for item in node.items:
            if item.asname is not None:
                if type(item.asname.name) is cst.Name:
                    self._bind(item.asname.name.value, self._context_kind(item.item))
                self._record(item.asname.name, None)

    def _leave_function(self, node: cst.CSTNode) -> None:
        scope = self.functions.pop()
        self.function = self.functions[-1] if self.functions else None
        local_names = self._local_names
        for name in scope.bindings.keys() | scope.params.keys():
            count = local_names[name] - 1
            if count:
                local_names[name] = count
            else:
                del local_names[name]

    def _leave_class(self, node: cst.CSTNode) -> None:
        self.classes.pop()

    def _leave_assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._record(target.target, node.value)
        if len(node.targets) == 1:
            only = node.targets[0].target
            if type(only) is cst.Name:
                self._bind(only.value, self.kind(node.value))

    def _leave_ann_assign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._record(node.target, node.value)
        if type(node.target) is cst.Name:
            annotated = self.sessions.kind_of_type(type_from_cst(node.annotation, self.imports))
            self._bind(node.target.value, annotated if annotated is not None else self.kind(node.value))

    def _leave_named_expr(self, node: cst.NamedExpr) -> None:
        self._record(node.target, node.value)

    def _leave_aug_assign(self, node: cst.AugAssign) -> None:
        self._record(node.target, None)

    def assigned(self, name: str) -> list[cst.BaseExpression | None] | None:
        """Values assigned so far to the local ``name`` of the innermost function (None
        when it is a parameter or is not assigned there)."""
        scope = self.function
        if scope is None or name in scope.params:
            return None
        return scope.assignments.get(name)

    def _record(self, target: cst.CSTNode, value: cst.BaseExpression | None) -> None:
        if not self.functions:
            return
        assignments = self.functions[-1].assignments
        if type(target) is cst.Name:
            assignments.setdefault(target.value, []).append(value)
        elif type(target) is cst.Tuple or type(target) is cst.List:
            for element in target.elements:
                self._record(element.value, None)
        elif type(target) is cst.StarredElement:
            self._record(target.value, None)

    def _context_kind(self, expr: cst.BaseExpression) -> DbKind | None:
        kind = self.kind(expr)
        if kind is not None:
            return kind if not kind.is_factory else None
        if type(expr) is cst.Call:
            callee = self.qualname(expr.func)
            if callee is not None:
                return self.sessions.kind_of_context(callee, self.keyword_qualnames(expr))
        return None

    def _enter_function(self, node: cst.FunctionDef) -> None:
        class_name = self.classes[-1] if self.classes and self.stack_parent_is_class(node) else None
        name = node.name.value
        local_qual = f"{class_name}.{name}" if class_name else name
        qualname = f"{self.module_name}.{local_qual}" if self.module_name else local_qual
        scope = FunctionScope(
            node=node,
            name=name,
            qualname=qualname,
            is_async=node.asynchronous is not None,
            class_name=class_name,
        )
        scope.is_route = is_route_handler(node, self)
        scope.is_dependency = self.project.is_dependency(qualname)
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            scope.params[param.name.value] = param
        self.functions.append(scope)
        self.function = scope
        local_names = self._local_names
        for name in scope.params:
            local_names[name] = local_names.get(name, 0) + 1
        for param in scope.params.values():
            scope.bindings[param.name.value] = self.param_kind(param)

    def stack_parent_is_class(self, node: cst.FunctionDef) -> bool:
        # stack[-1] is the function itself; its parents are IndentedBlock then ClassDef.
        return len(self.stack) >= 3 and type(self.stack[-3]) is cst.ClassDef

    def param_kind(self, param: cst.Param) -> DbKind | None:
        if param.annotation is not None:
            kind = self.sessions.kind_of_type(type_from_cst(param.annotation, self.imports))
            if kind is not None:
                return kind
        if param.default is not None:
            return self.sessions.kind_of_depends_default(type_from_cst(param.default, self.imports))
        return None


def _defined_names_cst(stmt: cst.CSTNode) -> list[str]:
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return [stmt.name.value]
    if isinstance(stmt, cst.SimpleStatementLine):
        names = []
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                names.extend(t.target.value for t in small.targets if isinstance(t.target, cst.Name))
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                names.append(small.target.value)
        return names
    return []


_WALKERS: dict[frozenset[type], Walker] = {}


def _walker(include: frozenset[type]) -> Walker:
    walker = _WALKERS.get(include)
    if walker is None:
        walker = _WALKERS[include] = Walker(include)
    return walker


class Traversal:
    """One walk over the module; each node goes to the rules registered for its type."""

    def __init__(self, ctx: FileContext, rules: list[Rule]) -> None:
        self.ctx = ctx
        self.visit_handlers: dict[type, list[tuple[Rule, Handler]]] = {}
        self.leave_handlers: dict[type, list[tuple[Rule, Handler]]] = {}
        self.failed: list[tuple[Rule, BaseException]] = []
        for rule in rules:
            for node_type, method in type(rule).visitors():
                self.visit_handlers.setdefault(node_type, []).append((rule, getattr(rule, method)))
            for node_type, method in type(rule).leavers():
                self.leave_handlers.setdefault(node_type, []).append((rule, getattr(rule, method)))

    def _dispatch(self, handlers: list[tuple[Rule, Handler]], node: cst.CSTNode) -> None:
        ctx = self.ctx
        for rule, handler in handlers:
            if rule.disabled:
                continue
            ctx.current_rule = rule
            try:
                handler(node)
            except RecursionError:
                raise
            except Exception as exc:  # a broken rule must not take the file down
                rule.disabled = True
                self.failed.append((rule, exc))
        ctx.current_rule = None

    def run(self) -> None:
        """Walk the module in source order. For each node: push it on the context's
        stack, update the context, hand it to the visit handlers, walk its children,
        hand it to the leave handlers, update the context and pop it."""
        ctx = self.ctx
        stack = ctx.stack
        enter_hooks, leave_hooks = ctx.hooks()
        visit_handlers = self.visit_handlers
        leave_handlers = self.leave_handlers
        dispatch = self._dispatch
        include = frozenset(visit_handlers) | frozenset(leave_handlers)
        children = _walker(include & TRIVIA_TYPES).children
        node: cst.CSTNode | None = ctx.module
        pending: list[Iterator[cst.CSTNode]] = []
        while True:
            if node is not None:
                stack.append(node)
                kind = type(node)
                hooks = enter_hooks.get(kind)
                if hooks is not None:
                    for hook in hooks:
                        hook(node)
                handlers = visit_handlers.get(kind)
                if handlers is not None:
                    dispatch(handlers, node)
                pending.append(iter(children(node)))
            else:
                pending.pop()
                done = stack[-1]
                kind = type(done)
                handlers = leave_handlers.get(kind)
                if handlers is not None:
                    dispatch(handlers, done)
                hooks = leave_hooks.get(kind)
                if hooks is not None:
                    for hook in hooks:
                        hook(done)
                stack.pop()
                if not pending:
                    return
            node = next(pending[-1], None)


def run_traversal(ctx: FileContext, rules: list[Rule]) -> list[tuple[Rule, BaseException]]:
    traversal = Traversal(ctx, rules)
    limit = sys.getrecursionlimit()
    if limit < 10_000:
        sys.setrecursionlimit(10_000)
    try:
        traversal.run()
    finally:
        sys.setrecursionlimit(limit)
    for rule in rules:
        if not rule.disabled:
            ctx.current_rule = rule
            rule.finish()
    ctx.current_rule = None
    return traversal.failed
