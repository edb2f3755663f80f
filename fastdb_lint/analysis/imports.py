"""Import resolution: what a name really refers to.

An :class:`ImportTable` maps the names a module binds through ``import`` statements to
fully qualified names, and :func:`canonical` folds SQLAlchemy's and SQLModel's many
re-export paths into one public spelling, so that rules compare against
``"sqlalchemy.ext.asyncio.AsyncSession"`` however the user imported it.

The table is filled from the stdlib ``ast`` during the index pass and from LibCST
nodes during the lint pass; both feed the same :meth:`ImportTable.add_from` /
:meth:`ImportTable.add_import`, so the resolution logic exists once.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import libcst as cst

# Longest prefix first: a qualified name under one of these prefixes is folded to
# prefix-target + its last component (``sqlalchemy.orm.session.Session`` ->
# ``sqlalchemy.orm.Session``).
_FOLD: tuple[tuple[str, str], ...] = (
    ("sqlalchemy.ext.asyncio.", "sqlalchemy.ext.asyncio."),
    ("sqlalchemy.ext.declarative.", "sqlalchemy.ext.declarative."),
    ("sqlalchemy.ext.", ""),
    ("sqlalchemy.orm.", "sqlalchemy.orm."),
    ("sqlalchemy.pool.", "sqlalchemy.pool."),
    ("sqlalchemy.dialects.", ""),
    ("sqlalchemy.exc.", "sqlalchemy.exc."),
    ("sqlalchemy.engine.url.", "sqlalchemy.engine.url."),
    ("sqlalchemy.engine.", "sqlalchemy."),
    ("sqlalchemy.sql.", "sqlalchemy."),
    ("sqlalchemy.future.", "sqlalchemy."),
    ("sqlalchemy.schema.", "sqlalchemy."),
    ("sqlalchemy.types.", "sqlalchemy."),
    ("sqlmodel.ext.asyncio.", "sqlmodel.ext.asyncio."),
    ("sqlmodel.", "sqlmodel."),
    ("fastapi.", "fastapi."),
    ("starlette.background.", "fastapi."),
    ("typing_extensions.", "typing."),
    ("collections.abc.", "typing."),
)
_TOP_LEVEL_POOLS = {"NullPool", "StaticPool", "QueuePool", "SingletonThreadPool", "AsyncAdaptedQueuePool"}


@lru_cache(maxsize=8192)
def canonical(qualname: str) -> str:
    for prefix, target in _FOLD:
        if qualname.startswith(prefix):
            if not target:
                return qualname
            last = qualname.rsplit(".", 1)[1]
            return target + last
    if qualname.startswith("sqlalchemy.") and qualname.count(".") == 1:
        last = qualname[len("sqlalchemy.") :]
        if last in _TOP_LEVEL_POOLS:
            return "sqlalchemy.pool." + last
    return qualname


def resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    """Absolute module named by ``from <level dots><target> import``."""
    parts = module.split(".") if module else []
    if not is_package and parts:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: max(0, len(parts) - (level - 1))]
    if target:
        parts.append(target)
    return ".".join(parts)


class ImportTable:
    """Names bound by imports in one module (scopes are merged: a name imported
    inside a function resolves everywhere; a name bound twice to different targets
    resolves nowhere, which keeps rules silent)."""

    __slots__ = ("module", "is_package", "bindings", "_ambiguous", "local_defs", "_resolved")

    def __init__(self, module: str, is_package: bool = False) -> None:
        self.module = module
        self.is_package = is_package
        self.bindings: dict[str, str] = {}
        self._ambiguous: set[str] = set()
        # Names defined at module level in this module (def, class, assignment).
        self.local_defs: set[str] = set()
        self._resolved: dict[str, str | None] = {}

    def __getstate__(self) -> dict[str, object]:
        return {
            "module": self.module,
            "is_package": self.is_package,
            "bindings": self.bindings,
            "_ambiguous": self._ambiguous,
            "local_defs": self.local_defs,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._resolved = {}

    def _bind(self, name: str, qualname: str) -> None:
        self._resolved.clear()
        previous = self.bindings.get(name)
        if previous is not None and previous != qualname:
            self._ambiguous.add(name)
        self.bindings[name] = qualname

    def add_import(self, dotted: str, asname: str | None) -> None:
        if asname:
            self._bind(asname, dotted)
        else:
            head = dotted.split(".", 1)[0]
            self._bind(head, head)

    def add_from(self, module: str | None, level: int, names: list[tuple[str, str | None]]) -> None:
        base = resolve_relative(self.module, self.is_package, level, module) if level else (module or "")
        for name, asname in names:
            if name == "*":
                continue
            self._bind(asname or name, f"{base}.{name}" if base else name)

    def define(self, name: str) -> None:
        self._resolved.clear()
        self.local_defs.add(name)

    def resolve(self, dotted: str) -> str | None:
        """Canonical qualified name of a dotted expression, or None when unknown."""
        try:
            return self._resolved[dotted]
        except KeyError:
            pass
        result = self._resolve(dotted)
        self._resolved[dotted] = result
        return result

    def _resolve(self, dotted: str) -> str | None:
        head, _, rest = dotted.partition(".")
        if head in self._ambiguous:
            return None
        bound = self.bindings.get(head)
        if bound is None:
            if head in self.local_defs:
                bound = f"{self.module}.{head}" if self.module else head
            else:
                return None
        return canonical(f"{bound}.{rest}" if rest else bound)

    # -- filling from trees ---------------------------------------------------------

    def add_ast(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.add_import(alias.name, alias.asname)
        else:
            self.add_from(node.module, node.level, [(a.name, a.asname) for a in node.names])

    def add_cst(self, node: cst.Import | cst.ImportFrom) -> None:
        import libcst as cst  # imported here: the index pass runs without LibCST

        from fastdb_lint.analysis.syntax import dotted_cst

        if isinstance(node, cst.Import):
            for alias in node.names:
                asname = alias.asname.name if alias.asname else None
                self.add_import(
                    dotted_cst(alias.name) or "",
                    asname.value if isinstance(asname, cst.Name) else None,
                )
            return
        if isinstance(node.names, cst.ImportStar):
            return
        module = dotted_cst(node.module) if node.module is not None else None
        names: list[tuple[str, str | None]] = []
        for alias in node.names:
            asname = alias.asname.name if alias.asname else None
            names.append(
                (dotted_cst(alias.name) or "", asname.value if isinstance(asname, cst.Name) else None)
            )
        self.add_from(module, len(node.relative), names)




def dotted_ast(node: ast.AST | None) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None
