"""Local bindings and string constructions.

:class:`LocalValues` is fed by the lint traversal (:meth:`LocalValues.enter` /
:meth:`LocalValues.leave`) and records, for the module and for each function being
traversed, every assignment to a plain name: ``x = ...``, ``x: T = ...``, ``x += ...``,
``(x := ...)``, loop targets, ``with ... as x``, ``except ... as x``, local imports.
:meth:`LocalValues.reaching` answers "what can ``x`` hold here": the last assignment
whose block encloses the current point (it always runs before it) and every later
one, so that assignments in branches are all taken into account.

On top of the bindings, :func:`construct` describes how a string expression is built
(literal text and interpolated *holes*: f-string fields, ``%`` and ``.format()``
arguments, ``+`` operands) and :func:`taint` tells whether an interpolated value is a
constant, an escaped identifier, something the analysis cannot judge, or a dynamic
value. Unknown stays unknown: callers stay silent on :attr:`Taint.UNKNOWN`.
"""

from __future__ import annotations

import ast
import enum
import keyword
import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar, Union

import libcst as cst

from fastdb_lint.analysis.index import LiteralValue
from fastdb_lint.analysis.syntax import (
    name_counts,
    string_prefix,
    string_value,
    target_names,
)

if TYPE_CHECKING:
    from fastdb_lint.context import FileContext

_BLOCKS = frozenset({cst.IndentedBlock, cst.SimpleStatementSuite, cst.Module})
_LOOPS = frozenset({cst.For, cst.While})
# Where an assignment's bindings are recorded (True) or not (False): see _recording.
_RECORDING_SCOPES = {cst.FunctionDef: True, cst.Module: True, cst.ClassDef: False, cst.Lambda: False}
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)
_MAX_DEPTH = 12
_ALL_CAPS = re.compile(r"_*[A-Z][A-Z0-9_]*")
_T = TypeVar("_T")


# -- bindings ---------------------------------------------------------------------


class BindingKind(enum.Enum):
    VALUE = "value"  # name = value (also annotated assignments and `:=`)
    AUGMENTED = "augmented"  # name += value
    ELEMENT = "element"  # for name in value
    CONTEXT = "context"  # with value as name
    UNKNOWN = "unknown"  # unpacking, except-as, import, del, other augmented operators


@dataclass(eq=False)
class Binding:
    name: str
    kind: BindingKind
    # The assigned expression (the iterable for ELEMENT, the context expression for CONTEXT).
    value: cst.BaseExpression | None
    # The statement (or expression, for `:=`) that binds the name.
    node: cst.CSTNode
    # Innermost block enclosing the binding: it runs whenever that block runs.
    block: cst.CSTNode
    # Loops (For/While) of the same scope enclosing the binding.
    loops: tuple[cst.CSTNode, ...]
    order: int
    # False for a module-level assignment read ahead but not yet executed.
    done: bool = True
    # Ids of every block enclosing the binding (within its scope).
    path: frozenset[int] = frozenset()


@dataclass(eq=False)
class Scope:
    """The module or one function."""

    node: cst.CSTNode
    records: dict[str, list[Binding]] = field(default_factory=dict)
    params: frozenset[str] = frozenset()
    globals: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Reach:
    """What a name can hold at the current point."""

    scope: Scope
    bindings: tuple[Binding, ...]
    is_param: bool = False
    # True when the first binding always runs before the current point: nothing bound
    # earlier (a parameter's argument) can reach it.
    complete: bool = False

    @property
    def unknown_param(self) -> bool:
        """The parameter's own (unknown) value may reach the current point."""
        return self.is_param and not self.complete

    @property
    def single(self) -> Binding | None:
        """The one binding reaching here when it is a plain assignment."""
        if self.complete and len(self.bindings) == 1 and self.bindings[0].kind is BindingKind.VALUE:
            return self.bindings[0]
        return None


class LocalValues:
    """Assignments to plain names in the module and the functions being traversed."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.module_scope: Scope | None = None
        self.scopes: list[Scope] = []
        self._comprehension_targets: list[set[str]] = []
        self._order = 0
        self._prescanned: dict[int, list[Binding]] = {}
        # Bindings whose value is being evaluated: in `x = x + 1`, the `x` on the right
        # is the value bound before.
        self._evaluating: list[tuple[Binding, Scope]] = []
        self._memo: dict[tuple[int, str], Any] = {}
        # Name counts of subtrees by node id (the node is kept so that its id stays its own).
        self._counts: dict[int, tuple[cst.CSTNode, dict[str, int]]] = {}

    # -- queries ---------------------------------------------------------------

    @property
    def scope(self) -> Scope | None:
        """The innermost scope (function, else module)."""
        return self.scopes[-1] if self.scopes else None

    @contextmanager
    def evaluating(self, binding: Binding) -> Iterator[None]:
        """While reading ``binding``'s value, its own name refers to earlier bindings."""
        scope = self._scope_of(binding)
        if scope is None:
            yield
            return
        self._evaluating.append((binding, scope))
        try:
            yield
        finally:
            self._evaluating.pop()

    def memo(self, binding: Binding, key: str, compute: Callable[[], _T], reentered: _T) -> _T:
        """``compute()`` evaluated as of ``binding`` (see :meth:`evaluating`), once per
        binding and key; ``reentered`` while it is being computed."""
        slot = (id(binding), key)
        if slot in self._memo:
            return self._memo[slot]
        self._memo[slot] = reentered
        with self.evaluating(binding):
            result = compute()
        self._memo[slot] = result
        return result

    def _scope_of(self, binding: Binding) -> Scope | None:
        for scope in reversed(self.scopes):
            if binding in scope.records.get(binding.name, ()):
                return scope
        return None

    def reaching(self, name: str) -> Reach | None:
        """Bindings of ``name`` that can reach the current point; None when the name is
        not bound in this file (an import, a builtin, a star import...)."""
        scopes = self.scopes
        if self._evaluating:
            # Names of the binding's own scope hold what they held at the binding.
            binding, scope = self._evaluating[-1]
            records = scope.records.get(name)
            if records or name in scope.params:
                earlier = [r for r in records or () if r.order < binding.order]
                if not earlier:
                    return Reach(scope, (), True) if name in scope.params else None
                bindings, complete = self._dominated(earlier, binding.path)
                return Reach(scope, bindings, name in scope.params, complete)
            # Other names: the scopes enclosing the binding's.
            scopes = scopes[: scopes.index(scope) + 1] if scope in scopes else scopes
        elif any(name in targets for targets in self._comprehension_targets):
            return None
        functions = scopes[1:] if scopes and scopes[0] is self.module_scope else scopes
        for index in range(len(functions) - 1, -1, -1):
            scope = functions[index]
            if name in scope.globals:
                break
            records = scope.records.get(name)
            if records:
                if index == len(functions) - 1 and not self._evaluating:
                    bindings, complete = self._dominated(records)
                    return Reach(scope, bindings, name in scope.params, complete)
                # An enclosing function's local: bound before the inner function runs.
                return Reach(scope, tuple(records), name in scope.params, True)
            if name in scope.params:
                return Reach(scope, (), True)
        module = self.module_scope
        if module is None:
            return None
        records = module.records.get(name)
        if not records:
            return None
        if not functions and not self._evaluating:
            done = [r for r in records if r.done]
            if not done:
                return None
            bindings, complete = self._dominated(done)
            return Reach(module, bindings, False, complete)
        # Module-level names are bound before the functions that read them run.
        return Reach(module, tuple(records), False, True)

    def file_occurrences(self, name: str) -> int:
        """How often ``name`` occurs in the file (loads, stores, attribute names alike)."""
        return self._name_counts(self.ctx.module).get(name, 0)

    def occurrences(self, scope: Scope, name: str) -> int:
        """How often ``name`` occurs in ``scope``'s tree (loads, stores, attribute names
        alike; for a function, its decorators and signature too)."""
        return self._name_counts(scope.node).get(name, 0)

    def _name_counts(self, root: cst.CSTNode) -> dict[str, int]:
        found = self._counts.get(id(root))
        if found is None:
            found = self._counts[id(root)] = (root, name_counts(root))
        return found[1]

    def _dominated(
        self, records: list[Binding], on_path: frozenset[int] | None = None
    ) -> tuple[tuple[Binding, ...], bool]:
        """The bindings from the last one that always runs before the current point on
        (and whether there was one)."""
        if on_path is None:
            on_path = frozenset(id(node) for node in self.ctx.stack)
        for index in range(len(records) - 1, -1, -1):
            record = records[index]
            if record.kind is not BindingKind.AUGMENTED and id(record.block) in on_path:
                return tuple(records[index:]), True
        return tuple(records), False

    # -- traversal hooks -------------------------------------------------------

    def enter_hooks(self) -> dict[type, Callable[[cst.CSTNode], None]]:
        """The node types whose entry updates the analysis, with what to call."""
        return {kind: getattr(self, method) for kind, method in _ENTER_TYPES.items()}

    def leave_hooks(self) -> dict[type, Callable[[cst.CSTNode], None]]:
        """The node types whose exit updates the analysis, with what to call."""
        return {kind: getattr(self, method) for kind, method in _LEAVE_TYPES.items()}

    def enter(self, node: cst.CSTNode) -> None:
        kind = type(node)
        if kind in _ENTER_TYPES:
            getattr(self, _ENTER_TYPES[kind])(node)

    def leave(self, node: cst.CSTNode) -> None:
        kind = type(node)
        if kind in _LEAVE_TYPES:
            getattr(self, _LEAVE_TYPES[kind])(node)

    # -- entering --------------------------------------------------------------

    def _enter_module(self, node: cst.Module) -> None:
        self.module_scope = Scope(node)
        self.scopes = [self.module_scope]
        self._prescan(node)

    def _enter_function(self, node: cst.FunctionDef) -> None:
        params = node.params
        names = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
        for star in (params.star_arg, params.star_kwarg):
            if type(star) is cst.Param:
                names.add(star.name.value)
        self.scopes.append(Scope(node, params=frozenset(names)))

    def _enter_comprehension(self, node: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp) -> None:
        targets: set[str] = set()
        comp: cst.CompFor | None = node.for_in
        while comp is not None:
            targets.update(target_names(comp.target))
            comp = comp.inner_for_in
        self._comprehension_targets.append(targets)

    def _enter_for(self, node: cst.For) -> None:
        if self._recording():
            kind = BindingKind.ELEMENT if isinstance(node.target, cst.Name) else BindingKind.UNKNOWN
            self._bind_target(node.target, kind, node.iter, node, node.body)

    def _enter_with(self, node: cst.With) -> None:
        if self._recording():
            for item in node.items:
                if item.asname is not None:
                    target = item.asname.name
                    kind = BindingKind.CONTEXT if isinstance(target, cst.Name) else BindingKind.UNKNOWN
                    self._bind_target(target, kind, item.item, node, node.body)

    def _enter_except(self, node: cst.ExceptHandler) -> None:
        if node.name is not None and self._recording():
            self._bind_target(node.name.name, BindingKind.UNKNOWN, None, node, node.body)

    def _enter_global(self, node: cst.Global) -> None:
        scope = self.scope
        if scope is not None and scope is not self.module_scope:
            scope.globals.update(n.name.value for n in node.names)

    # -- leaving ---------------------------------------------------------------

    def _leave_function(self, node: cst.FunctionDef) -> None:
        if len(self.scopes) > 1:
            self.scopes.pop()

    def _leave_comprehension(self, node: cst.CSTNode) -> None:
        if self._comprehension_targets:
            self._comprehension_targets.pop()

    def _leave_binding(self, node: cst.CSTNode) -> None:
        prescanned = self._prescanned.pop(id(node), None)
        if prescanned is not None:
            for record in prescanned:
                record.done = True
            return
        if not self._recording():
            return
        if type(node) is cst.Assign:
            single = len(node.targets) == 1 or all(type(t.target) is cst.Name for t in node.targets)
            for target in node.targets:
                kind = BindingKind.VALUE if single and type(target.target) is cst.Name else BindingKind.UNKNOWN
                self._bind_target(target.target, kind, node.value, node)
        elif type(node) is cst.AnnAssign:
            if node.value is not None:
                self._bind_target(node.target, BindingKind.VALUE, node.value, node)
        elif type(node) is cst.AugAssign:
            kind = BindingKind.AUGMENTED if type(node.operator) is cst.AddAssign else BindingKind.UNKNOWN
            self._bind_target(node.target, kind, node.value, node)
        elif type(node) is cst.NamedExpr:
            self._bind_target(node.target, BindingKind.VALUE, node.value, node)
        elif type(node) is cst.Del:
            self._bind_target(node.target, BindingKind.UNKNOWN, None, node)
        elif len(self.scopes) > 1 and isinstance(node, (cst.Import, cst.ImportFrom)):
            if not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    bound = alias.asname.name if alias.asname is not None else alias.name
                    while isinstance(bound, cst.Attribute):
                        bound = bound.value
                    self._bind_target(bound, BindingKind.UNKNOWN, None, node)

    # -- recording -------------------------------------------------------------

    def _recording(self) -> bool:
        """False inside class bodies (their names are not visible to methods)."""
        stack = self.ctx.stack
        for index in range(len(stack) - 2, -1, -1):
            recording = _RECORDING_SCOPES.get(type(stack[index]))
            if recording is not None:
                return recording
        return bool(self.scopes)

    def _bind_target(
        self,
        target: cst.CSTNode,
        kind: BindingKind,
        value: cst.BaseExpression | None,
        node: cst.CSTNode,
        block: cst.CSTNode | None = None,
        scope: Scope | None = None,
    ) -> None:
        scope = scope or self.scope
        if scope is None:
            return
        if type(target) is cst.Name:
            self._add(scope, target.value, kind, value, node, block)
            return
        for name in target_names(target):
            self._add(scope, name, BindingKind.UNKNOWN, None, node, block)

    def _add(
        self,
        scope: Scope,
        name: str,
        kind: BindingKind,
        value: cst.BaseExpression | None,
        node: cst.CSTNode,
        block: cst.CSTNode | None,
    ) -> None:
        if name in scope.globals and self.module_scope is not None:
            scope = self.module_scope
            kind, value = BindingKind.UNKNOWN, None
        enclosing_block: cst.CSTNode = block if block is not None else scope.node
        loops: list[cst.CSTNode] = []
        found_block = block is not None
        for ancestor in reversed(self.ctx.stack):
            if ancestor is scope.node:
                break
            ancestor_type = type(ancestor)
            if not found_block and ancestor_type in _BLOCKS:
                enclosing_block = ancestor
                found_block = True
            if ancestor_type in _LOOPS and ancestor is not node:
                loops.append(ancestor)
        self._order += 1
        path = frozenset([id(n) for n in self.ctx.stack if type(n) in _BLOCKS] + [id(enclosing_block)])
        record = Binding(name, kind, value, node, enclosing_block, tuple(reversed(loops)), self._order, path=path)
        scope.records.setdefault(name, []).append(record)

    def _prescan(self, module: cst.Module) -> None:
        """Module-level assignments are known before the functions that read them."""
        scope = self.module_scope
        assert scope is not None
        for stmt in module.body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                targets: list[cst.BaseExpression]
                if isinstance(small, cst.Assign):
                    targets = [t.target for t in small.targets]
                    kind = BindingKind.VALUE
                elif isinstance(small, cst.AnnAssign) and small.value is not None:
                    targets, kind = [small.target], BindingKind.VALUE
                elif isinstance(small, cst.AugAssign):
                    targets = [small.target]
                    kind = BindingKind.AUGMENTED if isinstance(small.operator, cst.AddAssign) else BindingKind.UNKNOWN
                else:
                    continue
                value = small.value
                records: list[Binding] = []
                for target in targets:
                    pairs = (
                        [(target.value, kind, value)]
                        if isinstance(target, cst.Name)
                        else [(n, BindingKind.UNKNOWN, None) for n in target_names(target)]
                    )
                    for name, name_kind, name_value in pairs:
                        self._order += 1
                        record = Binding(
                            name, name_kind, name_value, small, module, (), self._order, done=False, path=frozenset({id(module)})
                        )
                        scope.records.setdefault(name, []).append(record)
                        records.append(record)
                self._prescanned[id(small)] = records


_ENTER_TYPES: dict[type, str] = {
    cst.Module: "_enter_module",
    cst.FunctionDef: "_enter_function",
    cst.ListComp: "_enter_comprehension",
    cst.SetComp: "_enter_comprehension",
    cst.GeneratorExp: "_enter_comprehension",
    cst.DictComp: "_enter_comprehension",
    cst.For: "_enter_for",
    cst.With: "_enter_with",
    cst.ExceptHandler: "_enter_except",
    cst.Global: "_enter_global",
}
_LEAVE_TYPES: dict[type, str] = {
    cst.FunctionDef: "_leave_function",
    cst.ListComp: "_leave_comprehension",
    cst.SetComp: "_leave_comprehension",
    cst.GeneratorExp: "_leave_comprehension",
    cst.DictComp: "_leave_comprehension",
    **{t: "_leave_binding" for t in (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.NamedExpr, cst.Del, cst.Import, cst.ImportFrom)},
}


# -- string constructions ---------------------------------------------------------

# The literal nodes string text comes from.
Leaf = Union[cst.SimpleString, cst.FormattedString]


@dataclass(frozen=True, eq=False)
class Text:
    value: str
    leaf: Leaf | None


@dataclass(frozen=True, eq=False)
class Hole:
    """An interpolated value."""

    # None when the value cannot be named (``*args``, a missing argument).
    expr: cst.BaseExpression | None
    # Inserted as plain ``str(expr)``: no conversion, format spec or ``%`` flags.
    simple: bool
    # The name the template gives the field (``%(name)s``, ``{name}``), if any.
    field: str | None = None
    leaf: Leaf | None = None


Piece = Union[Text, Hole]


@dataclass(frozen=True, eq=False)
class Construction:
    """How a string expression is built."""

    site: cst.BaseExpression
    pieces: tuple[Piece, ...]
    # How values were interpolated: "f-string", "%", "format", "+".
    methods: frozenset[str] = frozenset()
    # The single literal (plain, f-string or implicit concatenation) all text comes
    # from, when the text can be rewritten in place; None for ``+`` chains.
    template: cst.BaseExpression | None = None
    # False when the pieces only approximate the value (unparsable escapes, mismatched
    # ``%`` arguments, texts read through names defined elsewhere).
    exact: bool = True

    @property
    def holes(self) -> list[Hole]:
        return [p for p in self.pieces if isinstance(p, Hole)]

    @property
    def texts(self) -> list[Text]:
        return [p for p in self.pieces if isinstance(p, Text)]

    @property
    def text(self) -> str:
        """The literal text, holes left out."""
        return "".join(p.value for p in self.pieces if isinstance(p, Text))


def construct(ctx: FileContext, expr: cst.BaseExpression | None, depth: int = 0) -> Construction | None:
    """How ``expr`` builds a string, or None when it is not known to be a ``str``."""
    if expr is None or depth > _MAX_DEPTH:
        return None
    if isinstance(expr, cst.SimpleString):
        if "b" in string_prefix(expr):
            return None
        value = string_value(expr)
        if not isinstance(value, str):
            return None
        return Construction(expr, (Text(value, expr),), template=expr)
    if isinstance(expr, cst.FormattedString):
        return _fstring(expr)
    if isinstance(expr, cst.ConcatenatedString):
        left = construct(ctx, expr.left, depth + 1)
        right = construct(ctx, expr.right, depth + 1)
        if left is None or right is None:
            return None
        return Construction(
            expr, left.pieces + right.pieces, left.methods | right.methods, expr, left.exact and right.exact
        )
    if isinstance(expr, cst.BinaryOperation):
        if isinstance(expr.operator, cst.Add):
            return _concatenation(ctx, expr, depth)
        if isinstance(expr.operator, cst.Modulo):
            return _percent(ctx, expr, depth)
        return None
    if isinstance(expr, cst.Call):
        return _call(ctx, expr, depth)
    if isinstance(expr, cst.Name):
        if _is_string_name(ctx, expr.value, depth):
            return Construction(expr, (Hole(expr, True),))
        return None
    if isinstance(expr, cst.IfExp):
        if construct(ctx, expr.body, depth + 1) is not None and construct(ctx, expr.orelse, depth + 1) is not None:
            return Construction(expr, (Hole(expr, True),))
        return None
    return None


def is_string(ctx: FileContext, expr: cst.BaseExpression | None) -> bool:
    return construct(ctx, expr) is not None


def string_bindings(ctx: FileContext, name: str, depth: int = 0) -> list[Construction] | None:
    """Constructions of every binding of ``name`` reaching the current point, or None
    when one of them is not known to be a string (or the name is not bound here)."""
    reach = ctx.values.reaching(name)
    if reach is None or not reach.bindings or reach.unknown_param:
        return None
    out: list[Construction] = []
    for binding in reach.bindings:
        if binding.kind not in (BindingKind.VALUE, BindingKind.AUGMENTED):
            return None
        # A binding only sees earlier bindings: the depth restarts, no cycle is possible.
        built = ctx.values.memo(binding, "construct", lambda b=binding: construct(ctx, b.value), None)
        if built is None:
            return None
        out.append(built)
    return out


def _is_string_name(ctx: FileContext, name: str, depth: int) -> bool:
    return string_bindings(ctx, name, depth) is not None


def _fstring(expr: cst.FormattedString) -> Construction:
    pieces: list[Piece] = []
    exact = True
    has_holes = False
    prefix = expr.prefix.lower().replace("f", "")
    quote = expr.quote
    for part in expr.parts:
        if isinstance(part, cst.FormattedStringText):
            raw = part.value.replace("{{", "{").replace("}}", "}")
            try:
                value = ast.literal_eval(f"{prefix}{quote}{raw}{quote}")
            except (SyntaxError, ValueError):
                value, exact = raw, False
            if not isinstance(value, str):
                value, exact = raw, False
            pieces.append(Text(value, expr))
        else:
            has_holes = True
            simple = part.conversion is None and not part.format_spec and part.equal is None
            pieces.append(Hole(part.expression, simple, leaf=expr))
            for spec in part.format_spec or ():
                if isinstance(spec, cst.FormattedStringExpression):
                    pieces.append(Hole(spec.expression, False, leaf=expr))
    return Construction(expr, tuple(pieces), frozenset({"f-string"}) if has_holes else frozenset(), expr, exact)


def _concatenation(ctx: FileContext, expr: cst.BinaryOperation, depth: int) -> Construction | None:
    left = construct(ctx, expr.left, depth + 1)
    right = construct(ctx, expr.right, depth + 1)
    if left is None and right is None:
        return None
    if left is None:
        left = Construction(expr.left, (Hole(expr.left, True),), frozenset({"+"}))
    if right is None:
        right = Construction(expr.right, (Hole(expr.right, True),), frozenset({"+"}))
    methods = left.methods | right.methods
    if any(isinstance(p, Hole) for p in (*left.pieces, *right.pieces)):
        methods |= {"+"}
    return Construction(expr, left.pieces + right.pieces, methods, None, left.exact and right.exact)


def _template(ctx: FileContext, expr: cst.BaseExpression, depth: int) -> tuple[Construction, bool] | None:
    """A format template: a literal without holes (or a name bound to one). The flag
    tells whether the template's text is written at ``expr`` itself."""
    built = construct(ctx, expr, depth + 1)
    if built is None:
        return None
    if not built.holes:
        return built, True
    if isinstance(expr, cst.Name):
        bindings = string_bindings(ctx, expr.value, depth + 1)
        if bindings is not None and len(bindings) == 1 and not bindings[0].holes:
            return bindings[0], False
    return None


_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?(?P<flags>[#0\- +]*)(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?(?P<conv>[diouxXeEfFgGcrsa%])"
)


def _percent(ctx: FileContext, expr: cst.BinaryOperation, depth: int) -> Construction | None:
    found = _template(ctx, expr.left, depth)
    if found is None:
        left = construct(ctx, expr.left, depth + 1)
        if left is None:
            return None
        # A template with holes of its own (or unknown text): keep what is known.
        return Construction(
            expr, left.pieces + (Hole(expr.right, False),), left.methods | {"%"}, None, False
        )
    template, in_place = found
    right = expr.right
    positional: list[cst.BaseExpression | None] | None = None
    mapping: dict[str, cst.BaseExpression] | None = None
    opaque = False
    if isinstance(right, cst.Tuple):
        positional = []
        for element in right.elements:
            if isinstance(element, cst.StarredElement):
                opaque = True
                break
            positional.append(element.value)
    elif isinstance(right, cst.Dict):
        mapping = {}
        for element in right.elements:
            if not isinstance(element, cst.DictElement) or not isinstance(element.key, cst.SimpleString):
                opaque = True
                break
            key = string_value(element.key)
            if not isinstance(key, str):
                opaque = True
                break
            mapping[key] = element.value
    pieces: list[Piece] = []
    exact = template.exact and in_place and not opaque
    specs = 0
    for text, leaf, offset in _leaf_texts(template):
        position = 0
        for match in _PERCENT.finditer(text):
            if match.start() > position:
                pieces.append(Text(text[position : match.start()], leaf))
            position = match.end()
            conv = match.group("conv")
            if conv == "%":
                pieces.append(Text("%", leaf))
                continue
            simple = conv in "sdiu" and not match.group("flags") and not match.group("width") and not match.group("precision")
            key = match.group("key")
            value: cst.BaseExpression | None
            if key is not None:
                value = mapping.get(key) if mapping is not None else None
                if value is None:
                    value, simple, exact = right, False, False
                pieces.append(Hole(value, simple, key, leaf))
            else:
                if positional is not None:
                    value = positional[specs] if specs < len(positional) else None
                elif mapping is None:
                    value = right
                else:
                    value = None
                if value is None:
                    value, simple, exact = right, False, False
                pieces.append(Hole(value, simple, None, leaf))
                specs += 1
        if position < len(text):
            pieces.append(Text(text[position:], leaf))
    if positional is not None and specs != len(positional):
        exact = False
    if mapping is None and positional is None and specs > 1:
        # One value for several fields: a tuple held by a name.
        pieces = [Hole(right, False, p.field, p.leaf) if isinstance(p, Hole) else p for p in pieces]
        exact = False
    return Construction(
        expr, tuple(pieces), template.methods | {"%"}, template.site if in_place else None, exact
    )


def _call(ctx: FileContext, expr: cst.Call, depth: int) -> Construction | None:
    func = expr.func
    if isinstance(func, cst.Attribute):
        method = func.attr.value
        if method == "format":
            return _format(ctx, expr, depth)
        if method == "join" and isinstance(func.value, (cst.SimpleString, cst.ConcatenatedString)):
            if construct(ctx, func.value, depth + 1) is not None:
                return Construction(expr, (Hole(expr, False),), frozenset({"join"}), None, False)
        return None
    callee = ctx.qualname(func)
    if callee in ("textwrap.dedent", "inspect.cleandoc") and len(expr.args) == 1 and not expr.args[0].star:
        inner = construct(ctx, expr.args[0].value, depth + 1)
        if inner is not None:
            return Construction(expr, inner.pieces, inner.methods, None, False)
    return None


def _format(ctx: FileContext, expr: cst.Call, depth: int) -> Construction | None:
    assert isinstance(expr.func, cst.Attribute)
    found = _template(ctx, expr.func.value, depth)
    if found is None:
        return None
    template, in_place = found
    positional: list[cst.BaseExpression] = []
    keywords: dict[str, cst.BaseExpression] = {}
    opaque = False
    splat: cst.BaseExpression | None = None
    for arg in expr.args:
        if arg.star:
            opaque = True
            splat = splat or arg.value
        elif arg.keyword is not None:
            keywords[arg.keyword.value] = arg.value
        else:
            positional.append(arg.value)
    formatter = string.Formatter()
    pieces: list[Piece] = []
    exact = template.exact and in_place and not opaque
    auto = 0
    for text, leaf, _ in _leaf_texts(template):
        try:
            parsed = list(formatter.parse(text))
        except ValueError:
            return None
        for literal, field_name, spec, conversion in parsed:
            if literal:
                pieces.append(Text(literal, leaf))
            if field_name is None:
                continue
            head = re.match(r"[^.\[]*", field_name)
            base = head.group(0) if head else field_name
            simple = not spec and conversion is None and base == field_name
            value: cst.BaseExpression | None = None
            name: str | None = None
            if base == "":
                value = positional[auto] if auto < len(positional) else None
                auto += 1
            elif base.isdigit():
                index = int(base)
                value = positional[index] if index < len(positional) else None
            else:
                value = keywords.get(base)
                name = base
            if value is None:
                # From a splat (its value stands for the field), or missing.
                value, simple, exact = splat, False, False
            pieces.append(Hole(value, simple, name, leaf))
    return Construction(
        expr, tuple(pieces), template.methods | {"format"}, template.site if in_place else None, exact
    )


def _leaf_texts(template: Construction) -> list[tuple[str, Leaf | None, int]]:
    """The template's text grouped by the literal each part comes from."""
    out: list[tuple[str, Leaf | None, int]] = []
    offset = 0
    for piece in template.pieces:
        if isinstance(piece, Text):
            if out and out[-1][1] is piece.leaf:
                text, leaf, start = out[-1]
                out[-1] = (text + piece.value, leaf, start)
            else:
                out.append((piece.value, piece.leaf, offset))
            offset += len(piece.value)
    return out


# -- taint ------------------------------------------------------------------------


class Taint(enum.IntEnum):
    """What an interpolated value can be, from harmless to dangerous."""

    CONSTANT = 0  # literals, names bound only to literals, module constants
    ESCAPED = 1  # an identifier quoted by the dialect's IdentifierPreparer
    UNKNOWN = 2  # cannot tell (a SQL fragment joined from parts, an unresolved constant)
    DYNAMIC = 3  # a parameter, a call result, anything else


_SAFE_BUILTINS = frozenset({"int", "float", "len", "bool", "abs", "round", "range", "ord", "hash", "id"})
_TRANSPARENT_BUILTINS = frozenset({"str"})
_STRING_METHODS = frozenset(
    {"lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize", "casefold", "replace", "zfill", "ljust", "rjust", "center"}
)
_QUOTE_METHODS = frozenset({"quote", "quote_identifier", "quote_schema", "format_table", "format_column"})
_CONSTANT_ATTRS = frozenset({"__tablename__", "__name__"})


def is_all_caps(name: str) -> bool:
    return bool(_ALL_CAPS.fullmatch(name))


def taint(ctx: FileContext, expr: cst.BaseExpression | None, depth: int = 0) -> Taint:
    """How far the value of ``expr`` can be trusted inside SQL text."""
    if expr is None or depth > _MAX_DEPTH:
        return Taint.DYNAMIC
    if isinstance(expr, (cst.SimpleString, cst.Integer, cst.Float, cst.Imaginary, cst.Comparison)):
        return Taint.CONSTANT
    if isinstance(expr, (cst.FormattedString, cst.ConcatenatedString)):
        built = construct(ctx, expr, depth + 1)
        if built is None:
            return Taint.CONSTANT
        return max((taint(ctx, h.expr, depth + 1) for h in built.holes), default=Taint.CONSTANT)
    if isinstance(expr, cst.Name):
        return _name_taint(ctx, expr.value, depth)
    if isinstance(expr, cst.Attribute):
        return _attribute_taint(ctx, expr, depth)
    if isinstance(expr, cst.Call):
        return _call_taint(ctx, expr, depth)
    if isinstance(expr, cst.Subscript):
        # A lookup in a constant table (a whitelist) yields one of its constants.
        return taint(ctx, expr.value, depth + 1)
    if isinstance(expr, (cst.BinaryOperation, cst.BooleanOperation)):
        return max(taint(ctx, expr.left, depth + 1), taint(ctx, expr.right, depth + 1))
    if isinstance(expr, cst.UnaryOperation):
        return taint(ctx, expr.expression, depth + 1)
    if isinstance(expr, cst.IfExp):
        return max(taint(ctx, expr.body, depth + 1), taint(ctx, expr.orelse, depth + 1))
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
        return max(
            (
                Taint.DYNAMIC if isinstance(e, cst.StarredElement) else taint(ctx, e.value, depth + 1)
                for e in expr.elements
            ),
            default=Taint.CONSTANT,
        )
    if isinstance(expr, cst.Dict):
        worst = Taint.CONSTANT
        for element in expr.elements:
            if not isinstance(element, cst.DictElement):
                return Taint.DYNAMIC
            worst = max(worst, taint(ctx, element.key, depth + 1), taint(ctx, element.value, depth + 1))
        return worst
    return Taint.DYNAMIC


def _builtin(ctx: FileContext, name: str) -> bool:
    """``name`` is the builtin of that name (not shadowed in this file)."""
    imports = ctx.imports
    if name in imports.bindings or name in imports.local_defs:
        return False
    return ctx.values.reaching(name) is None


def _name_taint(ctx: FileContext, name: str, depth: int) -> Taint:
    if name in ("True", "False", "None"):
        return Taint.CONSTANT
    reach = ctx.values.reaching(name)
    if reach is not None:
        if reach.unknown_param or not reach.bindings:
            return Taint.DYNAMIC
        worst = Taint.CONSTANT
        for binding in reach.bindings:
            worst = max(worst, _binding_taint(ctx, binding, depth))
            if worst is Taint.DYNAMIC:
                break
        return worst
    qual = ctx.imports.resolve(name)
    return _module_value_taint(ctx, qual, name)


def _binding_taint(ctx: FileContext, binding: Binding, depth: int) -> Taint:
    if binding.kind in (BindingKind.VALUE, BindingKind.AUGMENTED):
        # A binding only sees earlier bindings: the depth restarts, no cycle is possible.
        return ctx.values.memo(binding, "taint", lambda: taint(ctx, binding.value), Taint.DYNAMIC)
    if binding.kind is BindingKind.ELEMENT:
        iterable = binding.value
        if isinstance(iterable, (cst.Tuple, cst.List, cst.Set, cst.Name, cst.Attribute)):
            return taint(ctx, iterable, depth + 1)
        if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Name):
            if iterable.func.value == "range" and _builtin(ctx, "range"):
                return Taint.CONSTANT
            if iterable.func.value in ("reversed", "sorted", "list", "tuple") and len(iterable.args) == 1:
                iterable = iterable.args[0].value
        if _schema_objects(iterable):
            return Taint.CONSTANT
        return Taint.DYNAMIC
    return Taint.DYNAMIC


def _schema_objects(expr: cst.BaseExpression) -> bool:
    """``metadata.sorted_tables`` / ``metadata.tables(.values()/.keys())``: tables
    declared in code."""
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and not expr.args:
        if expr.func.attr.value in ("values", "keys"):
            expr = expr.func.value
    return isinstance(expr, cst.Attribute) and expr.attr.value in ("sorted_tables", "tables")


def _module_value_taint(ctx: FileContext, qual: str | None, name: str) -> Taint:
    """A module-level name of another module (or one this file does not bind)."""
    value = ctx.project.value(qual) if qual else None
    if isinstance(value, LiteralValue):
        return Taint.CONSTANT
    if value is not None:
        return Taint.DYNAMIC
    return Taint.UNKNOWN if is_all_caps(name) else Taint.DYNAMIC


def _attribute_taint(ctx: FileContext, expr: cst.Attribute, depth: int) -> Taint:
    attr = expr.attr.value
    if attr in _CONSTANT_ATTRS:
        return Taint.CONSTANT
    if attr == "name" and isinstance(expr.value, cst.Attribute) and expr.value.attr.value == "__table__":
        return Taint.CONSTANT
    qual = ctx.qualname(expr)
    if qual is not None:
        return _module_value_taint(ctx, qual, attr)
    if isinstance(expr.value, cst.Name) and expr.value.value in ("self", "cls") and ctx.classes:
        found = _class_attribute_taint(ctx, attr)
        if found is not None:
            return found
        if is_all_caps(attr):
            return Taint.UNKNOWN
    root: cst.BaseExpression = expr
    while isinstance(root, cst.Attribute):
        root = root.value
    if isinstance(root, cst.Name) and ctx.values.reaching(root.value) is not None:
        # An attribute of a local object is as trustworthy as the object.
        return taint(ctx, root, depth + 1)
    return Taint.DYNAMIC


def _class_attribute_taint(ctx: FileContext, attr: str) -> Taint | None:
    """``self.attr``/``cls.attr`` of the enclosing class (or a project base class): a
    constant when the class body binds it to a literal and ``__init__`` does not set it."""
    module = ctx.module_name
    pending = [f"{module}.{ctx.classes[-1]}" if module else ctx.classes[-1]]
    seen: set[str] = set()
    while pending and len(seen) < 20:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        located = ctx.project.class_(current) or ctx.project.class_(ctx.project.symbol(current))
        if located is None:
            continue
        facts = located[1]
        if attr in facts.self_attr_types or attr in facts.self_attr_calls:
            return Taint.DYNAMIC
        value = facts.values.get(attr)
        if value is not None:
            return Taint.CONSTANT if isinstance(value, LiteralValue) else Taint.DYNAMIC
        pending.extend(b for b in facts.bases if b != "?")
    return None


def _call_taint(ctx: FileContext, expr: cst.Call, depth: int) -> Taint:
    func = expr.func
    if is_identifier_quote(ctx, expr):
        return Taint.ESCAPED
    if isinstance(func, cst.Name):
        if func.value in _SAFE_BUILTINS and _builtin(ctx, func.value):
            return Taint.CONSTANT
        if func.value in _TRANSPARENT_BUILTINS and _builtin(ctx, func.value) and len(expr.args) == 1:
            return taint(ctx, expr.args[0].value, depth + 1)
        return Taint.DYNAMIC
    if isinstance(func, cst.Attribute):
        method = func.attr.value
        receiver = func.value
        if method == "join" and construct(ctx, receiver, depth + 1) is not None:
            return Taint.UNKNOWN
        if method in _STRING_METHODS:
            worst = taint(ctx, receiver, depth + 1)
            for arg in expr.args:
                worst = max(worst, taint(ctx, arg.value, depth + 1))
            return worst
        if method == "get" and expr.args and isinstance(receiver, (cst.Name, cst.Attribute, cst.Dict)):
            worst = taint(ctx, receiver, depth + 1)
            for arg in expr.args[1:]:
                worst = max(worst, taint(ctx, arg.value, depth + 1))
            return worst
        built = construct(ctx, expr, depth + 1)
        if built is not None:
            return max((taint(ctx, h.expr, depth + 1) for h in built.holes), default=Taint.CONSTANT)
    return Taint.DYNAMIC


def is_identifier_quote(ctx: FileContext, call: cst.Call) -> bool:
    """``<dialect>.identifier_preparer.quote(name)`` (and the preparer's other quoting
    methods), also through a local name bound to the preparer."""
    func: cst.BaseExpression = call.func
    if isinstance(func, cst.Name):
        # quote = dialect.identifier_preparer.quote; quote(name)
        reach = ctx.values.reaching(func.value)
        binding = reach.single if reach is not None else None
        if binding is None or binding.value is None:
            return False
        func = binding.value
    if not isinstance(func, cst.Attribute) or func.attr.value not in _QUOTE_METHODS:
        return False
    return _is_preparer(ctx, func.value, 0)


def _is_preparer(ctx: FileContext, expr: cst.BaseExpression, depth: int) -> bool:
    if depth > 3:
        return False
    if isinstance(expr, cst.Attribute):
        return expr.attr.value == "identifier_preparer"
    if isinstance(expr, cst.Call):
        callee = ctx.qualname(expr.func)
        return callee is not None and callee.endswith(".IdentifierPreparer")
    if isinstance(expr, cst.Name):
        reach = ctx.values.reaching(expr.value)
        binding = reach.single if reach is not None else None
        return binding is not None and binding.value is not None and _is_preparer(ctx, binding.value, depth + 1)
    return False


# -- rendering --------------------------------------------------------------------


def render_string(value: str, like: Leaf) -> str | None:
    """``value`` as a plain string literal in the quoting style of ``like`` (its ``r``
    prefix kept when the value allows it); None when it cannot be written so."""
    quote = like.quote
    prefix = like.prefix.lower()
    if "r" in prefix:
        if not value.endswith("\\") and quote not in value and "\r" not in value and (len(quote) == 3 or "\n" not in value):
            return f"r{quote}{value}{quote}"
    out: list[str] = []
    single = len(quote) == 1
    for index, char in enumerate(value):
        if char == "\\":
            out.append("\\\\")
        elif char == quote[0] and (single or value.startswith(quote[0] * 3, index) or index == len(value) - 1):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n" if single else "\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t" if single else "\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return f"{quote}{''.join(out)}{quote}"


def is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)
