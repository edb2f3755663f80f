"""What rule preconditions (:meth:`~fastdb_lint.rules.base.Rule.applies`) share: the
names through which the session analysis can give an expression a kind, and whether a
file's shape mentions or calls through one of them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastdb_lint.analysis.chains import QUERY_SESSIONS
from fastdb_lint.analysis.sqlalchemy_api import CLASS_KINDS, CONSTRUCTOR_KINDS, DbKind

if TYPE_CHECKING:
    from fastdb_lint.analysis.shape import FileShape
    from fastdb_lint.rules.base import ProjectTerms


def last_names(qualnames: Iterable[str]) -> frozenset[str]:
    """The names calls to ``qualnames`` are written with, as a shape records them (an
    import alias under its original name too)."""
    return frozenset(q.rpartition(".")[2] for q in qualnames)


def source_names(kinds: frozenset[DbKind]) -> frozenset[str]:
    """Last names of the SQLAlchemy classes and constructors whose objects are of ``kinds``."""
    return last_names(frozenset(q for q, k in {**CLASS_KINDS, **CONSTRUCTOR_KINDS}.items() if k in kinds))


# The SQLAlchemy names through which the session analysis can make an expression a sync
# session, any session, or a session or connection: the classes (annotations, calls)
# and their factories (a factory or registry makes sessions, an engine connections).
SYNC_SESSION_SOURCES = source_names(frozenset({DbKind.SYNC_SESSION, DbKind.SYNC_REGISTRY, DbKind.SYNC_FACTORY}))
SESSION_SOURCES = source_names(QUERY_SESSIONS | {DbKind.SYNC_FACTORY, DbKind.ASYNC_FACTORY})
EXECUTOR_SOURCES = source_names(frozenset(DbKind))


def may_see_db_object(shape: FileShape, project: ProjectTerms, sources: frozenset[str]) -> bool:
    """Whether the session analysis can give an expression of a file of this shape a kind
    made by ``sources``. Every kind starts from a name the file mentions, in code or in a
    string annotation (an annotation, a call, a ``Depends()`` dependency, a ``with``
    context, what a class assigns to ``self``): one of ``sources``, or a project symbol
    the analysis gives a kind (a value, type alias, dependency or session provider)."""
    return any(
        not names.isdisjoint(sources) or not names.isdisjoint(project.session_names)
        for names in (shape.names, shape.string_annotation_names)
    )


def typed_names(shape: FileShape, project: ProjectTerms, sources: frozenset[str]) -> set[str]:
    """The names (``"self.x"`` for attributes of ``self``) the session analysis may give a
    kind made by ``sources`` somewhere in a file of this shape: ``sources``, the
    project's symbols that have a kind, and the names bound to what one of these names
    can type, in any scope."""
    typed = set(sources) | project.session_names
    _close(typed, [(name, scoped | other, frozenset()) for name, scoped, other, _ in shape.kind_sources], typed)
    return typed


def _close(
    typed: set[str], bindings: list[tuple[str, frozenset[str], frozenset[str]]], anywhere: set[str]
) -> None:
    """Add to ``typed`` every name of ``bindings`` (name, names read in ``typed``, names
    read in ``anywhere``) bound to a typed name, until none is left to add."""
    pending = [entry for entry in bindings if entry[0] not in typed]
    while pending:
        found = [name for name, scoped, other in pending if not scoped.isdisjoint(typed) or not other.isdisjoint(anywhere)]
        if not found:
            break
        typed.update(found)
        pending = [entry for entry in pending if entry[0] not in typed]


class _ScopeTyping:
    """The plain names the session analysis may give a kind made by some sources, per
    scope of a file. A name reads what the scope and those around it bind, up to the
    nearest that has it as a parameter (parameters are bound on entry, before anything
    can read them); without such a parameter, the module's imports and the project's
    symbols too. What another scope binds is resolved there."""

    def __init__(self, shape: FileShape, seeds: set[str], anywhere: set[str]) -> None:
        self.scopes = shape.scopes
        self.seeds = seeds
        # What ``typed_names`` says of the whole file: a superset of every scope's.
        self.anywhere = anywhere
        self.bindings: dict[int, list[tuple[str, frozenset[str], frozenset[str]]]] = {}
        for name, scoped, other, scope in shape.kind_sources:
            self.bindings.setdefault(scope, []).append((name, scoped, other))
        self.known: dict[int, set[str]] = {}

    def typed(self, scope: int) -> set[str]:
        known = self.known.get(scope)
        if known is not None:
            return known
        anywhere = self.anywhere
        typed: set[str] = set()
        shadowed: set[str] = set()
        where = scope
        while where >= 0:
            parent, parameters = self.scopes[where]
            if where != scope:
                for name, scoped, other in self.bindings.get(where, ()):
                    if name not in shadowed and (
                        not other.isdisjoint(anywhere) or (scoped and not scoped.isdisjoint(self.typed(where)))
                    ):
                        typed.add(name)
            shadowed |= parameters
            where = parent
        typed |= self.seeds - shadowed
        _close(typed, self.bindings.get(scope, []), anywhere)
        self.known[scope] = typed
        return typed


def receiver_may_be(
    shape: FileShape, project: ProjectTerms, sources: frozenset[str], methods: frozenset[str], *, loop: bool = False
) -> bool:
    """Whether a file of this shape calls one of ``methods`` (inside a loop, with
    ``loop``) on something the session analysis may give a kind made by ``sources``.
    The analysis types a receiver through a name (a parameter, a local or module value,
    an import: see ``_ScopeTyping``), the last name of an
    attribute or ``self.x``, or a callee (``begin()`` and ``connect()`` through their
    receiver too), each typed by an annotation, a ``Depends()`` default, a value, a
    ``with`` context or a project symbol."""
    receivers = shape.loop_method_receivers if loop else shape.method_receivers
    candidates = [(scoped, other, scope) for method, scoped, other, scope in receivers if method in methods]
    if not candidates:
        return False
    anywhere = typed_names(shape, project, sources)
    scopes: _ScopeTyping | None = None
    for scoped, other, scope in candidates:
        if not other.isdisjoint(anywhere):
            return True
        if scoped.isdisjoint(anywhere):
            continue
        if scopes is None:
            scopes = _ScopeTyping(shape, set(sources) | project.session_names, anywhere)
        if not scoped.isdisjoint(scopes.typed(scope)):
            return True
    return False
