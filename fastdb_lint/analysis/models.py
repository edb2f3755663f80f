"""Which classes are ORM models: declarative bases, abstract declarative classes,
mapped classes and SQLModel tables, across the whole project.

A class is *mapped* when it inherits (directly or through project classes in any
file) from a declarative base: a ``DeclarativeBase``/``DeclarativeBaseNoMeta``
subclass, the result of ``declarative_base()`` or of a registry's ``generate_base()``,
a class decorated with ``@as_declarative()``/``@<registry>.as_declarative_base()``; or
when it is decorated with ``@<registry>.mapped``; or when it is a SQLModel class
declared with ``table=True``. Classes that set ``__abstract__ = True`` under a base are
*abstract*: part of the hierarchy, but without a table of their own.

The answers come from the project index (:class:`~fastdb_lint.analysis.index.ProjectIndex`)
for classes named by qualified name, and from the LibCST node for a class being linted
(:func:`classify_cst`). A base the analysis cannot see makes the answer UNKNOWN unless
another base already decides it.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.syntax import dotted_cst
from fastdb_lint.analysis.index import CallValue, ClassFacts, FileFacts, LiteralValue, ProjectIndex

if TYPE_CHECKING:
    from fastdb_lint.context import FileContext

DECLARATIVE_ROOTS = frozenset({"sqlalchemy.orm.DeclarativeBase", "sqlalchemy.orm.DeclarativeBaseNoMeta"})
BASE_FACTORIES = frozenset({"sqlalchemy.orm.declarative_base", "sqlalchemy.ext.declarative.declarative_base"})
AS_DECLARATIVE = frozenset({"sqlalchemy.orm.as_declarative", "sqlalchemy.ext.declarative.as_declarative"})
REGISTRY = "sqlalchemy.orm.registry"
SQLMODEL = "sqlmodel.SQLModel"
# Bases that neither make a class part of a declarative hierarchy nor give it a table.
NEUTRAL_BASES = frozenset(
    {
        "typing.Generic",
        "typing.Protocol",
        "abc.ABC",
        "sqlalchemy.orm.MappedAsDataclass",
        "sqlalchemy.ext.asyncio.AsyncAttrs",
    }
)
_MAX_DEPTH = 24


class ClassRole(enum.Enum):
    BASE = "declarative base"
    ABSTRACT = "abstract declarative class"
    MAPPED = "mapped class"
    # A SQLModel class without ``table=True`` (a Pydantic model).
    SQLMODEL_MODEL = "SQLModel model"
    PLAIN = "plain class"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ClassInfo:
    role: ClassRole
    # Mapped through SQLModel (``table=True``): SQLModel names the table itself.
    sqlmodel: bool = False
    # Roles of the class's own bases, in order (``None`` for a base that is not a name).
    base_roles: tuple[ClassRole, ...] = ()

    @property
    def is_mapped(self) -> bool:
        return self.role is ClassRole.MAPPED

    @property
    def in_hierarchy(self) -> bool:
        """Mapped, abstract or a declarative base itself."""
        return self.role in (ClassRole.MAPPED, ClassRole.ABSTRACT, ClassRole.BASE)


_UNKNOWN = ClassInfo(ClassRole.UNKNOWN)
_CACHE: weakref.WeakKeyDictionary[ProjectIndex, ModelIndex] = weakref.WeakKeyDictionary()


class ModelIndex:
    """Model questions about one project, answered once per qualified name."""

    def __init__(self, project: ProjectIndex) -> None:
        self.project = project
        self._roles: dict[str, ClassInfo] = {}
        self._sqlmodel_convention: bool | None = None
        self._by_name: dict[str, list[str]] | None = None

    @classmethod
    def of(cls, project: ProjectIndex) -> ModelIndex:
        found = _CACHE.get(project)
        if found is None:
            found = _CACHE[project] = cls(project)
        return found

    # -- classification -----------------------------------------------------------

    def info(self, qualname: str | None, depth: int = 0) -> ClassInfo:
        """What the class (or class-valued name) ``qualname`` is."""
        if qualname is None or qualname == "?":
            return _UNKNOWN
        if qualname in DECLARATIVE_ROOTS:
            return ClassInfo(ClassRole.BASE)
        if qualname == SQLMODEL:
            return ClassInfo(ClassRole.SQLMODEL_MODEL)
        if qualname in NEUTRAL_BASES:
            return ClassInfo(ClassRole.PLAIN)
        if qualname in self._roles:
            return self._roles[qualname]
        self._roles[qualname] = _UNKNOWN  # recursion guard
        result = _UNKNOWN
        if depth <= _MAX_DEPTH:
            result = self._info(qualname, depth)
        self._roles[qualname] = result
        return result

    def _info(self, qualname: str, depth: int) -> ClassInfo:
        project = self.project
        symbol = project.symbol(qualname)
        if symbol != qualname:
            return self.info(symbol, depth + 1)
        found = project.class_(qualname)
        if found is not None:
            _, cls = found
            abstract = _literal(cls.values.get("__abstract__")) is True
            return self.classify(cls.bases, keywords=cls.keywords, decorators=cls.decorators, abstract=abstract, depth=depth + 1)
        value = project.value(qualname)
        if isinstance(value, CallValue) and self.is_base_factory_call(value):
            return ClassInfo(ClassRole.BASE)
        return _UNKNOWN

    def is_base_factory_call(self, value: CallValue) -> bool:
        """``declarative_base(...)`` or ``<registry>.generate_base(...)``."""
        callee = value.callee
        if callee is None:
            return False
        if callee in BASE_FACTORIES:
            return True
        owner, _, method = callee.rpartition(".")
        return method == "generate_base" and self.is_registry(owner)

    def is_registry(self, qualname: str) -> bool:
        value = self.project.value(self.project.symbol(qualname))
        return isinstance(value, CallValue) and value.callee == REGISTRY

    def classify(
        self,
        bases: Sequence[str | None],
        *,
        keywords: Mapping[str, str] | None = None,
        decorators: Sequence[str] = (),
        abstract: bool = False,
        depth: int = 0,
    ) -> ClassInfo:
        """Role of a class with these base qualified names, class keywords and decorators."""
        keywords = keywords or {}
        base_infos = [self.info(b, depth) for b in bases]
        base_roles = tuple(i.role for i in base_infos)
        for decorator in decorators:
            owner, _, method = decorator.rpartition(".")
            if decorator in AS_DECLARATIVE or (method == "as_declarative_base" and self.is_registry(owner)):
                return ClassInfo(ClassRole.BASE, base_roles=base_roles)
            if method in ("mapped", "mapped_as_dataclass") and self.is_registry(owner):
                return ClassInfo(ClassRole.ABSTRACT if abstract else ClassRole.MAPPED, base_roles=base_roles)
        if any(b in DECLARATIVE_ROOTS for b in bases):
            return ClassInfo(ClassRole.BASE, base_roles=base_roles)
        if any(r in (ClassRole.BASE, ClassRole.ABSTRACT, ClassRole.MAPPED) for r in base_roles):
            sqlmodel = any(i.sqlmodel for i in base_infos)
            return ClassInfo(ClassRole.ABSTRACT if abstract else ClassRole.MAPPED, sqlmodel, base_roles)
        if ClassRole.SQLMODEL_MODEL in base_roles:
            if keywords.get("table") == "True":
                return ClassInfo(ClassRole.MAPPED, True, base_roles)
            if ClassRole.UNKNOWN in base_roles or "table" in keywords:
                return ClassInfo(ClassRole.UNKNOWN, base_roles=base_roles)
            return ClassInfo(ClassRole.SQLMODEL_MODEL, base_roles=base_roles)
        if ClassRole.UNKNOWN in base_roles or decorators:
            return ClassInfo(ClassRole.UNKNOWN, base_roles=base_roles)
        return ClassInfo(ClassRole.PLAIN, base_roles=base_roles)

    # -- questions ----------------------------------------------------------------

    def is_mapped(self, qualname: str) -> bool:
        """Whether the class named ``qualname`` is a mapped class (SQLModel tables included)."""
        return self.info(qualname).is_mapped

    def is_declarative_base(self, qualname: str) -> bool:
        return self.info(qualname).role is ClassRole.BASE

    def mapped_classes(self) -> Iterator[tuple[str, FileFacts, ClassFacts]]:
        """Every mapped class of the project: (qualified name, file facts, class facts)."""
        for facts in list(self.project.files.values()):
            prefix = f"{facts.module}." if facts.module else ""
            for cls in facts.classes.values():
                qualname = prefix + cls.name
                if self.is_mapped(qualname):
                    yield qualname, facts, cls

    def mapped_by_name(self, name: str) -> list[str]:
        """Qualified names of the mapped classes called ``name`` (the class name a
        ``relationship("Name")`` or a ``Mapped["Name"]`` refers to)."""
        if self._by_name is None:
            self._by_name = {}
            for qualname, _, cls in self.mapped_classes():
                self._by_name.setdefault(cls.name, []).append(qualname)
        return list(self._by_name.get(name.rsplit(".", 1)[-1], ()))

    def provides(
        self, qualname: str | None, names: Iterable[str], *, outside: Iterable[str] = (), depth: int = 0
    ) -> bool | None:
        """Whether the class ``qualname`` or one of its ancestors defines one of ``names``
        in its body (assignment or method, e.g. a ``declared_attr`` ``__tablename__``);
        None when an ancestor cannot be seen. Classes in ``outside`` count as not
        defining them."""
        wanted = frozenset(names)
        excluded = frozenset(outside)
        if qualname is None or qualname == "?" or depth > _MAX_DEPTH:
            return None
        if qualname in DECLARATIVE_ROOTS or qualname in NEUTRAL_BASES or qualname in excluded:
            return False
        project = self.project
        symbol = project.symbol(qualname)
        found = project.class_(symbol)
        if found is not None:
            facts, cls = found
            if wanted & cls.body_names or any(f"{cls.name}.{n}" in facts.functions for n in wanted):
                return True
            answers = [self.provides(b, wanted, outside=excluded, depth=depth + 1) for b in cls.bases]
            if True in answers:
                return True
            return None if None in answers else False
        value = project.value(symbol)
        if isinstance(value, CallValue) and self.is_base_factory_call(value):
            mixin = value.keywords.get("cls")
            if mixin is None:
                return None if "cls" in value.keyword_names or value.has_splat else False
            return self.provides(mixin, wanted, outside=excluded, depth=depth + 1)
        return None

    @property
    def sqlmodel_naming_convention(self) -> bool:
        """Whether some file sets ``SQLModel.metadata.naming_convention``."""
        if self._sqlmodel_convention is None:
            self._sqlmodel_convention = any(f.sqlmodel_naming_convention for f in self.project.files.values())
        return self._sqlmodel_convention


def is_mapped_class(project: ProjectIndex, qualname: str) -> bool:
    """Whether the class named ``qualname`` is mapped (see :class:`ModelIndex`)."""
    return ModelIndex.of(project).is_mapped(qualname)


def _literal(value: object) -> object:
    return value.value if isinstance(value, LiteralValue) else None


# -- the class being linted --------------------------------------------------------


def class_bases_cst(node: cst.ClassDef, ctx: FileContext) -> list[str | None]:
    """Qualified names of a class's bases (``None`` for what the analysis cannot name)."""
    bases: list[str | None] = []
    for arg in node.bases:
        value = arg.value.value if isinstance(arg.value, cst.Subscript) else arg.value
        bases.append(ctx.qualname(value))
    return bases


def body_statements(node: cst.ClassDef) -> list[cst.BaseSmallStatement | cst.BaseCompoundStatement]:
    """The class body's statements, small statements of a line taken one by one."""
    body = node.body
    if isinstance(body, cst.SimpleStatementSuite):
        return list(body.body)
    out: list[cst.BaseSmallStatement | cst.BaseCompoundStatement] = []
    for stmt in body.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            out.extend(stmt.body)
        else:
            out.append(stmt)
    return out


def body_assignments(node: cst.ClassDef) -> dict[str, cst.BaseExpression | None]:
    """Names assigned (or defined as methods) in the class body and their values."""
    out: dict[str, cst.BaseExpression | None] = {}
    for stmt in body_statements(node):
        if isinstance(stmt, cst.Assign):
            for target in stmt.targets:
                if isinstance(target.target, cst.Name):
                    out[target.target.value] = stmt.value
        elif isinstance(stmt, cst.AnnAssign) and isinstance(stmt.target, cst.Name):
            out[stmt.target.value] = stmt.value
        elif isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            out[stmt.name.value] = None
    return out


def classify_cst(node: cst.ClassDef, ctx: FileContext) -> ClassInfo:
    """Role of a class statement of the file being linted."""
    keywords: dict[str, str] = {}
    for arg in node.keywords:
        if arg.keyword is None:
            continue
        value = arg.value
        if isinstance(value, cst.Name) and value.value in ("True", "False", "None"):
            keywords[arg.keyword.value] = value.value
        else:
            keywords[arg.keyword.value] = ctx.qualname(value) or "?"
    decorators: list[str] = []
    for decorator in node.decorators:
        expr = decorator.decorator
        target = expr.func if isinstance(expr, cst.Call) else expr
        decorators.append(ctx.qualname(target) or dotted_cst(target) or "?")
    abstract_value = body_assignments(node).get("__abstract__")
    abstract = isinstance(abstract_value, cst.Name) and abstract_value.value == "True"
    return ModelIndex.of(ctx.project).classify(
        class_bases_cst(node, ctx), keywords=keywords, decorators=decorators, abstract=abstract
    )
