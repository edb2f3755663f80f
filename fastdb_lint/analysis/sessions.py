"""Session-type inference at project level: what kind of database object a symbol,
a type annotation, a call or a dependency produces.

Function-local bindings (parameters, ``with ... as s``, ``s = factory()``) are tracked
by the lint traversal (:mod:`fastdb_lint.context`), which asks this module about
every name, annotation and call it meets. Unknown stays unknown: every method returns
None when it cannot tell, and rules stay silent on None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastdb_lint.analysis.index import CallValue, NameValue, ProjectIndex, TypeValue
from fastdb_lint.analysis.sqlalchemy_api import CLASS_KINDS, CONSTRUCTOR_KINDS, DbKind
from fastdb_lint.analysis.typeexpr import TypeExpr

_ITERATOR_TYPES = frozenset(
    "typing." + n
    for n in (
        "AsyncIterator", "AsyncGenerator", "Iterator", "Generator", "AsyncIterable", "Iterable",
        "ContextManager", "AsyncContextManager",
    )
) | {"contextlib.AbstractContextManager", "contextlib.AbstractAsyncContextManager"}

_PRODUCT = {
    DbKind.SYNC_FACTORY: DbKind.SYNC_SESSION,
    DbKind.ASYNC_FACTORY: DbKind.ASYNC_SESSION,
    DbKind.SYNC_REGISTRY: DbKind.SYNC_SESSION,
    DbKind.ASYNC_REGISTRY: DbKind.ASYNC_SESSION,
}
_DEPENDS = ("call:fastapi.Depends", "call:fastapi.Security")
_MAX_DEPTH = 12


def product_of(kind: DbKind | None) -> DbKind | None:
    """What calling an object of this kind gives (a factory gives a session)."""
    return _PRODUCT.get(kind) if kind is not None else None


class SessionTypes:
    def __init__(self, index: ProjectIndex) -> None:
        self.index = index
        self._values: dict[str, DbKind | None] = {}
        self._deps: dict[str, DbKind | None] = {}
        # How many symbol or dependency inferences are under way: while one is, the
        # names it is computing read as unknown (a recursion guard), so answers that
        # depend on them are not remembered.
        self._busy = 0
        self._calls: dict[tuple[str, str | None], DbKind | None] = {}
        self._types: dict[tuple[TypeExpr, bool], DbKind | None] = {}

    # -- calls ------------------------------------------------------------------

    def kind_of_call(self, callee: str | None, keywords: dict[str, str] | None = None, depth: int = 0) -> DbKind | None:
        """Kind of ``callee(...)``'s result."""
        if callee is None or depth > _MAX_DEPTH:
            return None
        if depth:
            return self._kind_of_call(callee, keywords, depth)
        key = (callee, keywords.get("class_") if keywords else None)
        return self._memoised(self._calls, key, lambda: self._kind_of_call(callee, keywords, 0))

    def _kind_of_call(self, callee: str, keywords: dict[str, str] | None, depth: int) -> DbKind | None:
        kind = CONSTRUCTOR_KINDS.get(callee)
        if kind is not None:
            if callee == "sqlalchemy.orm.sessionmaker" and keywords and "class_" in keywords:
                session_class = CLASS_KINDS.get(keywords["class_"])
                if session_class is DbKind.ASYNC_SESSION:
                    return DbKind.ASYNC_FACTORY
                return DbKind.SYNC_FACTORY if session_class is DbKind.SYNC_SESSION else None
            return kind
        produced = product_of(self.kind_of_value(callee, depth + 1))
        if produced is not None:
            return produced
        function = self.index.function(callee)
        if function is not None and function.returns is not None:
            returned = self.kind_of_type(function.returns, depth=depth + 1)
            if returned is not None:
                return returned
        return None

    def kind_of_context(self, callee: str | None, keywords: dict[str, str] | None = None) -> DbKind | None:
        """Kind bound by ``with callee(...) as x`` (a factory or a context-manager dependency)."""
        direct = self.kind_of_call(callee, keywords)
        if direct is not None and not direct.is_factory:
            return direct
        if callee is not None:
            return self.dependency_kind(callee)
        return None

    # -- symbols -----------------------------------------------------------------

    def kind_of_value(self, qualname: str, depth: int = 0) -> DbKind | None:
        """Kind of the object a module-level name is bound to."""
        if qualname in self._values:
            return self._values[qualname]
        self._values[qualname] = None  # recursion guard
        kind: DbKind | None = None
        self._busy += 1
        try:
            if depth <= _MAX_DEPTH:
                value = self.index.value(qualname)
                if isinstance(value, CallValue):
                    kind = self.kind_of_call(value.callee, value.keywords, depth + 1)
                elif isinstance(value, NameValue):
                    kind = self.kind_of_value(value.qualname, depth + 1)
        finally:
            self._busy -= 1
        self._values[qualname] = kind
        return kind

    # -- annotations -------------------------------------------------------------

    def kind_of_type(self, tree: TypeExpr | None, *, unwrap_iter: bool = False, depth: int = 0) -> DbKind | None:
        if tree is None or depth > _MAX_DEPTH:
            return None
        if depth:
            return self._kind_of_type(tree, unwrap_iter, depth)
        return self._memoised(self._types, (tree, unwrap_iter), lambda: self._kind_of_type(tree, unwrap_iter, 0))

    def _memoised(self, table: dict[Any, DbKind | None], key: Any, compute: Callable[[], DbKind | None]) -> DbKind | None:
        """``compute()``, remembered in ``table`` for top-level queries only: an answer
        given while another inference is in progress depends on its recursion guard."""
        if self._busy:
            return compute()
        try:
            return table[key]
        except KeyError:
            kind = table[key] = compute()
            return kind

    def _kind_of_type(self, tree: TypeExpr, unwrap_iter: bool, depth: int) -> DbKind | None:
        head, args = tree
        if head is None:
            return None
        if head == "|":
            kinds = {self.kind_of_type(a, unwrap_iter=unwrap_iter, depth=depth + 1) for a in args if a[0] != "None"}
            return kinds.pop() if len(kinds) == 1 else None
        if head == "typing.Optional" and args:
            return self.kind_of_type(args[0], unwrap_iter=unwrap_iter, depth=depth + 1)
        if head == "typing.Annotated" and args:
            kind = self.kind_of_type(args[0], depth=depth + 1)
            if kind is None:
                for meta in args[1:]:
                    if meta[0] in _DEPENDS and meta[1] and meta[1][0][0]:
                        kind = self.dependency_kind(meta[1][0][0])
            return kind
        if unwrap_iter and head in _ITERATOR_TYPES and args:
            return self.kind_of_type(args[0], depth=depth + 1)
        if head in CLASS_KINDS:
            return CLASS_KINDS[head]
        if head.startswith("call:"):
            return None
        value = self.index.value(head)
        if isinstance(value, TypeValue):
            return self.kind_of_type(value.type, unwrap_iter=unwrap_iter, depth=depth + 1)
        if isinstance(value, NameValue):
            return self.kind_of_type((value.qualname, args), unwrap_iter=unwrap_iter, depth=depth + 1)
        return None

    def kind_of_depends_default(self, tree: TypeExpr) -> DbKind | None:
        """Kind of a parameter whose default is ``Depends(dep)``."""
        if tree[0] in _DEPENDS and tree[1] and tree[1][0][0]:
            return self.dependency_kind(tree[1][0][0])
        return None

    # -- dependencies ------------------------------------------------------------

    def dependency_kind(self, qualname: str) -> DbKind | None:
        """Kind of what a dependency (or context-manager function) provides."""
        if qualname in self._deps:
            return self._deps[qualname]
        self._deps[qualname] = None
        kind: DbKind | None = None
        self._busy += 1
        try:
            function = self.index.function(qualname)
            if function is not None:
                if function.returns is not None:
                    kind = self.kind_of_type(function.returns, unwrap_iter=True)
                if kind is None:
                    for source in function.yields_from:
                        candidate = self.kind_of_call(source)
                        if candidate is not None and candidate.is_session:
                            kind = candidate
                            break
        finally:
            self._busy -= 1
        self._deps[qualname] = kind
        return kind

    # -- classes -----------------------------------------------------------------

    def self_attr_kind(self, class_qualname: str, attr: str) -> DbKind | None:
        found = self.index.class_(class_qualname)
        if found is None:
            return None
        _, cls = found
        if attr in cls.self_attr_types:
            tree = cls.self_attr_types[attr]
            kind = self.kind_of_type(tree)
            if kind is None and tree[0] is not None:
                kind = self.kind_of_depends_default(tree)
            return kind
        if attr in cls.attr_types:
            return self.kind_of_type(cls.attr_types[attr])
        if attr in cls.self_attr_calls:
            return self.kind_of_call(cls.self_attr_calls[attr])
        return None
