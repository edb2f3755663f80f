"""The project index: facts about the whole project that single-file rules need.

The index pass reads every candidate file with the stdlib ``ast`` (about ten times
cheaper than a LibCST parse) and records per-file facts: imports, module-level
assignments (session factories, engines, type aliases such as ``SessionDep``),
functions (return annotations, what dependencies yield), classes (bases, table
settings, relationships and their ``lazy=`` strategy, session attributes), the targets
of ``Depends(...)`` and whether the module uses SQLAlchemy's asyncio extension.
Facts are plain picklable data, computed per file (in parallel, cacheable by content
hash) and merged into a :class:`ProjectIndex` that answers questions by qualified name.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from typing import Any, Union

from fastdb_lint.analysis.imports import ImportTable, dotted_ast
from fastdb_lint.analysis.shape import FileShape, file_shape, parse_or_none
from fastdb_lint.memory import gc_paused
from fastdb_lint.analysis.sqlalchemy_api import ASYNC_MODULES
from fastdb_lint.analysis.typeexpr import TypeExpr, type_from_ast


@dataclass(frozen=True)
class CallValue:
    """``NAME = callee(...)``: the callee's qualified name and simple keyword values."""

    callee: str | None
    keywords: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    args: tuple[str | None, ...] = ()
    has_splat: bool = False
    # Every keyword passed, including those whose value is not simple (dicts, lambdas).
    keyword_names: frozenset[str] = field(default=frozenset(), compare=False)


@dataclass(frozen=True)
class NameValue:
    """``NAME = other.name``: an alias of another symbol."""

    qualname: str


@dataclass(frozen=True)
class TypeValue:
    """``NAME = Annotated[...]`` / ``NAME: TypeAlias = ...`` / ``type NAME = ...``."""

    type: TypeExpr


@dataclass(frozen=True)
class LiteralValue:
    value: object


Value = Union[CallValue, NameValue, TypeValue, LiteralValue]


@dataclass
class FunctionFacts:
    name: str
    is_async: bool
    returns: TypeExpr | None
    is_generator: bool
    # Callees of ``with``/``async with`` items whose target the function yields or returns.
    yields_from: list[str] = field(default_factory=list)


@dataclass
class Relationship:
    attr: str
    target: str | None
    lazy: str | None
    line: int


@dataclass
class ClassFacts:
    name: str
    bases: list[str]
    body_names: set[str] = field(default_factory=set)
    metadata: Value | None = None
    relationships: dict[str, Relationship] = field(default_factory=dict)
    attr_types: dict[str, TypeExpr] = field(default_factory=dict)
    self_attr_types: dict[str, TypeExpr] = field(default_factory=dict)
    # self.<attr> = <callee>(...) in __init__
    self_attr_calls: dict[str, str] = field(default_factory=dict)
    # Class keywords (``table=True``, ``metaclass=...``) with simple values.
    keywords: dict[str, str] = field(default_factory=dict)
    # Qualified names of the decorators (of the called function for ``@f(...)``).
    decorators: list[str] = field(default_factory=list)
    # Values assigned to plain names in the class body (``__tablename__``, ``__abstract__``).
    values: dict[str, Value] = field(default_factory=dict)
    # Keys of ``__mapper_args__`` ("?" when it is computed, e.g. by a ``declared_attr``).
    mapper_args: set[str] = field(default_factory=set)


@dataclass
class DisposeFacts:
    """Where ``.dispose()`` is called (or handed out as ``x.dispose``) and what it may reach."""

    # Qualified names ``.dispose`` is called on (module-level names, through imports
    # and function-local aliases).
    names: set[str] = field(default_factory=set)
    # (function qualname, position without self/cls, parameter name) of helpers that
    # dispose one of their parameters.
    params: set[tuple[str, int, str]] = field(default_factory=set)
    # ``.dispose`` on something that cannot be named (``self.engine``, ``app.state.engine``).
    unresolved: bool = False
    # Qualified names stored into an attribute or a subscript (``app.state.engine = engine``).
    stored: set[str] = field(default_factory=set)
    # (callee, position or keyword, argument qualname) for calls passing a module-level
    # name to a project function; an unresolved method callee is ``?<method name>``.
    passed: set[tuple[str, int | str, str]] = field(default_factory=set)


@dataclass
class FileFacts:
    path: str
    module: str
    imports: ImportTable
    values: dict[str, Value] = field(default_factory=dict)
    functions: dict[str, FunctionFacts] = field(default_factory=dict)
    classes: dict[str, ClassFacts] = field(default_factory=dict)
    depends: set[str] = field(default_factory=set)
    uses_asyncio: bool = False
    parse_ok: bool = True
    # ``SQLModel.metadata.naming_convention = ...`` (or ``SQLModel.metadata = MetaData(
    # naming_convention=...)``) somewhere in the file; also ``<x>.naming_convention = ...``
    # on a metadata the analysis cannot name (``target_metadata = Base.metadata``).
    sqlmodel_naming_convention: bool = False
    # Functions passed as ``lifespan=`` to an application or router (qualified names;
    # a function-local name is recorded as ``<module>.<name>``).
    lifespans: set[str] = field(default_factory=set)
    dispose: DisposeFacts = field(default_factory=DisposeFacts)
    # What the file calls and where (None when ``ast`` cannot parse it): rules that
    # cannot apply to the file's shape are not run on it.
    shape: FileShape | None = None


def module_name_for(relpath: str) -> tuple[str, bool]:
    """Dotted module name of a project-relative path and whether it is a package."""
    parts = relpath.replace("\\", "/").split("/")
    last = parts[-1]
    if last.endswith(".pyi"):
        last = last[:-4]
    elif last.endswith(".py"):
        last = last[:-3]
    is_package = last == "__init__"
    parts = parts[:-1] if is_package else parts[:-1] + [last]
    return ".".join(p for p in parts if p and p != "."), is_package


def _simple(node: ast.AST, imports: ImportTable) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bool, int, float, type(None))):
        return node.value if isinstance(node.value, str) else repr(node.value)
    dotted = dotted_ast(node)
    if dotted is not None:
        return imports.resolve(dotted) or dotted
    return None


def _value(node: ast.AST, imports: ImportTable) -> Value | None:
    if isinstance(node, ast.Call):
        dotted = dotted_ast(node.func)
        callee = imports.resolve(dotted) if dotted else None
        if callee is None and isinstance(node.func, ast.Call):
            callee = None
        keywords = {}
        has_splat = False
        for kw in node.keywords:
            if kw.arg is None:
                has_splat = True
                continue
            value = _simple(kw.value, imports)
            if value is not None:
                keywords[kw.arg] = value
            elif isinstance(kw.value, ast.Call):
                inner = dotted_ast(kw.value.func)
                keywords[kw.arg] = f"call:{imports.resolve(inner) if inner else None}"
        args = tuple(_simple(a, imports) for a in node.args)
        keyword_names = frozenset(kw.arg for kw in node.keywords if kw.arg is not None)
        return CallValue(callee, keywords, args, has_splat, keyword_names)
    if isinstance(node, ast.Subscript) or isinstance(node, ast.BinOp):
        return TypeValue(type_from_ast(node, imports))
    dotted = dotted_ast(node)
    if dotted is not None:
        qual = imports.resolve(dotted)
        return NameValue(qual) if qual else None
    if isinstance(node, ast.Constant):
        return LiteralValue(node.value)
    return None


def _on_import(node: ast.Import | ast.ImportFrom, facts: FileFacts) -> None:
    facts.imports.add_ast(node)
    if isinstance(node, ast.Import):
        if any(alias.name.startswith(ASYNC_MODULES) for alias in node.names):
            facts.uses_asyncio = True
        return
    module = node.module or ""
    if module.startswith(ASYNC_MODULES) or any(
        f"{module}.{a.name}".startswith(ASYNC_MODULES) for a in node.names
    ):
        facts.uses_asyncio = True


def _on_assign(node: ast.Assign, facts: FileFacts) -> None:
    imports = facts.imports
    for target in node.targets:
        dotted = dotted_ast(target)
        if dotted is None or "." not in dotted:
            continue
        parts = dotted.split(".")
        # ``SQLModel.metadata...`` or ``sqlmodel.SQLModel.metadata...``
        rest = next(
            (
                ".".join(parts[i:])
                for i in (1, 2)
                if i < len(parts) and imports.resolve(".".join(parts[:i])) == "sqlmodel.SQLModel"
            ),
            None,
        )
        if rest == "metadata.naming_convention" or (rest is None and parts[-1] == "naming_convention"):
            facts.sqlmodel_naming_convention = True
        elif rest == "metadata":
            value = _value(node.value, imports)
            if isinstance(value, CallValue) and "naming_convention" in value.keyword_names:
                facts.sqlmodel_naming_convention = True


def _on_call(node: ast.Call, facts: FileFacts) -> None:
    args, keywords = node.args, node.keywords
    if not args and not keywords:
        return
    imports = facts.imports
    dotted = dotted_ast(node.func)
    callee = imports.resolve(dotted) if dotted else None
    if callee is not None and keywords and callee in _LIFESPAN_OWNERS:
        for kw in keywords:
            target = dotted_ast(kw.value) if kw.arg == "lifespan" else None
            if target is not None:
                resolved = imports.resolve(target)
                if resolved is None and "." not in target:
                    resolved = f"{facts.module}.{target}" if facts.module else target
                if resolved:
                    facts.lifespans.add(resolved)
    _passed(node, dotted, callee, facts)
    if callee in ("fastapi.Depends", "fastapi.Security") and args:
        target = dotted_ast(args[0])
        resolved = imports.resolve(target) if target else None
        if resolved:
            facts.depends.add(resolved)


def _passed(node: ast.Call, dotted: str | None, callee: str | None, facts: FileFacts) -> None:
    """Module-level names passed to project functions (helpers that may dispose them);
    ``callee``: ``dotted`` (the callee's name) resolved."""
    if callee is None:
        if not isinstance(node.func, ast.Attribute):
            return
        callee = f"?{node.func.attr}"
    elif callee.startswith(_NOT_HELPERS):
        return
    imports = facts.imports
    named: list[tuple[int | str, ast.expr]] = [*enumerate(node.args)]
    named.extend((kw.arg, kw.value) for kw in node.keywords if kw.arg is not None)
    for key, arg in named:
        if isinstance(arg, (ast.Name, ast.Attribute)):
            arg_dotted = dotted_ast(arg)
            resolved = imports.resolve(arg_dotted) if arg_dotted else None
            if resolved is not None:
                facts.dispose.passed.add((callee, key, resolved))


@dataclass
class _Function:
    """What the walk gathers inside a module-level function or a method of a
    module-level class."""

    # Names the function itself (not a nested scope) yields or returns.
    yielded: set[str] = field(default_factory=set)
    is_generator: bool = False
    # ``with`` statements and assignments of calls anywhere inside, as (depth, node)
    # in walk order.
    bindings: list[tuple[int, ast.stmt]] = field(default_factory=list)


_IMPORT, _ASSIGN, _CALL, _WITH, _YIELD, _RETURN, _FUNCTION, _SCOPE = range(8)
_KINDS: dict[type, int] = {
    ast.Import: _IMPORT,
    ast.ImportFrom: _IMPORT,
    ast.Assign: _ASSIGN,
    ast.Call: _CALL,
    ast.With: _WITH,
    ast.AsyncWith: _WITH,
    ast.Yield: _YIELD,
    ast.YieldFrom: _YIELD,
    ast.Return: _RETURN,
    ast.FunctionDef: _FUNCTION,
    ast.AsyncFunctionDef: _FUNCTION,
    ast.ClassDef: _SCOPE,
    ast.Lambda: _SCOPE,
}
# Nodes the walk has no use for and that hold no nodes it has a use for.
_LEAVES: frozenset[type] = frozenset(
    {ast.Name, ast.Constant, ast.Pass, ast.Break, ast.Continue, ast.Global, ast.Nonlocal, ast.alias}
    | {
        cls
        for base in (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)
        for cls in base.__subclasses__()
    }
)
_FIELDS: dict[type, tuple[str, ...]] = {}


def _max_depth() -> int:
    """Trees nested deeper than this are not indexed (``parse_ok`` is False): the
    recursive analyses that read them take a frame or two per level."""
    return sys.getrecursionlimit() // 2 - 10


def _walk(tree: ast.Module, facts: FileFacts, functions: dict[ast.AST, _Function]) -> bool:
    """One pre-order walk of the whole tree: imports, calls and dotted assignments in
    source order, and what ``functions`` needs of each function it maps. False when
    the tree is nested too deeply (the facts then stop where the walk stopped)."""
    max_depth = _max_depth()
    kinds = _KINDS
    leaves = _LEAVES
    all_fields = _FIELDS
    stack: list[tuple[Any, int, _Function | None, bool]] = [(tree, 0, None, False)]
    pop = stack.pop
    push = stack.append
    while stack:
        node, depth, function, own = pop()
        if depth > max_depth:
            return False
        cls = type(node)
        fields = all_fields.get(cls)
        if fields is None:
            fields = all_fields[cls] = tuple(reversed(cls._fields))
        kind = kinds.get(cls)
        if kind is not None:
            if kind == _CALL:
                _on_call(node, facts)
            elif kind == _ASSIGN:
                _on_assign(node, facts)
                if function is not None and isinstance(node.value, ast.Call):
                    function.bindings.append((depth, node))
            elif kind == _IMPORT:
                _on_import(node, facts)
                continue
            elif function is not None:
                if kind == _WITH:
                    function.bindings.append((depth, node))
                elif kind == _YIELD:
                    if own:
                        function.is_generator = True
                        if cls is ast.Yield and isinstance(node.value, ast.Name):
                            function.yielded.add(node.value.id)
                elif kind == _RETURN:
                    if own and isinstance(node.value, ast.Name):
                        function.yielded.add(node.value.id)
                else:  # a nested scope
                    own = False
            elif kind == _FUNCTION and node in functions:
                # The function's own scope is its body, not its decorators or defaults.
                function = functions[node]
                depth += 1
                for name in fields:
                    value = getattr(node, name)
                    for child in reversed(value) if type(value) is list else (value,):
                        if isinstance(child, ast.AST) and type(child) not in leaves:
                            push((child, depth, function, name == "body"))
                continue
        depth += 1
        for name in fields:
            value = getattr(node, name)
            if type(value) is list:
                for child in reversed(value):
                    if type(child) not in leaves and isinstance(child, ast.AST):
                        push((child, depth, function, own))
            elif type(value) not in leaves and isinstance(value, ast.AST):
                push((value, depth, function, own))
    return True


def _module_functions(tree: ast.Module) -> dict[ast.AST, _Function]:
    functions: dict[ast.AST, _Function] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[stmt] = _Function()
        elif isinstance(stmt, ast.ClassDef):
            for inner in stmt.body:
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions[inner] = _Function()
    return functions


def _function_facts(
    func: ast.FunctionDef | ast.AsyncFunctionDef, walked: _Function, imports: ImportTable
) -> FunctionFacts:
    yielded = walked.yielded
    sources: list[str] = []
    if yielded:
        # Sources are listed breadth-first.
        for _, node in sorted(walked.bindings, key=lambda binding: binding[0]):
            if isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if isinstance(item.optional_vars, ast.Name) and item.optional_vars.id in yielded:
                        call = item.context_expr
                        if isinstance(call, ast.Call):
                            dotted = dotted_ast(call.func)
                            qual = imports.resolve(dotted) if dotted else None
                            if qual:
                                sources.append(qual)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                if any(isinstance(t, ast.Name) and t.id in yielded for t in node.targets):
                    dotted = dotted_ast(node.value.func)
                    qual = imports.resolve(dotted) if dotted else None
                    if qual:
                        sources.append(qual)
    returns = type_from_ast(func.returns, imports) if func.returns is not None else None
    return FunctionFacts(
        func.name, isinstance(func, ast.AsyncFunctionDef), returns, walked.is_generator, sources
    )


def _class_facts(cls: ast.ClassDef, imports: ImportTable) -> ClassFacts:
    bases = []
    for base in cls.bases:
        dotted = dotted_ast(base.value if isinstance(base, ast.Subscript) else base)
        qual = imports.resolve(dotted) if dotted else None
        bases.append(qual or "?")
    facts = ClassFacts(cls.name, bases)
    for kw in cls.keywords:
        simple = _simple(kw.value, imports) if kw.arg is not None else None
        if kw.arg is not None and simple is not None:
            facts.keywords[kw.arg] = simple
    for decorator in cls.decorator_list:
        dotted = dotted_ast(decorator.func if isinstance(decorator, ast.Call) else decorator)
        qual = imports.resolve(dotted) if dotted else None
        facts.decorators.append(qual or "?")
    for stmt in cls.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            targets, value = [stmt.target], stmt.value
            if isinstance(stmt.target, ast.Name):
                facts.attr_types[stmt.target.id] = type_from_ast(stmt.annotation, imports)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == "__init__":
            _init_facts(stmt, imports, facts)
            continue
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == "__mapper_args__":
            facts.mapper_args.add("?")
            continue
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            facts.body_names.add(target.id)
            if target.id == "__mapper_args__" and value is not None:
                facts.mapper_args |= _dict_keys(value)
            if value is not None:
                body_value = _value(value, imports)
                if body_value is not None:
                    facts.values[target.id] = body_value
            if target.id == "metadata" and value is not None:
                facts.metadata = _value(value, imports)
            if isinstance(value, ast.Call):
                dotted = dotted_ast(value.func)
                if dotted and imports.resolve(dotted) == "sqlalchemy.orm.relationship":
                    facts.relationships[target.id] = _relationship(target.id, value, stmt, imports)
    return facts


def _dict_keys(node: ast.expr) -> set[str]:
    """String keys of a dict display or ``dict(...)`` call ("?" for what cannot be read)."""
    keys: set[str] = set()
    if isinstance(node, ast.Dict):
        for key in node.keys:
            keys.add(key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else "?")
    elif isinstance(node, ast.Call):
        keys.update(kw.arg if kw.arg is not None else "?" for kw in node.keywords)
        if node.args:
            keys.add("?")
    else:
        keys.add("?")
    return keys


def _relationship(attr: str, call: ast.Call, stmt: ast.stmt, imports: ImportTable) -> Relationship:
    target: str | None = None
    if call.args:
        first = call.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            target = first.value
        else:
            dotted = dotted_ast(first)
            target = dotted.rsplit(".", 1)[-1] if dotted else None
    if target is None and isinstance(stmt, ast.AnnAssign):
        tree = type_from_ast(stmt.annotation, imports)
        # Mapped[list["Target"]] / Mapped["Target"] / Mapped[Optional[Target]]
        while tree[1]:
            tree = next((a for a in tree[1] if a[0] not in (None, "None")), tree[1][0])
        if tree[0]:
            target = tree[0].rsplit(".", 1)[-1]
        elif isinstance(stmt.annotation, ast.Subscript):
            text = ast.unparse(stmt.annotation)
            target = text.rstrip("]").split("[")[-1].strip("'\"") or None
    lazy: str | None = None
    for kw in call.keywords:
        if kw.arg == "lazy":
            lazy = kw.value.value if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str) else (
                repr(kw.value.value) if isinstance(kw.value, ast.Constant) else "?"
            )
    return Relationship(attr, target, lazy, stmt.lineno)


def _init_facts(init: ast.FunctionDef | ast.AsyncFunctionDef, imports: ImportTable, facts: ClassFacts) -> None:
    params = {
        a.arg: type_from_ast(a.annotation, imports)
        for a in init.args.args + init.args.kwonlyargs
        if a.annotation is not None
    }
    for node in ast.walk(init):
        if not isinstance(node, (ast.Assign, ast.AnnAssign)):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
                and node.value is not None
            ):
                if isinstance(node.value, ast.Name) and node.value.id in params:
                    facts.self_attr_types[target.attr] = params[node.value.id]
                elif isinstance(node, ast.AnnAssign):
                    facts.self_attr_types[target.attr] = type_from_ast(node.annotation, imports)
                elif isinstance(node.value, ast.Call):
                    dotted = dotted_ast(node.value.func)
                    qual = imports.resolve(dotted) if dotted else None
                    if qual:
                        facts.self_attr_calls[target.attr] = qual


def collect_facts(path: str, relpath: str, text: str) -> FileFacts:
    with gc_paused():
        return _collect_facts(path, relpath, text)


def _collect_facts(path: str, relpath: str, text: str) -> FileFacts:
    module, is_package = module_name_for(relpath)
    imports = ImportTable(module, is_package)
    facts = FileFacts(path=path, module=module, imports=imports)
    tree = parse_or_none(text)
    if tree is None:
        facts.parse_ok = False
        return facts
    facts.shape = file_shape(tree)
    for stmt in tree.body:
        for name in _defined_names(stmt):
            imports.define(name)
    functions = _module_functions(tree)
    try:
        complete = _walk(tree, facts, functions)
        if complete and "dispose" in text:
            _collect_dispose(tree, facts)
    except RecursionError:
        complete = False
    if not complete:
        facts.parse_ok = False
        return facts
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            value = _value(stmt.value, imports)
            if value is not None:
                facts.values[stmt.targets[0].id] = value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            ann = dotted_ast(stmt.annotation)
            if stmt.value is not None:
                if ann and ann.rsplit(".", 1)[-1] == "TypeAlias":
                    facts.values[stmt.target.id] = TypeValue(type_from_ast(stmt.value, imports))
                else:
                    value = _value(stmt.value, imports)
                    if value is not None:
                        facts.values[stmt.target.id] = value
        elif type(stmt).__name__ == "TypeAlias":
            facts.values[stmt.name.id] = TypeValue(type_from_ast(stmt.value, imports))  # type: ignore[attr-defined]
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            facts.functions[stmt.name] = _function_facts(stmt, functions[stmt], imports)
        elif isinstance(stmt, ast.ClassDef):
            facts.classes[stmt.name] = _class_facts(stmt, imports)
            for inner in stmt.body:
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    facts.functions[f"{stmt.name}.{inner.name}"] = _function_facts(inner, functions[inner], imports)
    return facts


_LIFESPAN_OWNERS = frozenset(
    {"fastapi.FastAPI", "fastapi.APIRouter", "starlette.applications.Starlette", "starlette.routing.Router"}
)
_NOT_HELPERS = ("sqlalchemy.", "sqlmodel.", "fastapi.", "starlette.", "typing.", "asyncio.", "pydantic.")


def _param_positions(func: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> dict[str, int]:
    params = [*func.args.posonlyargs, *func.args.args]
    if is_method and params and params[0].arg in ("self", "cls"):
        params = params[1:]
    positions = {a.arg: i for i, a in enumerate(params)}
    positions.update({a.arg: -1 for a in func.args.kwonlyargs})
    return positions


def _own_nodes(body: list[ast.stmt]) -> list[ast.AST]:
    """Nodes of a scope's body, without nested functions and classes."""
    nodes: list[ast.AST] = []
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def _collect_dispose(tree: ast.Module, facts: FileFacts) -> None:
    """Receivers of ``.dispose`` (called or handed out as a callback) and names stored
    in attributes, per scope so that parameters and local aliases are told apart."""
    prefix = f"{facts.module}." if facts.module else ""
    methods = {
        id(inner): f"{prefix}{stmt.name}.{inner.name}"
        for stmt in tree.body
        if isinstance(stmt, ast.ClassDef)
        for inner in stmt.body
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    _dispose_in_scope(_own_nodes(tree.body), None, {}, facts)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            qualname = methods.get(id(node), f"{prefix}{node.name}")
            params = _param_positions(node, id(node) in methods)
            _dispose_in_scope(_own_nodes(node.body), qualname, params, facts)


def _dispose_in_scope(nodes: list[ast.AST], qualname: str | None, params: dict[str, int], facts: FileFacts) -> None:
    imports = facts.imports
    aliases: dict[str, str] = {}
    param_aliases: dict[str, str] = {}
    for node in nodes:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        source = dotted_ast(node.value)
        if source is None:
            continue
        if source.split(".", 1)[0] in params:
            if isinstance(target, ast.Name) and source in params:
                param_aliases[target.id] = source
            continue
        resolved = aliases.get(source) or imports.resolve(source)
        if resolved is None:
            continue
        if isinstance(target, ast.Name):
            aliases[target.id] = resolved
        else:
            facts.dispose.stored.add(resolved)
            stored = dotted_ast(target)
            if stored is not None:
                aliases[stored] = resolved
    for node in nodes:
        if not (isinstance(node, ast.Attribute) and node.attr == "dispose"):
            continue
        receiver = dotted_ast(node.value)
        if receiver is None:
            facts.dispose.unresolved = True
            continue
        receiver = receiver.removesuffix(".sync_engine")
        param = param_aliases.get(receiver, receiver if receiver in params else None)
        if param is not None and qualname is not None:
            facts.dispose.params.add((qualname, params[param], param))
            continue
        resolved = aliases.get(receiver)
        if resolved is None and receiver.split(".", 1)[0] not in params:
            resolved = imports.resolve(receiver)
        if resolved is None:
            facts.dispose.unresolved = True
        else:
            facts.dispose.names.add(resolved)


def _defined_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    if type(stmt).__name__ == "TypeAlias":
        return [stmt.name.id]  # type: ignore[attr-defined]
    if isinstance(stmt, (ast.If, ast.Try)):
        names: list[str] = []
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.stmt):
                names.extend(_defined_names(child))
        return names
    return []


class ProjectIndex:
    """Merged facts of every indexed file, queried by qualified name."""

    def __init__(self, files: list[FileFacts]) -> None:
        self.files: dict[str, FileFacts] = {}
        self.by_path: dict[str, FileFacts] = {}
        self._by_last: dict[str, list[str]] = {}
        self.depends: set[str] = set()
        self.uses_asyncio = False
        self.lifespans: set[str] = set()
        for facts in files:
            self.files[facts.module] = facts
            self.by_path[facts.path] = facts
            self._by_last.setdefault(facts.module.rsplit(".", 1)[-1], []).append(facts.module)
            self.depends |= facts.depends
            self.uses_asyncio |= facts.uses_asyncio
            self.lifespans |= facts.lifespans
        self._depends_names = {d.rsplit(".", 1)[-1] for d in self.depends}
        self._disposed: set[str] | None = None
        self._found_modules: dict[str, FileFacts | None] = {}

    def find_module(self, module: str) -> FileFacts | None:
        found = self.files.get(module)
        if found is not None:
            return found
        try:
            return self._found_modules[module]
        except KeyError:
            pass
        last = module.rsplit(".", 1)[-1]
        suffix = "." + module
        candidates = [m for m in self._by_last.get(last, ()) if m.endswith(suffix) or module.endswith("." + m)]
        found = self._found_modules[module] = self.files[candidates[0]] if len(candidates) == 1 else None
        return found

    def _split(self, qualname: str) -> tuple[FileFacts, str] | None:
        module, _, name = qualname.rpartition(".")
        while module:
            facts = self.find_module(module)
            if facts is not None:
                return facts, name
            module, _, head = module.rpartition(".")
            name = f"{head}.{name}"
        return None

    def value(self, qualname: str) -> Value | None:
        found = self._split(qualname)
        if found is None:
            return None
        facts, name = found
        return facts.values.get(name)

    def function(self, qualname: str) -> FunctionFacts | None:
        found = self._split(qualname)
        if found is None:
            return None
        facts, name = found
        return facts.functions.get(name)

    def class_(self, qualname: str) -> tuple[FileFacts, ClassFacts] | None:
        found = self._split(qualname)
        if found is None:
            return None
        facts, name = found
        cls = facts.classes.get(name)
        return (facts, cls) if cls is not None else None

    def is_dependency(self, qualname: str) -> bool:
        if qualname in self.depends:
            return True
        last = qualname.rsplit(".", 1)[-1]
        if last not in self._depends_names:
            return False
        return any(d.endswith("." + last) and (qualname.endswith(d) or d.endswith(qualname)) for d in self.depends)

    def is_lifespan(self, qualname: str) -> bool:
        """Whether the function is passed as ``lifespan=`` to an app or router."""
        if qualname in self.lifespans:
            return True
        return any(
            lifespan.endswith("." + qualname) or qualname.endswith("." + lifespan) for lifespan in self.lifespans
        )

    def symbol(self, qualname: str) -> str:
        """The definition a module-level name stands for, following plain aliases
        (``a = b``) and re-exports (``from .db import engine``), named after the
        defining file's module."""
        seen: set[str] = set()
        while qualname not in seen and len(seen) < 16:
            seen.add(qualname)
            found = self._split(qualname)
            if found is None:
                return qualname
            facts, name = found
            qualname = f"{facts.module}.{name}" if facts.module else name
            value = facts.values.get(name)
            if isinstance(value, NameValue):
                qualname = value.qualname
                continue
            if "." not in name and name in facts.imports.bindings:
                imported = facts.imports.resolve(name)
                if imported is not None and imported != qualname:
                    qualname = imported
                    continue
            return qualname
        return qualname

    def is_disposed(self, qualname: str) -> bool:
        """Whether any code in the project may call ``.dispose()`` on the object bound
        to this module-level name: directly, through an alias, through a helper that
        receives it, or through an attribute it was stored in and that is disposed
        where the analysis cannot name it."""
        target = self.symbol(qualname)
        if self._disposed is None:
            self._disposed = {self.symbol(n) for f in self.files.values() for n in f.dispose.names}
        if target in self._disposed:
            return True
        last = target.rsplit(".", 1)[-1]
        if any(
            self._split(name) is None and name.rsplit(".", 1)[-1] == last for name in self._disposed
        ):
            return True  # disposed through a module the index has not read
        helpers = {(h, pos, name) for f in self.files.values() for h, pos, name in f.dispose.params}
        if helpers:
            by_name = {h.rsplit(".", 1)[-1] for h, _, _ in helpers}
            for facts in self.files.values():
                for callee, key, arg in facts.dispose.passed:
                    last = callee.rsplit(".", 1)[-1].lstrip("?")
                    if last not in by_name or self.symbol(arg) != target:
                        continue
                    for helper, pos, name in helpers:
                        same = (
                            helper.rsplit(".", 1)[-1] == last
                            if callee.startswith("?")
                            else helper in (callee, self.symbol(callee))
                            or helper.endswith("." + callee)
                            or callee.endswith("." + helper)
                        )
                        if same and (key == name or (key == pos and pos >= 0)):
                            return True
        if any(f.dispose.unresolved for f in self.files.values()):
            return any(target == self.symbol(n) for f in self.files.values() for n in f.dispose.stored)
        return False

    def iter_classes(self):  # type: ignore[no-untyped-def]
        for facts in self.files.values():
            for cls in facts.classes.values():
                yield facts, cls
