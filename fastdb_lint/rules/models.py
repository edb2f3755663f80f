"""FDB5xx: models and schema."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.preconditions import last_names
from fastdb_lint.analysis.alembic import is_env_file, is_migration_file
from fastdb_lint.analysis.models import (
    AS_DECLARATIVE,
    BASE_FACTORIES,
    DECLARATIVE_ROOTS,
    REGISTRY,
    SQLMODEL,
    ClassInfo,
    ClassRole,
    ModelIndex,
    body_assignments,
    class_bases_cst,
    classify_cst,
)
from fastdb_lint.analysis.syntax import string_value, type_from_cst
from fastdb_lint.analysis.typeexpr import TypeExpr
from fastdb_lint.diagnostics import FixAvailability
from fastdb_lint.fixes import FixBuilder, parse_expression
from fastdb_lint.rules.base import Invalid, ProjectTerms, Rule, Valid

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape
    from fastdb_lint.context import FileContext

_COLUMN = frozenset({"sqlalchemy.Column", "sqlmodel.Column"})
_MAPPED_COLUMN = "sqlalchemy.orm.mapped_column"
_COLUMNS = _COLUMN | {_MAPPED_COLUMN}
_FOREIGN_KEY = frozenset({"sqlalchemy.ForeignKey", "sqlmodel.ForeignKey"})
_METADATA = frozenset({"sqlalchemy.MetaData", "sqlmodel.MetaData"})
_SQLMODEL_FIELD = "sqlmodel.Field"
_TABLE = frozenset({"sqlalchemy.Table", "sqlmodel.Table"})
_INDEX = frozenset({"sqlalchemy.Index", "sqlmodel.Index"})
_CONSTRAINTS = frozenset(
    {"sqlalchemy.UniqueConstraint", "sqlalchemy.PrimaryKeyConstraint", "sqlmodel.UniqueConstraint", "sqlmodel.PrimaryKeyConstraint"}
)
_RELATIONSHIP = frozenset({"sqlalchemy.orm.relationship", "sqlalchemy.orm.relation"})


# Names a file's shape must hold for the rules to find something (see `applies`).
_METADATA_CALLS = last_names(_METADATA)
_DECLARATIVE_CALLS = last_names(BASE_FACTORIES | AS_DECLARATIVE | {REGISTRY})
_DECLARATIVE_ROOT_NAMES = last_names(DECLARATIVE_ROOTS)
_SQLMODEL_NAMES = last_names(frozenset({SQLMODEL}))
_BASE_FACTORY_CALLS = last_names(BASE_FACTORIES)
_COLUMN_CALLS = last_names(_COLUMN)
_COLUMNS_CALLS = last_names(_COLUMNS)
_FIELD_CALL = _SQLMODEL_FIELD.rsplit(".", 1)[-1]
_RELATIONSHIP_CALLS = last_names(_RELATIONSHIP)
_TEMPORAL_NAMES = frozenset({"datetime", "date"})
# `@<registry>.mapped` maps a class that has no base (see ModelIndex.classify).
_MAPPING_DECORATORS = frozenset({"mapped", "mapped_as_dataclass"})


def _may_map_a_class(shape: FileShape, project: ProjectTerms) -> bool:
    """Whether a class of the file can be mapped: one decorated by a registry, or one
    named in a model hierarchy or with a base that is ``SQLModel`` or a project class
    (or value) of a hierarchy: every chain of bases that maps a class goes through one
    of these, named by its own name or, through an import ``as``, its original one. (A
    mapped top-level class of an indexed file is itself in the hierarchy, which covers
    bases reached through a module that re-exports them under another name.)"""
    if not _MAPPING_DECORATORS.isdisjoint(shape.names):
        return True
    hierarchy = project.model_bases | _SQLMODEL_NAMES
    return any(not hierarchy.isdisjoint(names) for names in shape.class_bases)


NAMING_CONVENTION_NAME = "NAMING_CONVENTION"
_NAMING_CONVENTION_ITEMS = (
    ("ix", "ix_%(column_0_label)s"),
    ("uq", "uq_%(table_name)s_%(column_0_name)s"),
    ("ck", "ck_%(table_name)s_%(constraint_name)s"),
    ("fk", "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"),
    ("pk", "pk_%(table_name)s"),
)


# -- small helpers on LibCST nodes ---------------------------------------------------


def _keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((a for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def _has_splat(call: cst.Call) -> bool:
    return any(a.star for a in call.args)


def _positional(call: cst.Call) -> list[cst.Arg]:
    return [a for a in call.args if a.keyword is None and not a.star]


def _literal_bool(expr: cst.BaseExpression) -> bool | None:
    if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
        return expr.value == "True"
    return None


def _string(expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        value = string_value(expr) if isinstance(expr, cst.SimpleString) else expr.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _class_of_statement(ctx_stack: list[cst.CSTNode], index: int) -> cst.ClassDef | None:
    """The class whose body directly holds the small statement at ``ctx_stack[index]``."""
    if index < 0:
        index += len(ctx_stack)
    if index >= 3 and isinstance(ctx_stack[index - 1], cst.SimpleStatementLine):
        block, owner = ctx_stack[index - 2], ctx_stack[index - 3]
        if isinstance(block, cst.IndentedBlock) and isinstance(owner, cst.ClassDef):
            return owner
    if index >= 2 and isinstance(ctx_stack[index - 1], cst.SimpleStatementSuite):
        owner = ctx_stack[index - 2]
        if isinstance(owner, cst.ClassDef):
            return owner
    return None


def _assignment_target(stmt: cst.CSTNode) -> str | None:
    if isinstance(stmt, cst.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0].target, cst.Name):
        return stmt.targets[0].target.value
    if isinstance(stmt, cst.AnnAssign) and isinstance(stmt.target, cst.Name):
        return stmt.target.value
    return None


class _ModelRule(Rule):
    """Shared bookkeeping: the role of every class statement met (computed once).
    Alembic migrations and env files are left alone: their throw-away models and
    metadata are frozen history, not the application's schema."""

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._class_infos: dict[int, ClassInfo] = {}
        self._assigned: dict[int, dict[str, cst.BaseExpression | None]] = {}
        if self.in_alembic():
            self.disabled = True

    def class_info(self, node: cst.ClassDef) -> ClassInfo:
        info = self._class_infos.get(id(node))
        if info is None:
            info = self._class_infos[id(node)] = classify_cst(node, self.ctx)
        return info

    def assigned(self, node: cst.ClassDef) -> dict[str, cst.BaseExpression | None]:
        """``body_assignments(node)``, computed once per class (not to be modified)."""
        found = self._assigned.get(id(node))
        if found is None:
            found = self._assigned[id(node)] = body_assignments(node)
        return found

    def in_alembic(self) -> bool:
        return is_migration_file(self.ctx) or is_env_file(self.ctx)

    def class_attribute(self, offset: int = 0) -> tuple[cst.ClassDef, str, cst.Assign | cst.AnnAssign] | None:
        """When the node ``offset`` levels above the current one is the value of a
        class-body assignment: (class, attribute name, assignment)."""
        stack = self.ctx.stack
        value_index = len(stack) - 1 - offset
        if value_index < 1:
            return None
        stmt = stack[value_index - 1]
        if not isinstance(stmt, (cst.Assign, cst.AnnAssign)) or stmt.value is not stack[value_index]:
            return None
        name = _assignment_target(stmt)
        owner = _class_of_statement(stack, value_index - 1)
        if name is None or owner is None:
            return None
        return owner, name, stmt


# -- FDB501 ------------------------------------------------------------------------


def _naming_convention_text(newline: str, indent: str) -> str:
    lines = [f"{NAMING_CONVENTION_NAME} = {{"]
    lines.extend(f'{indent}"{key}": "{value}",' for key, value in _NAMING_CONVENTION_ITEMS)
    lines.append("}")
    return newline.join(lines) + newline


def add_naming_convention_constant(ctx: FileContext, fix: FixBuilder) -> FixBuilder:
    """Define ``NAMING_CONVENTION`` at module level (before the top-level statement being
    visited) unless the module already binds that name."""
    if NAMING_CONVENTION_NAME in ctx.imports.local_defs or NAMING_CONVENTION_NAME in ctx.imports.bindings:
        return fix
    if any(isinstance(e.content, str) and e.content.lstrip().startswith(f"{NAMING_CONVENTION_NAME} =") for e in fix.edits):
        return fix
    top = ctx.stack[1] if len(ctx.stack) > 1 else None
    if top is None:
        return fix.fail()
    newline = ctx.source.newline
    text = _naming_convention_text(newline, ctx.module.default_indent)
    last_import: cst.SimpleStatementLine | None = None
    for stmt in ctx.module.body:
        if stmt is top:
            break
        if isinstance(stmt, cst.SimpleStatementLine) and any(
            isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
        ):
            last_import = stmt
    if last_import is not None:
        return fix.insert_line_after(last_import, newline + text)
    return fix.insert_line_before(top, text + newline)


class MissingNamingConvention(_ModelRule):
    """
    ## What it does
    Flags metadata without a naming convention: a `MetaData(...)` call without
    `naming_convention=`, a `declarative_base()`/`@as_declarative()`/`registry()` call
    without `metadata=`, a `class Base(DeclarativeBase)` that sets neither `metadata`
    nor `registry`, and SQLModel table models in a project that never sets
    `SQLModel.metadata.naming_convention`.

    ## Why is this bad?
    Without a naming convention, constraints and indexes are named by the database
    (or not at all): Alembic autogenerate cannot drop or alter them reliably, and names
    differ between environments. The guideline is `class Base(DeclarativeBase)` with
    `metadata = MetaData(naming_convention=...)` so every name is deterministic.

    ## Example
    ```python
    class Base(DeclarativeBase):
        pass
    ```

    ## Use instead
    ```python
    NAMING_CONVENTION = {
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }


    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)
    ```

    A Base whose `metadata` is a name bound (anywhere in the project) to a
    `MetaData(naming_convention=...)` is fine; one bound to a `MetaData(...)` without a
    convention is reported once, at that call. A `metadata` the analysis cannot follow
    (a function result, a third-party object) is not reported. For SQLModel, the
    finding is on the first `table=True` model of each file, unless some file of the
    project assigns `SQLModel.metadata.naming_convention`. `MetaData()` created inside
    a function, in Alembic migrations or in test files (throw-away tables, reflection)
    is not reported.

    ## Fix safety
    Unsafe: the fix adds `naming_convention=NAMING_CONVENTION` (or
    `metadata=MetaData(naming_convention=NAMING_CONVENTION)`, or a `metadata` class
    attribute) and a module constant with the `ix/uq/ck/fk/pk` conventions. Constraint
    names change for new migrations, so existing databases need a migration that
    renames them. SQLModel findings have no fix.
    """

    code = "FDB501"
    name = "missing-naming-convention"
    summary = "Metadata without a naming convention"
    fix = FixAvailability.UNSAFE
    triggers = ("MetaData", "declarative_base", "DeclarativeBase", "registry", "as_declarative", "SQLModel", "sqlmodel", "table=")
    skip_test_files = True
    valid = [
        Valid(
            "from sqlalchemy import MetaData\n"
            "from sqlalchemy.orm import DeclarativeBase\n"
            "\n"
            'NAMING_CONVENTION = {"ix": "ix_%(column_0_label)s", "pk": "pk_%(table_name)s"}\n'
            "\n"
            "class Base(DeclarativeBase):\n"
            "    metadata = MetaData(naming_convention=NAMING_CONVENTION)\n"
        ),
        # A Base whose metadata is a name bound elsewhere in the project to a MetaData with a convention.
        Valid(
            "from sqlalchemy.orm import DeclarativeBase\n"
            "from app.meta import metadata_obj\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            "    metadata = metadata_obj\n",
            files={
                "app/meta.py": "from sqlalchemy import MetaData\n"
                "metadata_obj = MetaData(naming_convention={\"pk\": \"pk_%(table_name)s\"})\n"
            },
        ),
        Valid(
            "from sqlalchemy.orm import declarative_base\n"
            "from app.meta import metadata_obj\n"
            "Base = declarative_base(metadata=metadata_obj)\n",
            files={
                "app/meta.py": "from sqlalchemy import MetaData\n"
                "metadata_obj = MetaData(naming_convention={\"pk\": \"pk_%(table_name)s\"})\n"
            },
        ),
        # SQLModel: the convention is set on SQLModel.metadata somewhere in the project.
        Valid(
            "from sqlmodel import Field, SQLModel\n"
            "\n"
            "class Hero(SQLModel, table=True):\n"
            "    id: int | None = Field(default=None, primary_key=True)\n",
            files={
                "app/db.py": "from sqlmodel import SQLModel\n"
                "SQLModel.metadata.naming_convention = {\"pk\": \"pk_%(table_name)s\"}\n"
            },
        ),
        Valid(
            "from sqlmodel import Field, SQLModel\n"
            'SQLModel.metadata.naming_convention = {"pk": "pk_%(table_name)s"}\n'
            "\n"
            "class Hero(SQLModel, table=True):\n"
            "    id: int | None = Field(default=None, primary_key=True)\n"
        ),
        # SQLModel models that are not tables.
        Valid(
            "from sqlmodel import SQLModel\n"
            "\n"
            "class HeroCreate(SQLModel):\n"
            "    name: str\n"
        ),
        # A metadata the analysis cannot follow.
        Valid(
            "from sqlalchemy.orm import DeclarativeBase\n"
            "from shared.db import metadata\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            "    metadata = metadata\n"
        ),
        Valid("from sqlalchemy import MetaData\nmetadata = MetaData(**options)\n"),
        # A registry() on a Base that sets its own metadata.
        Valid(
            "from sqlalchemy import MetaData\n"
            "from sqlalchemy.orm import DeclarativeBase, registry\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            '    metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s"})\n'
            "    registry = registry(type_annotation_map={})\n"
        ),
        # Throw-away metadata in an Alembic migration.
        Valid(
            "import sqlalchemy as sa\n"
            "from alembic import op\n"
            'revision = "0002"\n'
            "def upgrade():\n"
            '    table = sa.Table("user", sa.MetaData(), sa.Column("id", sa.Integer))\n'
            "    op.bulk_insert(table, [])\n",
            path="migrations/versions/0002_data.py",
        ),
        # A Base that inherits its metadata from a project mixin.
        Valid(
            "from sqlalchemy.orm import DeclarativeBase\n"
            "from app.mixins import MetadataMixin\n"
            "\n"
            "class Base(MetadataMixin, DeclarativeBase):\n"
            "    pass\n",
            files={
                "app/mixins.py": "from sqlalchemy import MetaData\n"
                "class MetadataMixin:\n"
                '    metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s"})\n'
            },
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import MetaData\n"
            "\n"
            "metadata = MetaData()\n",
            fixed="from sqlalchemy import MetaData\n"
            "\n"
            "NAMING_CONVENTION = {\n"
            '    "ix": "ix_%(column_0_label)s",\n'
            '    "uq": "uq_%(table_name)s_%(column_0_name)s",\n'
            '    "ck": "ck_%(table_name)s_%(constraint_name)s",\n'
            '    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",\n'
            '    "pk": "pk_%(table_name)s",\n'
            "}\n"
            "\n"
            "metadata = MetaData(naming_convention=NAMING_CONVENTION)\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy.orm import DeclarativeBase\n"
            "\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n",
            fixed="from sqlalchemy.orm import DeclarativeBase\n"
            "from sqlalchemy import MetaData\n"
            "\n"
            "NAMING_CONVENTION = {\n"
            '    "ix": "ix_%(column_0_label)s",\n'
            '    "uq": "uq_%(table_name)s_%(column_0_name)s",\n'
            '    "ck": "ck_%(table_name)s_%(constraint_name)s",\n'
            '    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",\n'
            '    "pk": "pk_%(table_name)s",\n'
            "}\n"
            "\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            "    metadata = MetaData(naming_convention=NAMING_CONVENTION)\n",
            line=4,
        ),
        # Reported at the MetaData call, not again at the class.
        Invalid(
            "import sqlalchemy as sa\n"
            "from sqlalchemy.orm import DeclarativeBase\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            '    metadata = sa.MetaData(schema="app")\n',
            fixed="import sqlalchemy as sa\n"
            "from sqlalchemy.orm import DeclarativeBase\n"
            "\n"
            "NAMING_CONVENTION = {\n"
            '    "ix": "ix_%(column_0_label)s",\n'
            '    "uq": "uq_%(table_name)s_%(column_0_name)s",\n'
            '    "ck": "ck_%(table_name)s_%(constraint_name)s",\n'
            '    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",\n'
            '    "pk": "pk_%(table_name)s",\n'
            "}\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            '    metadata = sa.MetaData(schema="app", naming_convention=NAMING_CONVENTION)\n',
            line=5,
        ),
        Invalid(
            "from sqlalchemy.orm import declarative_base\n"
            "\n"
            "Base = declarative_base()\n",
            fixed="from sqlalchemy.orm import declarative_base\n"
            "from sqlalchemy import MetaData\n"
            "\n"
            "NAMING_CONVENTION = {\n"
            '    "ix": "ix_%(column_0_label)s",\n'
            '    "uq": "uq_%(table_name)s_%(column_0_name)s",\n'
            '    "ck": "ck_%(table_name)s_%(constraint_name)s",\n'
            '    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",\n'
            '    "pk": "pk_%(table_name)s",\n'
            "}\n"
            "\n"
            "Base = declarative_base(metadata=MetaData(naming_convention=NAMING_CONVENTION))\n",
            line=3,
        ),
        # The MetaData bound to the Base's metadata is reported where it is created.
        Invalid(
            "from sqlalchemy import MetaData\n"
            "from sqlalchemy.orm import declarative_base\n"
            "\n"
            "metadata = MetaData()\n"
            "Base = declarative_base(metadata=metadata)\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy.orm import registry\n"
            "\n"
            "mapper_registry = registry()\n"
            "Base = mapper_registry.generate_base()\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy.ext.declarative import as_declarative\n"
            "\n"
            "@as_declarative()\n"
            "class Base:\n"
            "    pass\n",
            line=3,
        ),
        Invalid(
            "from sqlmodel import Field, SQLModel\n"
            "\n"
            "class Hero(SQLModel, table=True):\n"
            "    id: int | None = Field(default=None, primary_key=True)\n"
            "\n"
            "class Team(SQLModel, table=True):\n"
            "    id: int | None = Field(default=None, primary_key=True)\n",
            line=3,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # `declarative_base()`, `as_declarative()`, `registry()` anywhere, `MetaData()`
        # outside functions (a lambda's body counts as outside); a class under
        # `DeclarativeBase`; a SQLModel table: `table=True` on a class in a hierarchy or
        # under `SQLModel`, or a class with a SQLModel table and a SQLModel model (both
        # possibly from other files, named by the project's terms) among its bases.
        if not _DECLARATIVE_CALLS.isdisjoint(shape.calls) or not _DECLARATIVE_ROOT_NAMES.isdisjoint(shape.bases):
            return True
        if not (_METADATA_CALLS.isdisjoint(shape.module_calls) and _METADATA_CALLS.isdisjoint(shape.lambda_calls)):
            return True
        sqlmodel = project.model_bases | _SQLMODEL_NAMES
        if "table" in shape.keywords and any(not sqlmodel.isdisjoint(names) for names in shape.class_bases):
            return True
        return any(sum(base in sqlmodel for base in names[1:]) >= 2 for names in shape.class_bases)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._sqlmodel_reported = False

    def _constant(self, fix: FixBuilder) -> FixBuilder:
        return add_naming_convention_constant(self.ctx, fix)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        callee = ctx.callee(node)
        if callee is None or _has_splat(node):
            return
        if callee in _METADATA:
            if _keyword(node, "naming_convention") is not None or len(_positional(node)) >= 3:
                return
            if not ctx.at_module_level():
                # Metadata made inside a function is for reflection or throw-away tables.
                return
            fix = ctx.fix("Add `naming_convention=NAMING_CONVENTION`", unsafe=True)
            fix.set_keyword(node, "naming_convention", NAMING_CONVENTION_NAME)
            ctx.report(node, "`MetaData()` without a `naming_convention`: constraint names are not deterministic", self._constant(fix))
            return
        if callee in BASE_FACTORIES or callee in AS_DECLARATIVE:
            if _keyword(node, "metadata") is not None or len(_positional(node)) >= 2:
                return
            if callee in AS_DECLARATIVE and self._decorated_class_sets("metadata", "registry"):
                return
            what = "`@as_declarative()`" if callee in AS_DECLARATIVE else "`declarative_base()`"
        elif callee == REGISTRY:
            if _keyword(node, "metadata") is not None or _positional(node):
                return
            attribute = self.class_attribute()
            if attribute is not None and "metadata" in body_assignments(attribute[0]):
                return
            what = "`registry()`"
        else:
            return
        fix = ctx.fix("Pass `metadata=MetaData(naming_convention=NAMING_CONVENTION)`", unsafe=True)
        fix.set_keyword(node, "metadata", f"MetaData(naming_convention={NAMING_CONVENTION_NAME})")
        fix.add_import("sqlalchemy", "MetaData")
        ctx.report(node, f"{what} without a `metadata=` that sets a naming convention", self._constant(fix))

    def _decorated_class_sets(self, *names: str) -> bool:
        """Whether the class decorated by the call being visited sets one of ``names``."""
        for ancestor in self.ctx.ancestors():
            if isinstance(ancestor, cst.ClassDef):
                assigned = body_assignments(ancestor)
                return any(n in assigned for n in names)
            if not isinstance(ancestor, cst.Decorator):
                return False
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        ctx = self.ctx
        bases = class_bases_cst(node, ctx)
        if any(b in DECLARATIVE_ROOTS for b in bases):
            assigned = body_assignments(node)
            if "metadata" in assigned or "registry" in assigned:
                return
            models = ModelIndex.of(ctx.project)
            for base in bases:
                if base in DECLARATIVE_ROOTS:
                    continue
                if models.provides(base, ("metadata", "registry")) is not False:
                    return
            fix = ctx.fix("Set `metadata = MetaData(naming_convention=NAMING_CONVENTION)`", unsafe=True)
            self._add_metadata_attribute(node, fix)
            fix.add_import("sqlalchemy", "MetaData")
            ctx.report(node, "Declarative base without `metadata = MetaData(naming_convention=...)`", self._constant(fix))
            return
        if self._sqlmodel_reported:
            return
        info = self.class_info(node)
        if not (info.is_mapped and info.sqlmodel) or ClassRole.SQLMODEL_MODEL not in info.base_roles:
            return
        models = ModelIndex.of(ctx.project)
        facts = ctx.facts
        if models.sqlmodel_naming_convention or (facts is not None and facts.sqlmodel_naming_convention):
            return
        if any(models.provides(b, ("metadata",), outside=(SQLMODEL,)) is not False for b in bases):
            return
        self._sqlmodel_reported = True
        ctx.report(node, "SQLModel tables without a naming convention: set `SQLModel.metadata.naming_convention`")

    def _add_metadata_attribute(self, node: cst.ClassDef, fix: FixBuilder) -> None:
        ctx = self.ctx
        line = f"metadata = MetaData(naming_convention={NAMING_CONVENTION_NAME})"
        body = node.body
        if isinstance(body, cst.SimpleStatementSuite):
            # ``class Base(DeclarativeBase): ...``
            if len(body.body) == 1 and _is_placeholder_small(body.body[0]):
                fix.replace(body.body[0], line)
            else:
                fix.fail()
            return
        statements = list(body.body)
        first = statements[0]
        if _is_docstring_statement(first) and len(statements) > 1:
            first = statements[1]
        if isinstance(first, cst.SimpleStatementLine) and len(first.body) == 1 and _is_placeholder_small(first.body[0]):
            fix.replace(first.body[0], line)
            return
        own_indent = body.indent if body.indent is not None else ctx.module.default_indent
        indent = _block_indent(ctx) + own_indent
        if _is_docstring_statement(first):
            fix.insert_line_after(first, indent + line + ctx.source.newline)
            return
        # A decorated method's position starts at ``def``, after its decorators.
        decorators = first.decorators if isinstance(first, (cst.FunctionDef, cst.ClassDef)) else ()
        fix.insert_before(decorators[0] if decorators else first, line + ctx.source.newline + indent)


def _is_docstring_small(stmt: cst.BaseSmallStatement) -> bool:
    return isinstance(stmt, cst.Expr) and isinstance(stmt.value, (cst.SimpleString, cst.ConcatenatedString))


def _is_docstring_statement(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and _is_docstring_small(stmt.body[0])


def _is_placeholder_small(small: cst.BaseSmallStatement) -> bool:
    """``pass`` or ``...``."""
    return isinstance(small, cst.Pass) or (isinstance(small, cst.Expr) and isinstance(small.value, cst.Ellipsis))


def _block_indent(ctx: FileContext) -> str:
    """The indentation of the statements of the innermost block around the visited node."""
    return "".join(
        b.indent if b.indent is not None else ctx.module.default_indent
        for b in ctx.stack
        if isinstance(b, cst.IndentedBlock)
    )


# -- FDB502 ------------------------------------------------------------------------


class LegacyDeclarativeBase(_ModelRule):
    """
    ## What it does
    Flags `Base = declarative_base(...)` (from `sqlalchemy.orm` or the legacy
    `sqlalchemy.ext.declarative`).

    ## Why is this bad?
    SQLAlchemy 2.0 declares the base as `class Base(DeclarativeBase)`: type checkers
    understand it, `Mapped[...]` annotations drive the columns, and the base is where
    the `metadata` with its naming convention and the `type_annotation_map` live (the
    guideline's typed-models setup). `declarative_base()` is a legacy function whose
    result type checkers cannot follow.

    ## Example
    ```python
    Base = declarative_base(metadata=metadata)
    ```

    ## Use instead
    ```python
    class Base(DeclarativeBase):
        metadata = metadata
    ```

    ## Fix safety
    Safe: the fix rewrites a module-level `Base = declarative_base(...)` into a class
    carrying `metadata=` and `type_annotation_map=` over as class attributes and `cls=`
    as a base class, and imports `DeclarativeBase`. Calls with positional arguments,
    `**kwargs`, or other arguments (`class_registry`, `metaclass`, `mapper`,
    `constructor`, a `name=` that differs from the target) are reported without a fix.
    """

    code = "FDB502"
    name = "legacy-declarative-base"
    summary = "Legacy `declarative_base()` instead of `class Base(DeclarativeBase)`"
    fix = FixAvailability.SAFE
    triggers = ("declarative_base",)
    valid = [
        Valid("from sqlalchemy.orm import DeclarativeBase\n\nclass Base(DeclarativeBase):\n    pass\n"),
        # A project function that happens to be called declarative_base.
        Valid("from app.db import declarative_base\nBase = declarative_base()\n"),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import declarative_base\n"
            "\n"
            "Base = declarative_base()\n",
            fixed="from sqlalchemy.orm import declarative_base, DeclarativeBase\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n",
            line=3,
        ),
        Invalid(
            "from sqlalchemy import MetaData\n"
            "from sqlalchemy.ext.declarative import declarative_base\n"
            "from app.mixins import ReprMixin\n"
            "\n"
            "metadata = MetaData(naming_convention={})\n"
            "Base = declarative_base(metadata=metadata, cls=ReprMixin)  # the base\n",
            fixed="from sqlalchemy import MetaData\n"
            "from sqlalchemy.ext.declarative import declarative_base\n"
            "from app.mixins import ReprMixin\n"
            "from sqlalchemy.orm import DeclarativeBase\n"
            "\n"
            "metadata = MetaData(naming_convention={})\n"
            "class Base(ReprMixin, DeclarativeBase):\n"
            "    metadata = metadata  # the base\n",
            line=6,
        ),
        Invalid(
            "from sqlalchemy.orm import DeclarativeBase, declarative_base\n"
            "Base = declarative_base(class_registry=registry_dict)\n",
        ),
        Invalid(
            "import sqlalchemy.orm as orm\n"
            "def make_base():\n"
            "    return orm.declarative_base()\n",
        ),
    ]

    _CARRIED = ("metadata", "type_annotation_map")

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return not _BASE_FACTORY_CALLS.isdisjoint(shape.calls)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        if ctx.callee(node) not in BASE_FACTORIES:
            return
        fix = ctx.fix("Declare `class Base(DeclarativeBase)`")
        self._build_fix(node, fix)
        ctx.report(node, "`declarative_base()` is legacy: declare `class Base(DeclarativeBase)`", fix)

    def _build_fix(self, node: cst.Call, fix: FixBuilder) -> None:
        ctx = self.ctx
        stack = ctx.stack
        stmt = stack[-2] if len(stack) >= 2 else None
        line = stack[-3] if len(stack) >= 3 else None
        if (
            not isinstance(stmt, (cst.Assign, cst.AnnAssign))
            or stmt.value is not node
            or not isinstance(line, cst.SimpleStatementLine)
            or len(line.body) != 1
            or not ctx.at_module_level()
            or len(stack) != 4
        ):
            fix.fail()
            return
        target = _assignment_target(stmt)
        if target is None or _positional(node) or _has_splat(node):
            fix.fail()
            return
        bases: list[str] = []
        attributes: list[str] = []
        for arg in node.args:
            assert arg.keyword is not None
            keyword = arg.keyword.value
            code = ctx.module.code_for_node(arg.value)
            if keyword in self._CARRIED:
                attributes.append(f"{keyword} = {code}")
            elif keyword == "cls":
                if not (isinstance(arg.value, cst.Name) and arg.value.value == "object"):
                    bases.append(code)
            elif keyword == "name" and _string(arg.value) == target:
                continue
            else:
                fix.fail()
                return
        bases.append("DeclarativeBase")
        indent = ctx.module.default_indent
        newline = ctx.source.newline
        body = (newline + indent).join(attributes) if attributes else "pass"
        fix.replace(stmt, f"class {target}({', '.join(bases)}):{newline}{indent}{body}")
        fix.add_import("sqlalchemy.orm", "DeclarativeBase")


# -- FDB503 ------------------------------------------------------------------------

# Column type (canonical qualified name, or last name for dialect types) -> (module, name)
# of the Python type; module "" for builtins.
_PY_TYPES: dict[str, tuple[str, str]] = {}
for _names, _py in (
    (("Integer", "SmallInteger", "BigInteger", "INTEGER", "INT", "SMALLINT", "BIGINT"), ("", "int")),
    (("String", "Text", "Unicode", "UnicodeText", "VARCHAR", "CHAR", "NVARCHAR", "NCHAR", "TEXT", "CLOB"), ("", "str")),
    (("Boolean", "BOOLEAN"), ("", "bool")),
    (("DateTime", "DATETIME", "TIMESTAMP"), ("datetime", "datetime")),
    (("Date", "DATE"), ("datetime", "date")),
    (("Time", "TIME"), ("datetime", "time")),
    (("Interval",), ("datetime", "timedelta")),
    (("Float", "REAL", "FLOAT", "Double", "DOUBLE", "DOUBLE_PRECISION"), ("", "float")),
    (("Numeric", "NUMERIC", "DECIMAL"), ("decimal", "Decimal")),
    (("Uuid", "UUID"), ("uuid", "UUID")),
    (("JSON",), ("", "dict")),
    (("LargeBinary", "BLOB", "BINARY", "VARBINARY"), ("", "bytes")),
):
    for _name in _names:
        _PY_TYPES[f"sqlalchemy.{_name}"] = _py
        _PY_TYPES[f"sqlmodel.{_name}"] = _py
for _name, _py in (("UUID", ("uuid", "UUID")), ("JSON", ("", "dict")), ("JSONB", ("", "dict"))):
    _PY_TYPES[f"postgresql.{_name}"] = _py


def _column_type(ctx: FileContext, call: cst.Call) -> tuple[str, str] | None:
    """The Python type of a ``Column(...)``'s SQL type, as (module, name), or None."""
    positional = _positional(call)
    if positional and _string(positional[0].value) is not None:
        positional = positional[1:]
    type_arg = _keyword(call, "type_")
    expr = type_arg.value if type_arg is not None else (positional[0].value if positional else None)
    if expr is None:
        return None
    type_call = expr if isinstance(expr, cst.Call) else None
    qual = ctx.qualname(type_call.func if type_call is not None else expr)
    if qual is None:
        return None
    if qual.startswith("sqlalchemy.dialects.postgresql."):
        key = "postgresql." + qual.rsplit(".", 1)[-1]
    else:
        key = qual
    py = _PY_TYPES.get(key)
    if py is None:
        return None
    if type_call is not None:
        option = "as_uuid" if py == ("uuid", "UUID") else "asdecimal" if py in (("decimal", "Decimal"), ("", "float")) else None
        arg = _keyword(type_call, option) if option else None
        if arg is not None:
            flag = _literal_bool(arg.value)
            if flag is None:
                return None
            if option == "as_uuid" and not flag:
                return ("", "str")
            if option == "asdecimal":
                return ("decimal", "Decimal") if flag else ("", "float")
    return py


def _nullable(call: cst.Call) -> bool | None:
    """Whether ``Column(...)`` is nullable (its default: unless it is a primary key)."""
    nullable = _keyword(call, "nullable")
    if nullable is not None:
        return _literal_bool(nullable.value)
    primary_key = _keyword(call, "primary_key")
    if primary_key is not None:
        flag = _literal_bool(primary_key.value)
        return None if flag is None else not flag
    return True


def python_type_reference(ctx: FileContext, fix: FixBuilder, module: str, name: str) -> str | None:
    """Code naming ``module.name`` in the file being fixed, adding the import it needs."""
    if not module:
        return name
    wanted = f"{module}.{name}"
    if ctx.imports.resolve(name) == wanted:
        return name
    if ctx.imports.resolve(module) == module:
        return wanted
    if module == "uuid":
        fix.add_module_import("uuid")
        return wanted
    fix.add_import(module, name)
    return name


class UntypedColumn(_ModelRule):
    """
    ## What it does
    Flags `name = Column(...)` in the body of a mapped class (one that inherits from a
    declarative base, in this file or another).

    ## Why is this bad?
    SQLAlchemy 2.0 models are typed: `name: Mapped[int] = mapped_column(...)` tells type
    checkers (and readers) what the attribute holds and whether it can be `None`, and
    lets the annotation drive nullability. A bare `Column` is typed as `Column[Any]` on
    the instance: the guideline asks for typed columns.

    ## Example
    ```python
    class User(Base):
        __tablename__ = "user"
        id = Column(Integer, primary_key=True)
        email = Column(String(255))
    ```

    ## Use instead
    ```python
    class User(Base):
        __tablename__ = "user"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        email: Mapped[str | None] = mapped_column(String(255))
    ```

    Not flagged: imperative mappings (`__table__ = Table(...)`), `Column` inside
    `Table(...)`, and mixins or abstract classes that are not mapped themselves.

    ## Fix safety
    Unsafe: the fix rewrites the statement to `name: Mapped[T] = mapped_column(...)`
    keeping every argument, with `T` from the column type (Integer->int,
    String/Text/Unicode->str, Boolean->bool, DateTime->datetime, Date->date,
    Float->float, Numeric->Decimal, UUID->uuid.UUID, JSON->dict, LargeBinary->bytes)
    and `T | None` when the column is nullable, and adds the imports. The annotation
    becomes part of the mapping (an `Optional` the code relied on being absent, type
    checking of existing code). Columns whose type is unknown, or whose
    `nullable`/`primary_key` is not a literal, get no fix.
    """

    code = "FDB503"
    name = "untyped-column"
    summary = "Untyped `Column()` in a mapped class"
    fix = FixAvailability.UNSAFE
    triggers = ("Column",)
    valid = [
        Valid(
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class User(Base):\n"
            '    __tablename__ = "user"\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        ),
        # Imperative mapping.
        Valid(
            "from sqlalchemy import Column, Integer, Table\n"
            "from app.db import Base\n"
            "class User(Base):\n"
            '    __table__ = Table("user", Base.metadata, Column("id", Integer, primary_key=True))\n',
            files={"app/db.py": "from sqlalchemy.orm import DeclarativeBase\nclass Base(DeclarativeBase):\n    pass\n"},
        ),
        # Column inside Table(...).
        Valid(
            "from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table\n"
            "metadata = MetaData()\n"
            'user_group = Table("user_group", metadata, Column("user_id", Integer, ForeignKey("user.id")))\n'
        ),
        # A mixin that is not mapped.
        Valid(
            "from sqlalchemy import Column, DateTime, func\n"
            "class TimestampMixin:\n"
            "    created_at = Column(DateTime, server_default=func.now())\n"
        ),
        # An abstract class is not mapped either.
        Valid(
            "from sqlalchemy import Column, Integer\n"
            "from sqlalchemy.orm import DeclarativeBase\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Model(Base):\n"
            "    __abstract__ = True\n"
            "    id = Column(Integer, primary_key=True)\n"
        ),
        # A class whose base is not known to be declarative.
        Valid(
            "from sqlalchemy import Column, Integer\n"
            "from thirdparty import Model\n"
            "class User(Model):\n"
            "    id = Column(Integer, primary_key=True)\n"
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import Column, Integer, String\n"
            "from sqlalchemy.orm import DeclarativeBase\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "\n"
            "class User(Base):\n"
            '    __tablename__ = "user"\n'
            "    id = Column(Integer, primary_key=True)\n"
            "    name = Column(String(50), nullable=False)  # display name\n"
            "    bio = Column(String)\n",
            fixed="from sqlalchemy import Column, Integer, String\n"
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "\n"
            "class User(Base):\n"
            '    __tablename__ = "user"\n'
            "    id: Mapped[int] = mapped_column(Integer, primary_key=True)\n"
            "    name: Mapped[str] = mapped_column(String(50), nullable=False)  # display name\n"
            "    bio: Mapped[str | None] = mapped_column(String)\n",
            count=3,
            line=9,
        ),
        # The Base lives in another file; datetime, Decimal and uuid types get their imports.
        Invalid(
            "import sqlalchemy as sa\n"
            "from app.db import Base\n"
            "\n"
            "class Order(Base):\n"
            '    __tablename__ = "order"\n'
            "    id = sa.Column(sa.Uuid, primary_key=True)\n"
            "    placed_at = sa.Column(sa.DateTime(timezone=True), nullable=False)\n"
            "    total = sa.Column(sa.Numeric(12, 2))\n",
            fixed="import sqlalchemy as sa\n"
            "from app.db import Base\n"
            "from sqlalchemy.orm import Mapped, mapped_column\n"
            "import uuid\n"
            "from datetime import datetime\n"
            "from decimal import Decimal\n"
            "\n"
            "class Order(Base):\n"
            '    __tablename__ = "order"\n'
            "    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)\n"
            "    placed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)\n"
            "    total: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))\n",
            count=3,
            files={"app/db.py": "from sqlalchemy.orm import declarative_base\nBase = declarative_base()\n"},
        ),
        # Unknown type: reported without a fix.
        Invalid(
            "from sqlalchemy import Column, Enum\n"
            "from sqlalchemy.orm import as_declarative\n"
            "@as_declarative()\n"
            "class Base:\n"
            "    pass\n"
            "class Ticket(Base):\n"
            '    __tablename__ = "ticket"\n'
            "    state = Column(Enum(State))\n",
            line=8,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # `name = Column(...)` directly in a class body.
        return not _COLUMN_CALLS.isdisjoint(shape.class_assigned_calls) and _may_map_a_class(shape, project)

    def visit_Assign(self, node: cst.Assign) -> None:
        ctx = self.ctx
        if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return
        name = node.targets[0].target.value
        value = node.value
        if name.startswith("__") or not isinstance(value, cst.Call) or ctx.callee(value) not in _COLUMN:
            return
        owner = _class_of_statement(ctx.stack, -1)
        if owner is None:
            return
        info = self.class_info(owner)
        if not info.is_mapped or info.sqlmodel or "__table__" in self.assigned(owner):
            return
        ctx.report(node, f"Untyped column `{name}`: declare `{name}: Mapped[...] = mapped_column(...)`", self._fix(node, name, value))

    def _fix(self, node: cst.Assign, name: str, call: cst.Call) -> FixBuilder:
        ctx = self.ctx
        fix = ctx.fix(f"Declare `{name}: Mapped[...] = mapped_column(...)`", unsafe=True)
        py = _column_type(ctx, call)
        nullable = _nullable(call)
        if py is None or nullable is None or name in (py[0], py[1]):
            return fix.fail()
        fix.add_import("sqlalchemy.orm", "Mapped").add_import("sqlalchemy.orm", "mapped_column")
        reference = python_type_reference(ctx, fix, *py)
        if reference is None or fix.failed:
            return fix.fail()
        owner = _class_of_statement(ctx.stack, -1)
        if owner is not None and reference.split(".", 1)[0] in self.assigned(owner):
            # The class body rebinds the name the annotation needs.
            return fix.fail()
        annotation = f"Mapped[{reference} | None]" if nullable else f"Mapped[{reference}]"
        new = cst.AnnAssign(
            target=node.targets[0].target,
            annotation=cst.Annotation(parse_expression(annotation)),
            value=call.with_changes(func=cst.Name("mapped_column")),
            equal=cst.AssignEqual(),
            semicolon=node.semicolon,
        )
        return fix.replace(node, new)


# -- FDB504 ------------------------------------------------------------------------


class MissingTablename(_ModelRule):
    """
    ## What it does
    Flags a class that inherits directly from the declarative base (or from an
    abstract class under it) but sets none of `__tablename__`, `__table__` or
    `__abstract__ = True`.

    ## Why is this bad?
    SQLAlchemy refuses to map such a class ("does not have a __table__ or
    __tablename__ specified"); when a `__tablename__` is generated implicitly, the
    table name depends on the class name, so renaming the class renames the table. The
    guideline asks for an explicit `__tablename__`.

    ## Example
    ```python
    class Comment(Base):
        id: Mapped[int] = mapped_column(primary_key=True)
    ```

    ## Use instead
    ```python
    class Comment(Base):
        __tablename__ = "comment"
        id: Mapped[int] = mapped_column(primary_key=True)
    ```

    Not flagged: subclasses of another mapped class (single-table inheritance),
    mixins, SQLModel models (SQLModel names the table), and classes where the base or
    a mixin supplies `__tablename__` (a `declared_attr`) or where a base cannot be seen
    by the analysis.

    ## Fix safety
    No fix: the table name is a decision.
    """

    code = "FDB504"
    name = "missing-tablename"
    summary = "Mapped class without `__tablename__`"
    valid = [
        Valid(
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Employee(Base):\n"
            '    __tablename__ = "employee"\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            "    type: Mapped[str]\n"
            '    __mapper_args__ = {"polymorphic_on": "type"}\n'
            "class Manager(Employee):\n"
            '    __mapper_args__ = {"polymorphic_identity": "manager"}\n'
        ),
        # Mixins.
        Valid(
            "from sqlalchemy.orm import Mapped, mapped_column\n"
            "class TimestampMixin:\n"
            "    created_at: Mapped[int] = mapped_column()\n"
        ),
        Valid(
            "from sqlalchemy.orm import DeclarativeBase\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Model(Base):\n"
            "    __abstract__ = True\n"
        ),
        # The base generates __tablename__.
        Valid(
            "from sqlalchemy.orm import as_declarative, declared_attr\n"
            "@as_declarative()\n"
            "class Base:\n"
            "    @declared_attr\n"
            "    def __tablename__(cls) -> str:\n"
            "        return cls.__name__.lower()\n"
            "class Item(Base):\n"
            "    pass\n"
        ),
        Valid(
            "from app.db import Base\n"
            "from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID\n"
            "class User(SQLAlchemyBaseUserTableUUID, Base):\n"
            "    pass\n",
            files={"app/db.py": "from sqlalchemy.orm import DeclarativeBase\nclass Base(DeclarativeBase):\n    pass\n"},
        ),
        Valid(
            "from sqlmodel import Field, SQLModel\n"
            "class Hero(SQLModel, table=True):\n"
            "    id: int | None = Field(default=None, primary_key=True)\n"
        ),
        Valid(
            "from sqlalchemy import Column, Integer, MetaData, Table\n"
            "from sqlalchemy.orm import DeclarativeBase\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class User(Base):\n"
            '    __table__ = Table("user", Base.metadata, Column("id", Integer, primary_key=True))\n'
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Comment(Base):\n"
            "    id: Mapped[int] = mapped_column(primary_key=True)\n",
            line=4,
        ),
        Invalid(
            "from sqlalchemy import Column, Integer\n"
            "from app.models.base import Model\n"
            "class Comment(Model):\n"
            "    id = Column(Integer, primary_key=True)\n",
            files={
                "app/db.py": "from sqlalchemy.orm import declarative_base\nBase = declarative_base()\n",
                "app/models/base.py": "from sqlalchemy.orm import declared_attr\n"
                "from app.db import Base\n"
                "class Model(Base):\n"
                "    __abstract__ = True\n",
            },
            line=3,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # A class without a table of its own, named in a hierarchy or with a base that is
        # a declarative base or an abstract class (`DeclarativeBase` itself only under
        # `@<registry>.mapped`): see `_may_map_a_class`.
        hierarchy = project.model_bases
        if not _MAPPING_DECORATORS.isdisjoint(shape.names):
            hierarchy = hierarchy | _DECLARATIVE_ROOT_NAMES
        tableless = shape.tableless_classes
        return any(names[0] in tableless and not hierarchy.isdisjoint(names) for names in shape.class_bases)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        info = self.class_info(node)
        if not info.is_mapped or info.sqlmodel:
            return
        roles = info.base_roles
        if ClassRole.MAPPED in roles or not any(r in (ClassRole.BASE, ClassRole.ABSTRACT) for r in roles):
            return
        assigned = body_assignments(node)
        if "__tablename__" in assigned or "__table__" in assigned:
            return
        if "__abstract__" in assigned:
            abstract = assigned["__abstract__"]
            if not (isinstance(abstract, cst.Name) and abstract.value == "False"):
                return
        models = ModelIndex.of(self.ctx.project)
        for base in class_bases_cst(node, self.ctx):
            if models.provides(base, ("__tablename__", "__table__")) is not False:
                return
        self.ctx.report(node, f"Mapped class `{node.name.value}` has no `__tablename__`")


# -- FDB505 ------------------------------------------------------------------------


@dataclass
class _FkColumn:
    call: cst.Call
    names: set[str]
    # The call the fix gives ``index=True`` (the column, or the SQLModel ``Field``).
    target: cst.Call


@dataclass
class _ClassColumns:
    node: cst.ClassDef
    columns: list[_FkColumn] = field(default_factory=list)


def _first_column_of(ctx: FileContext, call: cst.Call) -> str | None:
    """Column name (or attribute name) that an Index/UniqueConstraint/PrimaryKeyConstraint
    call puts first."""
    callee = ctx.callee(call)
    positional = _positional(call)
    if callee in _INDEX:
        positional = positional[1:]
    elif callee not in _CONSTRAINTS:
        return None
    if not positional:
        return None
    expr = positional[0].value
    text = _string(expr)
    if text is not None:
        return text
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    return None


class ForeignKeyWithoutIndex(_ModelRule):
    """
    ## What it does
    Flags a column with a `ForeignKey` (or a SQLModel `Field(foreign_key=...)`) that
    has no `index=True`, `unique=True` or `primary_key=True`, and no `Index`,
    `UniqueConstraint` or `PrimaryKeyConstraint` (in `__table_args__`, in the
    `Table(...)`, or an `Index` on the column elsewhere in the file) whose first column
    is it.

    ## Why is this bad?
    PostgreSQL does not index foreign keys: joins on them and the `ON DELETE` checks of
    the referenced table scan the whole table. The guideline: index foreign keys.

    ## Example
    ```python
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    ```

    ## Use instead
    ```python
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    ```

    Not flagged: a column that is the first column of a composite primary key, unique
    constraint or index; an explicit `index=False` (a decision); a class whose
    `__table_args__` the analysis cannot read; Alembic migrations.

    ## Fix safety
    Unsafe: the fix adds `index=True`; the index exists only after a migration creates
    it.
    """

    code = "FDB505"
    name = "foreign-key-without-index"
    summary = "Foreign key column without an index"
    fix = FixAvailability.UNSAFE
    triggers = ("ForeignKey", "foreign_key")
    valid = [
        Valid(
            "from sqlalchemy import ForeignKey\n"
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Post(Base):\n"
            '    __tablename__ = "post"\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            '    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)\n'
            '    slug_id: Mapped[int] = mapped_column(ForeignKey("slug.id"), unique=True)\n'
        ),
        # Composite primary key that includes it first.
        Valid(
            "from sqlalchemy import Column, ForeignKey, Integer, PrimaryKeyConstraint\n"
            "from sqlalchemy.orm import DeclarativeBase\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Membership(Base):\n"
            '    __tablename__ = "membership"\n'
            '    user_id = Column(Integer, ForeignKey("user.id"))\n'
            '    group_id = Column(Integer, ForeignKey("group.id"), index=True)\n'
            '    __table_args__ = (PrimaryKeyConstraint("user_id", "group_id"),)\n'
        ),
        Valid(
            "from sqlalchemy import ForeignKey, Index, UniqueConstraint\n"
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Vote(Base):\n"
            '    __tablename__ = "vote"\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            '    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))\n'
            '    post_id: Mapped[int] = mapped_column(ForeignKey("post.id"))\n'
            "    __table_args__ = (\n"
            '        UniqueConstraint("user_id", "post_id"),\n'
            '        Index("ix_vote_post", "post_id"),\n'
            "    )\n"
        ),
        Valid(
            "from sqlalchemy import ForeignKey\n"
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Child(Base):\n"
            '    __tablename__ = "child"\n'
            '    id: Mapped[int] = mapped_column(ForeignKey("parent.id"), primary_key=True)\n'
        ),
        Valid(
            "from sqlalchemy import Column, ForeignKey, Integer, Table\n"
            "from app.db import metadata\n"
            "user_group = Table(\n"
            '    "user_group",\n'
            "    metadata,\n"
            '    Column("user_id", Integer, ForeignKey("user.id"), primary_key=True),\n'
            '    Column("group_id", Integer, ForeignKey("group.id"), primary_key=True),\n'
            ")\n"
        ),
        # Index declared after the class.
        Valid(
            "from sqlalchemy import ForeignKey, Index\n"
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Post(Base):\n"
            '    __tablename__ = "post"\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            '    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"))\n'
            'Index("ix_post_author", Post.author_id, Post.id)\n'
        ),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy import Column, ForeignKey, Integer\n"
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Post(Base):\n"
            '    __tablename__ = "post"\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            '    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"))\n'
            '    editor_id = Column(Integer, ForeignKey("user.id"), nullable=True)\n',
            fixed="from sqlalchemy import Column, ForeignKey, Integer\n"
            "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Post(Base):\n"
            '    __tablename__ = "post"\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            '    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)\n'
            '    editor_id = Column(Integer, ForeignKey("user.id"), nullable=True, index=True)\n',
            count=2,
            line=8,
        ),
        # Second column of a composite key.
        Invalid(
            "from sqlalchemy import Column, ForeignKey, Integer, PrimaryKeyConstraint\n"
            "from sqlalchemy.orm import DeclarativeBase\n"
            "class Base(DeclarativeBase):\n"
            "    pass\n"
            "class Membership(Base):\n"
            '    __tablename__ = "membership"\n'
            '    user_id = Column(Integer, ForeignKey("user.id"))\n'
            '    group_id = Column(Integer, ForeignKey("group.id"))\n'
            '    __table_args__ = (PrimaryKeyConstraint("user_id", "group_id"),)\n',
            line=8,
        ),
        Invalid(
            "from sqlalchemy import Column, ForeignKey, Integer, Table\n"
            "from app.db import metadata\n"
            'audit = Table("audit", metadata, Column("id", Integer, primary_key=True), Column("user_id", ForeignKey("user.id")))\n',
            fixed="from sqlalchemy import Column, ForeignKey, Integer, Table\n"
            "from app.db import metadata\n"
            'audit = Table("audit", metadata, Column("id", Integer, primary_key=True), Column("user_id", ForeignKey("user.id"), index=True))\n',
        ),
        Invalid(
            "from sqlmodel import Field, SQLModel\n"
            "class Item(SQLModel, table=True):\n"
            "    id: int | None = Field(default=None, primary_key=True)\n"
            '    owner_id: int = Field(foreign_key="user.id")\n',
            fixed="from sqlmodel import Field, SQLModel\n"
            "class Item(SQLModel, table=True):\n"
            "    id: int | None = Field(default=None, primary_key=True)\n"
            '    owner_id: int = Field(foreign_key="user.id", index=True)\n',
            line=4,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # A column with a positional `ForeignKey(...)`, or a `Field(foreign_key=...)` in
        # a SQLModel table, without an index, a unique or primary key flag, or splats.
        found = shape.unindexed_foreign_keys
        if not _COLUMNS_CALLS.isdisjoint(found):
            return True
        return _FIELD_CALL in found and _may_map_a_class(shape, project)

    def __init__(self, ctx: FileContext) -> None:
        super().__init__(ctx)
        self._classes: list[_ClassColumns] = []
        # (owner name, column) pairs covered by an Index/constraint outside a class body.
        self._covered: set[tuple[str, str]] = set()
        self._pending: list[tuple[str, _FkColumn]] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(_ClassColumns(node))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        frame = self._classes.pop()
        if not frame.columns:
            return
        covered = self._table_args_columns(original_node)
        if covered is None:
            return
        for column in frame.columns:
            if not column.names & covered:
                self._pending.append((original_node.name.value, column))

    def _table_args_columns(self, node: cst.ClassDef) -> set[str] | None:
        """First columns of the indexes and constraints in ``__table_args__`` (None when
        the analysis cannot read it)."""
        assigned = body_assignments(node)
        if "__table_args__" not in assigned:
            return set()
        value = assigned["__table_args__"]
        if isinstance(value, cst.Dict):
            return set()
        if not isinstance(value, (cst.Tuple, cst.List)):
            return None
        covered: set[str] = set()
        for element in value.elements:
            if isinstance(element.value, cst.Call):
                first = _first_column_of(self.ctx, element.value)
                if first is not None:
                    covered.add(first)
            elif not isinstance(element.value, cst.Dict):
                return None
        return covered

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        callee = ctx.callee(node)
        if callee is None:
            return
        if callee in _INDEX or callee in _CONSTRAINTS:
            self._record_index(node)
            return
        if callee == _SQLMODEL_FIELD:
            self._sqlmodel_field(node)
            return
        if callee not in _COLUMNS:
            return
        if not any(isinstance(a.value, cst.Call) and ctx.callee(a.value) in _FOREIGN_KEY for a in _positional(node)):
            return
        if not self._unindexed(node):
            return
        name = _string(_positional(node)[0].value) if _positional(node) else None
        attribute = self.class_attribute()
        if attribute is None:
            # Column(...) handed to a sqlmodel Field(sa_column=...)
            attribute = self._sa_column_attribute()
        if attribute is not None:
            owner, attr, _ = attribute
            if not self._in_model(owner):
                return
            names = {attr} | ({name} if name else set())
            self._add(owner, _FkColumn(node, names, node))
            return
        table = self._table_call()
        if table is None or name is None:
            return
        covered = {_first_column_of(ctx, a.value) for a in table.args if isinstance(a.value, cst.Call)}
        if name in covered:
            return
        owner_name = self._assigned_name()
        self._pending.append((owner_name or "", _FkColumn(node, {name}, node)))

    def _sqlmodel_field(self, node: cst.Call) -> None:
        if _keyword(node, "foreign_key") is None or not self._unindexed(node):
            return
        attribute = self.class_attribute()
        if attribute is None:
            return
        owner, attr, _ = attribute
        info = self.class_info(owner)
        if not (info.is_mapped and info.sqlmodel):
            return
        self._add(owner, _FkColumn(node, {attr}, node))

    def _add(self, owner: cst.ClassDef, column: _FkColumn) -> None:
        for frame in reversed(self._classes):
            if frame.node is owner:
                frame.columns.append(column)
                return

    def _in_model(self, owner: cst.ClassDef) -> bool:
        return self.class_info(owner).role in (ClassRole.MAPPED, ClassRole.ABSTRACT)

    def _unindexed(self, call: cst.Call) -> bool:
        """No index/unique/primary key on the column itself (silent when unknown)."""
        if _has_splat(call):
            return False
        for keyword in ("index", "unique", "primary_key"):
            arg = _keyword(call, keyword)
            if arg is None:
                continue
            flag = _literal_bool(arg.value)
            if flag is None or flag or keyword == "index":
                return False
        return True

    def _sa_column_attribute(self) -> tuple[cst.ClassDef, str, cst.Assign | cst.AnnAssign] | None:
        stack = self.ctx.stack
        if len(stack) < 3:
            return None
        arg, field_call = stack[-2], stack[-3]
        if not (isinstance(arg, cst.Arg) and arg.keyword is not None and arg.keyword.value == "sa_column"):
            return None
        if not (isinstance(field_call, cst.Call) and self.ctx.callee(field_call) == _SQLMODEL_FIELD):
            return None
        return self.class_attribute(offset=2)

    def _table_call(self) -> cst.Call | None:
        stack = self.ctx.stack
        if len(stack) >= 3 and isinstance(stack[-2], cst.Arg) and isinstance(stack[-3], cst.Call):
            if self.ctx.callee(stack[-3]) in _TABLE:
                return stack[-3]
        return None

    def _assigned_name(self) -> str | None:
        stack = self.ctx.stack
        if len(stack) >= 4 and isinstance(stack[-4], (cst.Assign, cst.AnnAssign)):
            return _assignment_target(stack[-4])
        return None

    def _record_index(self, node: cst.Call) -> None:
        """An Index/constraint outside ``__table_args__`` naming ``Owner.column`` first."""
        positional = _positional(node)
        if self.ctx.callee(node) in _INDEX:
            positional = positional[1:]
        if not positional:
            return
        expr = positional[0].value
        if isinstance(expr, cst.Attribute):
            # ``Model.column``, ``table.c.column``, ``Model.__table__.c.column``
            inner: cst.BaseExpression = expr
            while isinstance(inner, cst.Attribute):
                inner = inner.value
            if isinstance(inner, cst.Name):
                self._covered.add((inner.value, expr.attr.value))

    def finish(self) -> None:
        for owner, column in self._pending:
            if any((owner, n) in self._covered for n in column.names):
                continue
            fix = self.ctx.fix("Add `index=True`", unsafe=True).set_keyword(column.target, "index", "True")
            label = "/".join(sorted(column.names))
            self.ctx.report(column.call, f"Foreign key column `{label}` has no index", fix)


# -- FDB506 ------------------------------------------------------------------------

_NAIVE_NOW = frozenset({"datetime.datetime.utcnow", "datetime.datetime.now", "datetime.datetime.today"})
_NAIVE_NOW_NAMES = last_names(_NAIVE_NOW)


def _naive_values(keywords: tuple[str, ...]) -> frozenset[str]:
    """The ``FileShape.keyword_values`` entries of what `_naive` reads as naive: the
    functions, calls of them (of `now` only without arguments), lambdas returning
    such a call."""
    return frozenset(
        f"{keyword}={name}{suffix}"
        for keyword in keywords
        for name in _NAIVE_NOW_NAMES
        for suffix in ("", "()", "(...)")
        if not (name == "now" and suffix == "(...)")
    )


_NAIVE_DEFAULTS = _naive_values(("default", "insert_default"))
_NAIVE_FACTORIES = _naive_values(("default_factory",))


class NaiveDatetimeDefault(_ModelRule):
    """
    ## What it does
    Flags `default=datetime.utcnow`, `default=datetime.now`, `default=datetime.utcnow()`
    (and `datetime.today`, lambdas calling them, `insert_default=`) on a `Column` or
    `mapped_column`, and `Field(default_factory=datetime.utcnow)` in SQLModel.

    ## Why is this bad?
    These produce naive timestamps from the application server's clock:
    `datetime.utcnow` is deprecated, naive values compare wrongly with aware ones, and
    every app server's clock (and time zone) leaks into the data; `datetime.utcnow()`
    (called) is even evaluated once, at import. The guideline: timestamps with time
    zone and `server_default=func.now()`, so the database clock decides.

    ## Example
    ```python
    created_at = Column(DateTime, default=datetime.utcnow)
    ```

    ## Use instead
    ```python
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ```

    Not flagged: `server_default=func.now()`, and aware defaults such as
    `default=lambda: datetime.now(timezone.utc)`.

    ## Fix safety
    Unsafe: the fix replaces the keyword by `server_default=func.now()` (or removes it
    when a `server_default` is already set) and imports `func`: the value now comes
    from the database, is only known after a flush, and changes the schema (a
    migration follows). SQLModel `Field` findings have no fix.
    """

    code = "FDB506"
    name = "naive-datetime-default"
    summary = "Naive application-clock datetime default on a column"
    fix = FixAvailability.UNSAFE
    triggers = ("datetime",)
    valid = [
        Valid(
            "from datetime import datetime\n"
            "from sqlalchemy import Column, DateTime, func\n"
            "created_at = Column(DateTime(timezone=True), server_default=func.now())\n"
        ),
        Valid(
            "from datetime import datetime, timezone\n"
            "from sqlalchemy import DateTime\n"
            "from sqlalchemy.orm import Mapped, mapped_column\n"
            "class Event:\n"
            "    created_at: Mapped[datetime] = mapped_column(\n"
            "        DateTime(timezone=True), default=lambda: datetime.now(timezone.utc)\n"
            "    )\n"
        ),
        # Not a column.
        Valid("from datetime import datetime\ndef stamp(default=datetime.utcnow):\n    return default()\n"),
    ]
    invalid = [
        Invalid(
            "from datetime import datetime\n"
            "from sqlalchemy import Column, DateTime\n"
            "created_at = Column(DateTime, default=datetime.utcnow)\n",
            fixed="from datetime import datetime\n"
            "from sqlalchemy import Column, DateTime, func\n"
            "created_at = Column(DateTime, server_default=func.now())\n",
        ),
        Invalid(
            "import datetime\n"
            "import sqlalchemy as sa\n"
            "from sqlalchemy.orm import Mapped, mapped_column\n"
            "class Event:\n"
            "    created_at: Mapped[datetime.datetime] = mapped_column(\n"
            "        default=datetime.datetime.utcnow(),\n"
            "    )\n"
            "    updated_at: Mapped[datetime.datetime] = mapped_column(default=lambda: datetime.datetime.now(), server_default=sa.func.now())\n",
            fixed="import datetime\n"
            "import sqlalchemy as sa\n"
            "from sqlalchemy.orm import Mapped, mapped_column\n"
            "from sqlalchemy import func\n"
            "class Event:\n"
            "    created_at: Mapped[datetime.datetime] = mapped_column(\n"
            "        server_default=func.now(),\n"
            "    )\n"
            "    updated_at: Mapped[datetime.datetime] = mapped_column(server_default=sa.func.now())\n",
            count=2,
            line=6,
        ),
        Invalid(
            "from datetime import datetime\n"
            "from sqlmodel import Field, SQLModel\n"
            "class Hero(SQLModel, table=True):\n"
            "    created_at: datetime = Field(default_factory=datetime.utcnow)\n",
            line=4,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        calls, values = shape.calls, shape.keyword_values
        if not _COLUMNS_CALLS.isdisjoint(calls) and not _NAIVE_DEFAULTS.isdisjoint(values):
            return True
        # `Field(default_factory=...)` in a SQLModel table.
        return _FIELD_CALL in calls and not _NAIVE_FACTORIES.isdisjoint(values) and _may_map_a_class(shape, project)

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        callee = ctx.callee(node)
        if callee is None:
            return
        if callee == _SQLMODEL_FIELD:
            # Only fields of table models are columns (other SQLModel classes are schemas).
            attribute = self.class_attribute()
            if attribute is None:
                return
            info = self.class_info(attribute[0])
            if not (info.is_mapped and info.sqlmodel):
                return
            keywords = ("default_factory",)
        elif callee in _COLUMNS:
            keywords = ("default", "insert_default")
        else:
            return
        for arg in node.args:
            if arg.keyword is None or arg.keyword.value not in keywords or not self._naive(arg.value):
                continue
            message = f"`{arg.keyword.value}=` gives a naive application-clock timestamp: use `server_default=func.now()`"
            if callee == _SQLMODEL_FIELD:
                ctx.report(arg, message)
                continue
            fix = ctx.fix("Use `server_default=func.now()`", unsafe=True)
            if _keyword(node, "server_default") is not None:
                fix.remove_keyword(node, arg.keyword.value)
            else:
                fix.replace(arg.keyword, "server_default").replace(arg.value, "func.now()")
                fix.add_import("sqlalchemy", "func")
            ctx.report(arg, message, fix)

    def _naive(self, expr: cst.BaseExpression) -> bool:
        ctx = self.ctx
        if isinstance(expr, cst.Lambda):
            expr = expr.body
            if not isinstance(expr, cst.Call):
                return False
        if isinstance(expr, cst.Call):
            callee = ctx.qualname(expr.func)
            if callee == "datetime.datetime.now":
                return not expr.args
            return callee in _NAIVE_NOW
        return ctx.qualname(expr) in _NAIVE_NOW


# -- FDB507 ------------------------------------------------------------------------

_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_SINGULAR_S = frozenset(
    {
        "news", "series", "species", "analytics", "physics", "economics", "mathematics", "statistics",
        "politics", "ethics", "logistics", "genetics", "gas", "alias", "canvas", "atlas", "bias", "lens",
        "corps", "chaos", "kudos", "ethos", "cosmos", "pathos", "thermos", "yes", "has", "was", "its",
        "this", "plus", "sms", "gps", "dns", "aws", "cms", "ios", "macos", "os",
    }
)


def plural_word(word: str) -> bool:
    """Whether ``word`` looks like an English plural (precision first)."""
    if not word.endswith("s") or word in _SINGULAR_S:
        return False
    if word.endswith(("ss", "us", "is")):
        return False
    if not any(ch in "aeiouy" for ch in word[:-1]):
        return False
    return len(word) > 2


class TablenameConvention(_ModelRule):
    """
    ## What it does
    Flags a `__tablename__` that is not lowercase snake_case or whose last word is
    plural (`Posts`, `posts`, `user_roles`).

    ## Why is this bad?
    A house style (opt-in): singular snake_case table names read naturally in SQL
    (`post.author_id`), match the class name, and avoid quoting mixed-case identifiers
    on PostgreSQL.

    ## Example
    ```python
    __tablename__ = "Posts"
    ```

    ## Use instead
    ```python
    __tablename__ = "post"
    ```

    Singular words ending in s are not flagged (`status`, `address`, `news`, `series`,
    `analysis`: words ending in -ss, -us, -is, and a list of invariant nouns).

    ## Fix safety
    No fix: renaming a table needs a migration.
    """

    code = "FDB507"
    name = "tablename-convention"
    summary = "Table name is not singular snake_case"
    opt_in = True
    triggers = ("__tablename__",)
    valid = [
        Valid('class Post:\n    __tablename__ = "post"\n'),
        Valid('class Status:\n    __tablename__ = "status"\n'),
        Valid('class Address:\n    __tablename__ = "user_address"\n'),
        Valid('class News:\n    __tablename__ = "news"\n'),
        Valid('class Series:\n    __tablename__ = "series"\n'),
        Valid('class Analysis:\n    __tablename__ = "analysis"\n'),
        Valid("class Post:\n    __tablename__ = table_name('post')\n"),
    ]
    invalid = [
        Invalid('class Post:\n    __tablename__ = "Posts"\n', line=2),
        Invalid('class Post:\n    __tablename__ = "posts"\n', line=2),
        Invalid('class Role:\n    __tablename__ = "user_roles"\n', line=2),
        Invalid('class Category:\n    __tablename__ = "categories"\n', line=2),
        Invalid('class UserRole:\n    __tablename__ = "userRole"\n', line=2),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return "__tablename__" in shape.names

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return
        if node.targets[0].target.value != "__tablename__" or _class_of_statement(self.ctx.stack, -1) is None:
            return
        table = _string(node.value)
        if table is None:
            return
        if not _SNAKE.fullmatch(table):
            self.ctx.report(node, f"Table name `{table}` is not lowercase snake_case")
        elif plural_word(table.rsplit("_", 1)[-1]):
            self.ctx.report(node, f"Table name `{table}` is plural: name tables in the singular")


# -- FDB508 ------------------------------------------------------------------------


def _unwrap_optional(tree: TypeExpr) -> TypeExpr | None:
    head, args = tree
    if head == "|":
        rest = [a for a in args if a[0] != "None"]
        return _unwrap_optional(rest[0]) if len(rest) == 1 else None
    if head == "typing.Optional" and len(args) == 1:
        return _unwrap_optional(args[0])
    if head == "typing.Union":
        rest = [a for a in args if a[0] != "None"]
        return _unwrap_optional(rest[0]) if len(rest) == 1 else None
    return tree


class TemporalColumnSuffix(_ModelRule):
    """
    ## What it does
    Flags `Mapped[datetime]` columns whose name does not end in `_at` and
    `Mapped[date]` columns whose name does not end in `_date` (optional types included).

    ## Why is this bad?
    A house style (opt-in): `created_at`, `birth_date` tell readers (and API clients)
    what the value is without looking at the model; `created` or `birthday` could be a
    flag, a count or a string.

    ## Example
    ```python
    created: Mapped[datetime] = mapped_column(server_default=func.now())
    ```

    ## Use instead
    ```python
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    ```

    ## Fix safety
    No fix: renaming an attribute changes every use of it (and the column name).
    """

    code = "FDB508"
    name = "temporal-column-suffix"
    summary = "Datetime column not ending in `_at` / date column not ending in `_date`"
    opt_in = True
    triggers = ("Mapped",)
    valid = [
        Valid(
            "from datetime import date, datetime\n"
            "from sqlalchemy.orm import Mapped\n"
            "class User:\n"
            "    created_at: Mapped[datetime]\n"
            "    birth_date: Mapped[date | None]\n"
            "    name: Mapped[str]\n"
        ),
    ]
    invalid = [
        Invalid(
            "from datetime import datetime\n"
            "from sqlalchemy.orm import Mapped, mapped_column\n"
            "class User:\n"
            "    created: Mapped[datetime] = mapped_column()\n",
            line=4,
        ),
        Invalid(
            "import datetime as dt\n"
            "from typing import Optional\n"
            "from sqlalchemy.orm import Mapped\n"
            "class User:\n"
            "    birthday: Mapped[Optional[dt.date]]\n"
            "    updated: Mapped['dt.datetime | None']\n",
            count=2,
            line=5,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        # `datetime`/`date` are imported under one of these names; `Mapped` may be reached
        # through a module alias inside a string annotation (`"orm.Mapped[date]"`).
        if _TEMPORAL_NAMES.isdisjoint(shape.names):
            return False
        return "Mapped" in shape.names or "Mapped" in shape.string_annotation_names

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if not isinstance(node.target, cst.Name) or _class_of_statement(self.ctx.stack, -1) is None:
            return
        tree = type_from_cst(node.annotation, self.ctx.imports)
        if tree[0] != "sqlalchemy.orm.Mapped" or len(tree[1]) != 1:
            return
        inner = _unwrap_optional(tree[1][0])
        if inner is None:
            return
        name = node.target.value
        if inner[0] == "datetime.datetime" and not name.endswith("_at"):
            self.ctx.report(node, f"Datetime column `{name}` should end in `_at`")
        elif inner[0] == "datetime.date" and not name.endswith("_date"):
            self.ctx.report(node, f"Date column `{name}` should end in `_date`")


# -- FDB509 ------------------------------------------------------------------------


class BackrefInsteadOfBackPopulates(_ModelRule):
    """
    ## What it does
    Flags `relationship(..., backref=...)`.

    ## Why is this bad?
    `backref` creates the other side of the relationship implicitly, at mapper
    configuration time: readers of the other model do not see the attribute, type
    checkers do not know it, and its loading strategy (`lazy=`) is easily forgotten,
    which in async code means an implicit lazy load. Declare both sides with
    `back_populates` (and `Mapped[...]`), as the typed-models guideline asks.

    ## Example
    ```python
    class User(Base):
        posts = relationship("Post", backref="author")
    ```

    ## Use instead
    ```python
    class User(Base):
        posts: Mapped[list["Post"]] = relationship(back_populates="author")

    class Post(Base):
        author: Mapped["User"] = relationship(back_populates="posts")
    ```

    ## Fix safety
    No fix: the other side has to be declared in the other class.
    """

    code = "FDB509"
    name = "backref-instead-of-back-populates"
    summary = "`relationship(backref=...)` instead of `back_populates`"
    triggers = ("backref",)
    valid = [
        Valid(
            "from sqlalchemy.orm import relationship\n"
            "class User:\n"
            '    posts = relationship("Post", back_populates="author")\n'
        ),
        Valid("def relationship(**kw):\n    return kw\nx = relationship(backref='y')\n"),
    ]
    invalid = [
        Invalid(
            "from sqlalchemy.orm import relationship\n"
            "class User:\n"
            '    posts = relationship("Post", backref="author")\n',
            line=3,
        ),
        Invalid(
            "import sqlalchemy.orm as orm\n"
            "class User:\n"
            "    posts = orm.relationship(\n"
            '        "Post",\n'
            '        backref=orm.backref("author", lazy="joined"),\n'
            "    )\n",
            line=5,
        ),
    ]

    @classmethod
    def applies(cls, shape: FileShape, project: ProjectTerms) -> bool:
        return "backref" in shape.keywords and not _RELATIONSHIP_CALLS.isdisjoint(shape.calls)

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.callee(node) not in _RELATIONSHIP:
            return
        arg = _keyword(node, "backref")
        if arg is not None:
            self.ctx.report(arg, "`backref=` declares the other side implicitly: use `back_populates` on both sides")
