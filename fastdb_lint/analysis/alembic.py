"""Alembic files: migration scripts and ``env.py``.

A *migration file* is a ``.py`` file under a ``versions/`` directory that sets
``revision =`` and defines ``upgrade()`` at module level. An *env file* is an
``env.py`` that imports ``alembic.context`` (``from alembic import context``,
``import alembic.context``, ``from alembic.context import ...``).

Both are decided from the file's path and its module-level statements only (including
those nested in module-level ``if``/``try`` blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import libcst as cst

from fastdb_lint.analysis.syntax import dotted_cst, statement_blocks

if TYPE_CHECKING:
    from fastdb_lint.context import FileContext


@dataclass(frozen=True)
class AlembicFile:
    is_migration: bool = False
    is_env: bool = False


def alembic_file(ctx: FileContext) -> AlembicFile:
    return ctx.alembic


def is_migration_file(ctx: FileContext) -> bool:
    return alembic_file(ctx).is_migration


def is_env_file(ctx: FileContext) -> bool:
    return alembic_file(ctx).is_env


def in_versions_directory(relpath: str) -> bool:
    parts = PurePosixPath(relpath.replace("\\", "/")).parts
    return len(parts) >= 2 and parts[-1].endswith(".py") and "versions" in parts[:-1]


def classify(relpath: str, module: cst.Module) -> AlembicFile:
    """What ``module`` at ``relpath`` is to Alembic (cheap: module-level statements)."""
    name = PurePosixPath(relpath.replace("\\", "/")).name
    if in_versions_directory(relpath):
        sets_revision = defines_upgrade = False
        for stmt in _module_statements(module.body):
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "upgrade":
                defines_upgrade = True
            elif isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if _assigns(small, "revision"):
                        sets_revision = True
        if sets_revision and defines_upgrade:
            return AlembicFile(is_migration=True)
    if name == "env.py" and imports_alembic_context(module):
        return AlembicFile(is_env=True)
    return AlembicFile()


def imports_alembic_context(module: cst.Module) -> bool:
    for stmt in _module_statements(module.body):
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Import):
                if any(dotted_cst(alias.name) == "alembic.context" for alias in small.names):
                    return True
            elif isinstance(small, cst.ImportFrom) and not small.relative and small.module is not None:
                source = dotted_cst(small.module)
                if source == "alembic.context":
                    return True
                if source == "alembic" and not isinstance(small.names, cst.ImportStar):
                    if any(dotted_cst(alias.name) == "context" for alias in small.names):
                        return True
    return False


def _assigns(small: cst.BaseSmallStatement, name: str) -> bool:
    if isinstance(small, cst.Assign):
        return any(isinstance(t.target, cst.Name) and t.target.value == name for t in small.targets)
    if isinstance(small, cst.AnnAssign):
        return isinstance(small.target, cst.Name) and small.target.value == name and small.value is not None
    return False


def _module_statements(body: object) -> list[cst.CSTNode]:
    """Module-level statements, flattening ``if``/``try`` blocks (not functions/classes)."""
    out: list[cst.CSTNode] = []
    if not isinstance(body, (list, tuple)):
        return out
    for stmt in body:
        out.append(stmt)
        if isinstance(stmt, (cst.If, cst.Try)):
            for block in statement_blocks(stmt):
                out.extend(_module_statements(block))
    return out


def module_function(module: cst.Module, name: str) -> cst.FunctionDef | None:
    """A module-level ``def name`` (the last one, as Python would bind it)."""
    found = None
    for stmt in module.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
            found = stmt
    return found
