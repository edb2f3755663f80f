"""What rule preconditions may know of a whole project, kept apart from the rules so
that a run can read it (from the cache) without importing them or LibCST."""

from __future__ import annotations

from typing import NamedTuple


class ProjectTerms(NamedTuple):
    """What :meth:`Rule.applies` may know of the project: the last names of its session
    values, factories, engines and session dependencies, of its mapped models, and
    whether it uses SQLAlchemy's asyncio extension; among the session names, those
    that can stand for a session factory and those that can stand for a
    ``scoped_session`` registry (as a value, a type alias or what a function returns);
    the names of its classes and values in a model hierarchy (declarative bases,
    abstract and mapped classes, SQLModel models), through which a class gets mapped."""

    session_names: frozenset[str]
    model_names: frozenset[str]
    asyncio: bool
    factory_names: frozenset[str] = frozenset()
    registry_names: frozenset[str] = frozenset()
    model_bases: frozenset[str] = frozenset()
