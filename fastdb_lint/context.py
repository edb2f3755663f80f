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
from typing import TYPE_CHECKING, Callable, Iterator

import libcst as cst

from fastdb_lint.analysis.fastapi import is_route_handler
from fastdb_lint.analysis.imports import ImportTable, dotted_cst
from fastdb_lint.analysis.index import FileFacts, ProjectIndex
from fastdb_lint.analysis.loading import InstanceOrigins
from fastdb_lint.analysis.sessions import SessionTypes, product_of
from fastdb_lint.analysis.sqlalchemy_api import DbKind
from fastdb_lint.analysis.strings import LocalValues
from fastdb_lint.analysis.typeexpr import type_from_cst
from fastdb_lint.fixes import FixBuilder, PendingFix
from fastdb_lint.source import SourceText
from fastdb_lint.walk import TRIVIA_TYPES, Walker

if TYPE_CHECKING:
    from fastdb_lint.rules.base import Rule

_CONNECT_METHODS = {"connect", "begin"}
# Node types whose entry or exit updates the context's own scopes and bindings.
_SCOPE_ENTER_TYPES = frozenset({cst.FunctionDef, cst.ClassDef, cst.Import, cst.ImportFrom, cst.For, cst.CompFor, cst.With})
_SCOPE_LEAVE_TYPES = frozenset({cst.FunctionDef, cst.ClassDef, cst.Assign, cst.AnnAssign, cst.NamedExpr, cst.AugAssign})


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
        self.classes: list[str] = []
        self.pending: list[PendingFinding] = []
        self.current_rule: Rule | None = None
        # Origins of ORM instances (what was loaded through an AsyncSession, and how).
        self.loading = InstanceOrigins(self)
        # Assignments to plain names per scope (module, functions), in source order.
        self.values = LocalValues(self)

    # -- names ---------------------------------------------------------------

    def qualname(self, expr: cst.CSTNode | None) -> str | None:
        """Canonical qualified name of a Name/Attribute chain (None for locals)."""
        dotted = dotted_cst(expr)
        if dotted is None:
            return None
        head = dotted.split(".", 1)[0]
        if any(head in scope.bindings or head in scope.params for scope in self.functions):
            return None
        return self.imports.resolve(dotted)

    def callee(self, call: cst.Call) -> str | None:
        return self.qualname(call.func)

    # -- scopes ----------------------------------------------------------------

    @property
    def function(self) -> FunctionScope | None:
        return self.functions[-1] if self.functions else None

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
        if expr is None:
            return None
        if isinstance(expr, cst.Await):
            return None
        if isinstance(expr, cst.Name):
            for scope in reversed(self.functions):
                if expr.value in scope.bindings:
                    return scope.bindings[expr.value]
                if expr.value in scope.params:
                    return None
            qual = self.imports.resolve(expr.value)
            return self.sessions.kind_of_value(qual) if qual else None
        if isinstance(expr, cst.Attribute):
            if isinstance(expr.value, cst.Name) and expr.value.value in ("self", "cls"):
                if self.classes:
                    class_qual = f"{self.module_name}.{self.classes[-1]}" if self.module_name else self.classes[-1]
                    return self.sessions.self_attr_kind(class_qual, expr.attr.value)
                return None
            qual = self.qualname(expr)
            return self.sessions.kind_of_value(qual) if qual else None
        if isinstance(expr, cst.Call):
            func = expr.func
            if isinstance(func, cst.Attribute):
                owner = self.kind(func.value)
                method = func.attr.value
                if owner is not None:
                    if owner.is_factory and method == "begin":
                        return product_of(owner)
                    if owner in (DbKind.SYNC_ENGINE, DbKind.ASYNC_ENGINE) and method in _CONNECT_METHODS:
                        return DbKind.ASYNC_CONNECTION if owner is DbKind.ASYNC_ENGINE else DbKind.SYNC_CONNECTION
                    return None
            owner = self.kind(func) if not isinstance(func, cst.Call) else None
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
                elif isinstance(arg.value, (cst.SimpleString, cst.Name, cst.Integer)):
                    out[arg.keyword.value] = "?"
        return out

    def is_session(self, expr: cst.BaseExpression | None) -> bool:
        kind = self.kind(expr)
        return kind is not None and kind.is_session

    def _bind(self, name: str, kind: DbKind | None) -> None:
        if self.functions:
            self.functions[-1].bindings[name] = kind

    # -- reporting -------------------------------------------------------------

    def report(self, node: cst.CSTNode, message: str | None = None, fix: PendingFix | None = None) -> None:
        rule = self.current_rule
        assert rule is not None, "report() is only valid while a rule handles a node"
        self.pending.append(PendingFinding(rule, node, message or rule.summary, fix))

    def fix(self, message: str, *, unsafe: bool = False) -> FixBuilder:
        return FixBuilder(self, message, unsafe=unsafe)

    # -- traversal hooks -------------------------------------------------------

    def enter(self, node: cst.CSTNode) -> None:
        kind = type(node)
        if kind in _SCOPE_ENTER_TYPES:
            if kind is cst.FunctionDef:
                self._enter_function(node)  # type: ignore[arg-type]
            elif kind is cst.ClassDef:
                self.classes.append(node.name.value)  # type: ignore[attr-defined]
            elif kind is cst.Import or kind is cst.ImportFrom:
                if self._imports_from_traversal:
                    self.imports.add_cst(node)  # type: ignore[arg-type]
            elif kind is cst.For or kind is cst.CompFor:
                target = node.target  # type: ignore[attr-defined]
                if type(target) is cst.Name:
                    self._bind(target.value, None)
                self._record(target, None)
            elif kind is cst.With:
                for item in node.items:  # type: ignore[attr-defined]
                    if item.asname is not None:
                        if type(item.asname.name) is cst.Name:
                            self._bind(item.asname.name.value, self._context_kind(item.item))
                        self._record(item.asname.name, None)
        self.loading.enter(node)
        self.values.enter(node)

    def leave(self, node: cst.CSTNode) -> None:
        self.loading.leave(node)
        self.values.leave(node)
        kind = type(node)
        if kind not in _SCOPE_LEAVE_TYPES:
            return
        if kind is cst.FunctionDef:
            self.functions.pop()
        elif kind is cst.ClassDef:
            self.classes.pop()
        elif kind is cst.Assign:
            for target in node.targets:  # type: ignore[attr-defined]
                self._record(target.target, node.value)  # type: ignore[attr-defined]
            if len(node.targets) == 1 and type(node.targets[0].target) is cst.Name:  # type: ignore[attr-defined]
                self._bind(node.targets[0].target.value, self.kind(node.value))  # type: ignore[attr-defined]
        elif kind is cst.AnnAssign:
            if node.value is not None:  # type: ignore[attr-defined]
                self._record(node.target, node.value)  # type: ignore[attr-defined]
            if type(node.target) is cst.Name:  # type: ignore[attr-defined]
                annotated = self.sessions.kind_of_type(type_from_cst(node.annotation, self.imports))  # type: ignore[attr-defined]
                self._bind(node.target.value, annotated if annotated is not None else self.kind(node.value))  # type: ignore[attr-defined]
        elif kind is cst.NamedExpr:
            self._record(node.target, node.value)  # type: ignore[attr-defined]
        elif kind is cst.AugAssign:
            self._record(node.target, None)  # type: ignore[attr-defined]

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
        if isinstance(target, cst.Name):
            assignments.setdefault(target.value, []).append(value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._record(element.value, None)
        elif isinstance(target, cst.StarredElement):
            self._record(target.value, None)

    def _context_kind(self, expr: cst.BaseExpression) -> DbKind | None:
        kind = self.kind(expr)
        if kind is not None:
            return kind if not kind.is_factory else None
        if isinstance(expr, cst.Call):
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
        for param in scope.params.values():
            scope.bindings[param.name.value] = self.param_kind(param)

    def stack_parent_is_class(self, node: cst.FunctionDef) -> bool:
        # stack[-1] is the function itself; its parents are IndentedBlock then ClassDef.
        return len(self.stack) >= 3 and isinstance(self.stack[-3], cst.ClassDef)

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


Handler = Callable[[cst.CSTNode], None]


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

    def on_visit(self, node: cst.CSTNode) -> None:
        ctx = self.ctx
        ctx.stack.append(node)
        ctx.enter(node)
        handlers = self.visit_handlers.get(type(node))
        if handlers:
            self._dispatch(handlers, node)

    def run(self) -> None:
        include = frozenset(self.visit_handlers) | frozenset(self.leave_handlers)
        _walker(include & TRIVIA_TYPES).walk(self.ctx.module, self.on_visit, self.on_leave)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        handlers = self.leave_handlers.get(type(original_node))
        if handlers:
            self._dispatch(handlers, original_node)
        self.ctx.leave(original_node)
        self.ctx.stack.pop()


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
