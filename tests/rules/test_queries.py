"""FDB301-FDB310 beyond the embedded examples: several files, messages, fix layout,
imports, interplay between the rules, and the shared chain analysis."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from fastdb_lint.analysis.chains import enclosing_loop, split_chain
from fastdb_lint.analysis.shape import file_shape
from fastdb_lint.config import Settings
from fastdb_lint.engine import Engine, build_index, lint_sources
from fastdb_lint.registry import get_rule, resolve_selection
from fastdb_lint.rules.base import ProjectTerms
from fastdb_lint.source import SourceText

MODELS = """\
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    posts: Mapped[list["Post"]] = relationship(back_populates="author")


class Post(Base):
    __tablename__ = "post"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    author: Mapped[User] = relationship(back_populates="posts")


class Schema:
    pass
"""
DB = """\
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

engine = create_async_engine("postgresql+asyncpg://localhost/app")
AsyncSessionLocal = async_sessionmaker(engine, expire_on_commit=False)
SessionLocal = sessionmaker()


async def get_session():
    async with AsyncSessionLocal() as session:
        yield session
"""
PROJECT = {"app/models.py": MODELS, "app/db.py": DB}


def lint(code: str, *select: str, path: str = "app/example.py", files: dict[str, str] | None = None):
    sources = {**PROJECT, **(files or {}), path: textwrap.dedent(code)}
    return [f for f in lint_sources(sources, select=select)[path] if f.code in select]


def rows(code: str, select: str, **kwargs) -> list[int]:
    return sorted(f.start.row for f in lint(code, select, **kwargs))


def fix(code: str, *select: str, unsafe: bool = True, path: str = "app/example.py") -> str:
    code = textwrap.dedent(code)
    sources = {**PROJECT, path: code}
    settings = Settings(root=Path("."), select=select, enabled=resolve_selection(select))
    engine = Engine(settings, build_index([(p, p, t) for p, t in sources.items()]))
    outcome = engine.fix(path, path, SourceText(code), unsafe=unsafe)
    assert outcome.error is None
    cst.parse_module(outcome.text)
    again = engine.fix(path, path, SourceText(outcome.text), unsafe=unsafe)
    assert again.text == outcome.text, "fixing twice must change nothing"
    return outcome.text


# -- FDB301 legacy-query-api --------------------------------------------------------------


def test_legacy_query_messages_and_positions():
    code = """\
    from sqlalchemy.orm import Session
    from app.models import User

    def names(db: Session):
        first = db.query(User).first()
        rest = db.query(User.name).all()
        return first, rest
    """
    findings = lint(code, "FDB301")
    assert [(f.start.row, f.start.column) for f in findings] == [(5, 13), (6, 12)]
    assert findings[0].message == "Legacy `Session.query()` API: use `select()` with `session.scalars()`/`execute()`"


def test_rewrite_of_many_chains_adds_each_import_once():
    code = """\
    from sqlalchemy import Column
    from sqlalchemy.orm import Session
    from app.models import Post, User

    def report(db: Session):
        users = db.query(User).order_by(User.name).all()
        total = db.query(User).filter_by(name="x").count()
        pairs = db.query(User.id, Post.id).join(Post).all()
        authors = db.query(User).join(User.posts).one()
        per_author = db.query(Post.author_id).group_by(Post.author_id).count()
        return users, total, pairs, authors, per_author
    """
    assert fix(code, "FDB301") == textwrap.dedent(
        """\
        from sqlalchemy import Column, select, func
        from sqlalchemy.orm import Session
        from app.models import Post, User

        def report(db: Session):
            users = db.scalars(select(User).order_by(User.name)).all()
            total = db.scalar(select(func.count()).select_from(User).filter_by(name="x"))
            pairs = db.execute(select(User.id, Post.id).join(Post)).all()
            authors = db.scalars(select(User).join(User.posts)).unique().one()
            per_author = db.scalar(select(func.count()).select_from(select(Post.author_id).group_by(Post.author_id).subquery()))
            return users, total, pairs, authors, per_author
        """
    )


def test_rewrite_keeps_comments_and_layout_of_a_long_chain():
    code = """\
    from sqlalchemy.orm import Session
    from app.models import User

    def active(db: Session, limit: int):
        if limit:
            return (
                db.query(User)  # every user
                # that is still active
                .filter(
                    User.name != "",
                )
                .limit(limit)
                .all()
            )
    """
    assert fix(code, "FDB301") == textwrap.dedent(
        """\
        from sqlalchemy.orm import Session
        from app.models import User
        from sqlalchemy import select

        def active(db: Session, limit: int):
            if limit:
                return (
                    db.scalars(
                        select(User)  # every user
                        # that is still active
                        .where(
                            User.name != "",
                        )
                        .limit(limit)
                    )
                    .all()
                )
        """
    )


def test_rewrite_uses_existing_select_of_sqlmodel_or_module_alias():
    sqlmodel_code = """\
    from sqlmodel import Session, select
    from app.models import User

    def users(db: Session):
        return db.query(User).all()
    """
    assert "return db.scalars(select(User)).all()" in fix(sqlmodel_code, "FDB301")
    alias_code = """\
    import sqlalchemy as sa
    from sqlalchemy.orm import Session
    from app.models import User

    def first(db: Session):
        return db.query(User).first()
    """
    fixed = fix(alias_code, "FDB301")
    assert "return db.scalars(sa.select(User).limit(1)).first()" in fixed
    assert "from sqlalchemy import select" not in fixed


def test_no_rewrite_when_select_means_something_else_or_chain_is_not_understood():
    code = """\
    from sqlalchemy.orm import Session
    from app.models import Schema, User
    from selectors import select

    def a(db: Session):
        return db.query(User).all()

    def b(db: Session, cols):
        return db.query(*cols).all()
    """
    findings = lint(code, "FDB301")
    assert [f.start.row for f in findings] == [6, 9]
    assert all(f.fix is None for f in findings)
    unknown = """\
    from sqlalchemy.orm import Session
    from app.models import Schema, User

    def c(db: Session):
        return db.query(Schema).all(), db.query(User).yield_per(10).all(), db.query(User).exists()
    """
    assert [f.fix for f in lint(unknown, "FDB301")] == [None, None, None]


def test_session_from_factory_in_another_file_and_scoped_registry():
    code = """\
    from sqlalchemy.orm import scoped_session
    from app.db import SessionLocal
    from app.models import User

    registry = scoped_session(SessionLocal)

    def a():
        with SessionLocal() as session:
            return session.query(User).count()

    def b():
        return registry.query(User).all()
    """
    assert rows(code, "FDB301") == [9, 12]


def test_query_on_non_sessions_is_not_flagged():
    code = """\
    from fastapi import Request
    from elasticsearch import Elasticsearch
    from app.models import User

    es = Elasticsearch()

    class Search:
        def __init__(self, client):
            self.client = client

        def run(self, text):
            return self.query(text)

        def query(self, text):
            return self.client.query(text).all()

    def handler(request: Request, db):
        es.query(index="x").all()
        db.query(User).all()
        return request.query
    """
    assert lint(code, "FDB301", "FDB302", "FDB303") == []


def test_query_get_is_only_fdb303():
    code = """\
    from sqlalchemy.orm import Session
    from app.models import User

    def get(db: Session, pk: int):
        return db.query(User).get(pk)
    """
    findings = lint(code, "FDB301", "FDB303")
    assert [(f.code, f.start.row) for f in findings] == [("FDB303", 5)]
    assert findings[0].message == "`Query.get()` is deprecated: use `session.get(Model, pk)`"
    assert "return db.get(User, pk)" in fix(code, "FDB303", unsafe=False)


def test_iterating_a_query_is_rewritten():
    code = """\
    from sqlalchemy.orm import Session
    from app.models import Post, User

    def names(db: Session):
        out = [u.name for u in db.query(User).join(User.posts)]
        for user_id, post_id in db.query(User.id, Post.id).outerjoin(Post):
            out.append((user_id, post_id))
        return out
    """
    fixed = fix(code, "FDB301")
    assert "[u.name for u in db.scalars(select(User).join(User.posts)).unique()]" in fixed
    assert "for user_id, post_id in db.execute(select(User.id, Post.id).outerjoin(Post)):" in fixed


def test_terminal_followed_by_more_code_is_rewritten_up_to_the_terminal():
    code = """\
    from sqlalchemy.orm import Session
    from app.models import User

    def name(db: Session, pk: int) -> str:
        return db.query(User).filter(User.id == pk).one().name
    """
    assert "return db.scalars(select(User).where(User.id == pk)).one().name" in fix(code, "FDB301")


# -- FDB302 query-on-async-session ------------------------------------------------------


def test_async_query_rewrites_await_in_place():
    code = """\
    from typing import Annotated
    from fastapi import Depends
    from sqlalchemy.ext.asyncio import AsyncSession
    from app.db import get_session
    from app.models import User

    SessionDep = Annotated[AsyncSession, Depends(get_session)]

    async def handler(session: SessionDep):
        users = await (
            session.query(User)
            .filter(User.name == "a")
            .all()
        )
        count = session.query(User).count() + 1
        name = session.query(User).first().name
        total = session.query(User).count().bit_length()
        return users, count, name, total
    """
    assert fix(code, "FDB302") == textwrap.dedent(
        """\
        from typing import Annotated
        from fastapi import Depends
        from sqlalchemy.ext.asyncio import AsyncSession
        from app.db import get_session
        from app.models import User
        from sqlalchemy import select, func

        SessionDep = Annotated[AsyncSession, Depends(get_session)]

        async def handler(session: SessionDep):
            users = (
                (await session.scalars(
                    select(User)
                    .where(User.name == "a")
                ))
                .all()
            )
            count = await session.scalar(select(func.count()).select_from(User)) + 1
            name = (await session.scalars(select(User).limit(1))).first().name
            total = (await session.scalar(select(func.count()).select_from(User))).bit_length()
            return users, count, name, total
        """
    )


def test_async_query_without_a_place_for_await_has_no_fix():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    from app.models import User

    async def handler(session: AsyncSession):
        lazy = lambda: session.query(User).all()
        counts = list(session.query(User).count() for _ in range(2))
        return lazy, counts

    def sync(session: AsyncSession):
        return session.query(User).all()
    """
    findings = lint(code, "FDB302")
    assert [f.start.row for f in findings] == [5, 6, 10]
    assert all(f.fix is None for f in findings)
    assert findings[0].message == "`AsyncSession` has no `query()` method: use `await session.scalars(select(...))`"


def test_async_query_is_not_fdb301():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    from app.models import User

    async def handler(session: AsyncSession):
        return await session.query(User).all()
    """
    assert [f.code for f in lint(code, "FDB301", "FDB302")] == ["FDB302"]


# -- FDB304 legacy-select-list ----------------------------------------------------------


def test_select_list_only_for_sqlalchemy_select():
    code = """\
    import select as selectmod
    from sqlmodel import select
    import sqlalchemy

    a = sqlalchemy.select([sqlalchemy.func.count()])
    b = select(User)
    c = selectmod.select([sock], [], [])
    """
    findings = lint(code, "FDB304")
    assert [f.start.row for f in findings] == [5]
    assert "a = sqlalchemy.select(sqlalchemy.func.count())" in fix(code, "FDB304", unsafe=False)


# -- FDB305 python-side-aggregation -----------------------------------------------------


def test_python_side_aggregation_forms_and_traps():
    code = """\
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from app.models import Post, User

    def a(db: Session):
        return len(db.scalars(select(User)).all())

    def b(db: Session):
        return len(list(db.scalars(select(User))))

    def c(db: Session):
        users = db.execute(select(User)).scalars().all()
        return len(users)

    def d(db: Session):
        users = db.execute(select(User)).scalars().all()
        return {"users": users, "count": len(users)}

    def e(db: Session):
        posts = db.scalars(select(Post))
        return sum(p.author_id for p in posts)

    def f(db: Session, user):
        return len(user.posts), sum(p.author_id for p in user.posts)

    def g(db: Session):
        users = db.execute(select(User)).scalars().all()
        def show():
            return users
        return len(users), show
    """
    findings = lint(code, "FDB305")
    assert [f.start.row for f in findings] == [6, 9, 13, 21]
    assert findings[0].message == "Rows counted in Python: use `select(func.count())`"
    assert findings[3].message == "Rows summed in Python: use `select(func.sum(...))`"


def test_shadowed_len_is_not_the_builtin():
    code = """\
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from app.models import User
    from app.utils import len

    def a(db: Session):
        return len(db.scalars(select(User)).all())
    """
    assert lint(code, "FDB305") == []


# -- FDB306 query-in-loop ---------------------------------------------------------------


def test_query_in_loop_positions_and_message():
    code = """\
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession
    from app.models import Post, User

    async def handler(session: AsyncSession, users):
        for user in users:
            stmt = select(Post).where(Post.author_id == user.id).limit(10)
            posts = (await session.scalars(stmt)).all()
        firsts = {u.id: await session.get(User, u.id) for u in users}
        nested = [[await session.get(Post, p) for p in u.post_ids] for u in users]
        outer_only = [u.name for u in (await session.scalars(select(User))).all()]
        return posts, firsts, nested, outer_only
    """
    findings = lint(code, "FDB306")
    assert [f.start.row for f in findings] == [8, 9, 10]
    assert findings[0].message == "Query inside a loop (N+1): eager-load or batch with `in_()`"


def test_query_in_loop_traps():
    code = """\
    import asyncio
    import time
    from sqlalchemy import insert, select, text, update
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.ext.asyncio import AsyncSession
    from tenacity import AsyncRetrying
    from app.models import Post, User

    async def batches(session: AsyncSession, ids: list[int]):
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            await session.execute(select(User).where(User.id.in_(chunk)))
        offset = 0
        while True:
            rows = (await session.scalars(select(User).offset(offset).limit(100))).all()
            if not rows:
                break
            offset += 100
        last = 0
        while True:
            page = (await session.scalars(select(User).where(User.id > last).limit(100))).all()
            if not page:
                break
            last = page[-1].id

    async def retries(session: AsyncSession):
        for attempt in range(5):
            try:
                return await session.execute(text("SELECT 1"))
            except OperationalError:
                await asyncio.sleep(2 ** attempt)
        async for attempt in AsyncRetrying():
            with attempt:
                await session.execute(text("SELECT 1"))
        while True:
            job = await session.scalar(select(User).where(User.name == "job"))
            if job is None:
                await asyncio.sleep(1)

    async def writes(session: AsyncSession, users, statements, tables):
        for user in users:
            await session.execute(update(User).where(User.id == user.id).values(name=user.name))
            await session.execute(insert(Post).values(author_id=user.id))
            await session.execute(text(f"UPDATE user SET name = :n WHERE id = {user.id}"))
        for statement in statements:
            await session.execute(statement)
        for table in tables:
            await session.execute(table.delete())

    async def elsewhere(session: AsyncSession, users):
        for user in users:
            async def later():
                return await session.get(User, user.id)
            print(later)
        else:
            await session.get(User, 1)
    """
    assert lint(code, "FDB306") == []


# -- FDB307 rows-instead-of-scalars -----------------------------------------------------


def test_rows_instead_of_scalars_through_names_and_row_use():
    code = """\
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from app.models import User

    def a(db: Session):
        rows = db.execute(select(User)).all()
        return [r.name for r in rows]

    def b(db: Session):
        rows = db.execute(select(User)).all()
        for (user,) in rows:
            print(user)

    def c(db: Session):
        row = db.execute(select(User)).first()
        return row.User

    def d(db: Session):
        row = db.execute(select(User)).one()
        return row[0]

    def e(db: Session):
        stmt = select(User)
        stmt = stmt.where(User.name == "a").order_by(User.id)
        return db.execute(stmt).all()

    def f(db: Session):
        stmt = select(User)
        stmt = stmt.add_columns(User.name)
        return db.execute(stmt).all()
    """
    findings = lint(code, "FDB307")
    assert [f.start.row for f in findings] == [6, 25]
    assert findings[0].message == "`execute()` of a single-entity `select()` returns rows: insert `.scalars()`"
    fixed = fix(code, "FDB307", unsafe=False)
    assert "rows = db.execute(select(User)).scalars().all()\n    return [r.name" in fixed
    assert "return db.execute(stmt).scalars().all()" in fixed


def test_rows_read_through_the_row_api_or_loop_variables_are_not_flagged():
    code = """\
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from app.models import User

    def a(db: Session):
        for row in db.execute(select(User)).all():
            print(row[0])
        rows = db.execute(select(User)).all()
        for row in rows:
            print(row.User)
        listed = db.execute(select(User)).all()
        ids = [r[0].id for r in listed]
        mapping = db.execute(select(User)).first()._mapping
        one = db.execute(select(User)).one()
        return ids, mapping, one._asdict()

    def b(db: Session):
        users = db.execute(select(User)).all()
        for user in users:
            print(user.name)
    """
    assert rows(code, "FDB307") == [18]


def test_rows_after_legacy_rewrite_are_not_flagged():
    code = """\
    from sqlalchemy.orm import Session
    from app.models import User

    def a(db: Session):
        return db.query(User).all(), db.query(User.id).all()
    """
    fixed = fix(code, "FDB301", "FDB307")
    assert "return db.scalars(select(User)).all(), db.execute(select(User.id)).all()" in fixed


# -- FDB308 unbounded-select-in-route -----------------------------------------------------


def test_unbounded_select_is_opt_in():
    code = """\
    from fastapi import APIRouter
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession
    from app.models import User

    router = APIRouter()

    @router.get("/users")
    async def users(session: AsyncSession):
        return (await session.scalars(select(User))).all()
    """
    sources = {**PROJECT, "app/example.py": textwrap.dedent(code)}
    assert not [f for f in lint_sources(sources)["app/example.py"] if f.code == "FDB308"]
    findings = lint(code, "FDB308")
    assert [f.start.row for f in findings] == [10]
    assert findings[0].message == "Route returns every row of a `select()` without `.limit()`: paginate"


# -- FDB309 select-filter-alias --------------------------------------------------------


def test_select_filter_alias_is_opt_in_and_reported_per_filter():
    code = """\
    from sqlalchemy import select
    from app.models import User

    stmt = (
        select(User)
        .filter(User.id > 1)  # first
        .filter(User.name != "")
    )
    """
    sources = {**PROJECT, "app/example.py": textwrap.dedent(code)}
    assert not [f for f in lint_sources(sources)["app/example.py"] if f.code == "FDB309"]
    findings = lint(code, "FDB309")
    assert sorted((f.start.row, f.start.column) for f in findings) == [(6, 6), (7, 6)]
    assert fix(code, "FDB309", unsafe=False) == textwrap.dedent(
        """\
        from sqlalchemy import select
        from app.models import User

        stmt = (
            select(User)
            .where(User.id > 1)  # first
            .where(User.name != "")
        )
        """
    )


# -- FDB310 update-or-delete-without-where ---------------------------------------------


def test_update_or_delete_without_where_forms():
    code = """\
    from sqlalchemy import MetaData, Table, delete, update
    from sqlalchemy.orm import Session
    from app.models import Post, User

    audit = Table("audit", MetaData())

    def a(db: Session):
        db.execute(delete(Post))
        db.execute(update(User).values(name="x").returning(User.id))
        db.execute(audit.delete())
        db.execute(User.__table__.update().values(name="y"))
        db.query(Post).delete()
        db.query(User).update({"name": "z"})

    def b(db: Session, pk: int):
        db.execute(delete(Post).where(Post.id == pk))
        db.execute(audit.delete().where(audit.c.id == pk))
        db.query(Post).filter_by(id=pk).delete()
        stmt = update(User).values(name="x")
        stmt = stmt.where(User.id == pk)
        db.execute(stmt)
    """
    findings = lint(code, "FDB310")
    assert [f.start.row for f in findings] == [8, 9, 10, 11, 12, 13]
    assert findings[0].message == "`DELETE` without `.where()` affects every row of the table"
    assert findings[4].message == "`Query.delete()` without a filter affects every row"


def test_deletes_in_test_files_are_allowed_but_updates_are_not():
    code = """\
    from sqlalchemy import delete, update
    from app.models import User

    def test_reset(session):
        session.execute(delete(User))
        session.execute(update(User).values(name="x"))
    """
    assert rows(code, "FDB310", path="tests/test_reset.py") == [6]


# -- shared chain analysis -------------------------------------------------------------


def test_split_chain():
    expr = cst.parse_expression("(await session.execute(stmt)).scalars().all()")
    chain = split_chain(expr)
    assert isinstance(chain.root, cst.Await)
    assert chain.names == ("scalars", "all")
    chain = split_chain(cst.parse_expression("self.db.query(User).filter(x).all"))
    assert chain.names == ("db", "query", "filter", "all")
    assert [link.call is not None for link in chain.links] == [False, True, True, False]
    assert chain.index("filter") == 2


def test_enclosing_loop():
    module = cst.parse_module("[f(a) for a in g(b) for b in h(c)]\nfor x in y:\n    z(x)\nelse:\n    w()\n")
    comprehension = module.body[0].body[0].value
    assert isinstance(comprehension, cst.ListComp)
    outer = comprehension.for_in
    inner = outer.inner_for_in
    assert inner is not None
    loop = enclosing_loop([comprehension, comprehension.elt])
    assert loop is not None and loop.targets == frozenset({"a", "b"})
    assert enclosing_loop([comprehension, outer, outer.iter]) is None
    assert enclosing_loop([comprehension, outer, inner, inner.iter]) is not None
    statement = module.body[1]
    assert isinstance(statement, cst.For) and statement.orelse is not None
    assert enclosing_loop([statement, statement.body]) is not None
    assert enclosing_loop([statement, statement.orelse]) is None
    assert enclosing_loop([statement, statement.iter]) is None


# -- applies: the files each rule is run on ---------------------------------------------

ASYNC_PROJECT = ProjectTerms(frozenset({"AsyncSessionLocal", "get_session"}), frozenset({"User"}), True)
SYNC_PROJECT = ProjectTerms(frozenset({"SessionLocal", "get_db"}), frozenset({"User"}), False)


def applies(code: str, rule: str, project: ProjectTerms = ASYNC_PROJECT) -> bool:
    return get_rule(rule).applies(file_shape(ast.parse(textwrap.dedent(code))), project)


SERVICE_2_0 = """\
from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

router = APIRouter()


async def find_user(session: AsyncSession, request: Request, user_id: int):
    params = request.query_params
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(404)
    return {"user": user, "filters": dict(params), "tags": [t.name for t in user.tags]}
"""


def test_a_2_0_service_without_query_calls_is_skipped_by_the_query_rules():
    for rule in ("FDB301", "FDB302", "FDB303", "FDB305", "FDB306", "FDB307", "FDB308", "FDB309", "FDB310"):
        assert not applies(SERVICE_2_0, rule), rule
    assert lint(SERVICE_2_0, "FDB301", "FDB302", "FDB303", "FDB306") == []


def test_query_rules_apply_to_query_calls_however_the_session_arrives():
    code = """\
    from app.db import SessionLocal

    class Repository:
        def __init__(self, session):
            self.session = session

        def find(self, pk):
            return self.session.query(User).get(pk)

    def report():
        with SessionLocal() as s:
            return s.query(User).all()
    """
    assert applies(code, "FDB301", SYNC_PROJECT)
    assert applies(code, "FDB303", SYNC_PROJECT)
    assert lint(code, "FDB301")
    assert not applies("def f(q):\n    return q.filter(x).all()\n", "FDB301")
    # `Query.get()` needs both calls.
    assert not applies("def f(db):\n    return db.query(User).first()\n", "FDB303")


def test_query_on_async_session_needs_the_asyncio_extension_somewhere():
    code = """\
    from app.db import SessionLocal

    def names(db=SessionLocal()):
        return db.query(User).all()
    """
    assert applies(code, "FDB302", ASYNC_PROJECT)
    assert not applies(code, "FDB302", SYNC_PROJECT)
    assert applies(code, "FDB301", SYNC_PROJECT)
    # Reached as an attribute of `sqlalchemy`, without importing the extension.
    attribute = """\
    import sqlalchemy as sa

    async def names(session: sa.ext.asyncio.AsyncSession):
        return await session.query(User).all()
    """
    assert applies(attribute, "FDB302", SYNC_PROJECT)
    # The async session comes from another module: the file itself names no asyncio.
    imported = """\
    from app.db import AsyncSessionLocal

    async def names():
        async with AsyncSessionLocal() as session:
            return await session.query(User).all()
    """
    assert applies(imported, "FDB302", ASYNC_PROJECT)
    assert [f.code for f in lint(imported, "FDB302")] == ["FDB302"]


def test_select_list_applies_through_import_aliases():
    code = """\
    from sqlalchemy import select as sa_select
    import sqlalchemy as sa

    a = sa_select([users.c.id])
    b = sa.select([users.c.id])
    """
    assert applies(code, "FDB304")
    assert len(lint(code, "FDB304")) == 2
    assert not applies("stmt = query.filter(x)\nrows = [r for r in rows]\n", "FDB304")


def test_python_side_aggregation_needs_an_aggregate_and_a_session_read():
    no_session = """\
    def page(items):
        listed = list(items)
        return {"count": len(listed), "total": sum(i.price for i in listed)}
    """
    assert not applies(no_session, "FDB305")
    # len() of rows that are never listed with all()/fetchall()/list().
    first_only = """\
    async def one(session):
        return len((await session.scalars(select(User))).first().name)
    """
    assert not applies(first_only, "FDB305")
    summed = """\
    from sqlalchemy.orm import Session

    def revenue(db: Session):
        return sum(o.amount for o in db.scalars(select(Order)))
    """
    assert applies(summed, "FDB305")
    counted = """\
    def count():
        with SessionLocal() as db:
            users = db.query(User).all()
        return len(users)
    """
    assert applies(counted, "FDB305", SYNC_PROJECT)
    # The same reads on something no name of the file makes a session.
    assert not applies(counted, "FDB305")
    assert not applies(summed.replace(": Session", "").replace("from sqlalchemy.orm import Session", ""), "FDB305")


def test_query_in_loop_applies_only_to_session_methods_called_in_a_loop():
    outside = """\
    async def posts(session, users):
        ids = [u.id for u in users]
        return (await session.scalars(select(Post).where(Post.author_id.in_(ids)))).all()
    """
    assert not applies(outside, "FDB306")
    comprehension = "def load(db: 'Session', ids):\n    return [db.get(User, i) for i in ids]\n"
    assert applies(comprehension, "FDB306")
    async_for = """\
    async def refresh_all(session=Depends(get_session), stream=None):
        async for user in stream:
            await session.refresh(user)
    """
    assert applies(async_for, "FDB306")
    while_loop = "def up(node):\n    db = SessionLocal()\n    while node:\n        node = db.query(Node).get(node.parent_id)\n"
    assert applies(while_loop, "FDB306", SYNC_PROJECT)
    assert not applies(while_loop, "FDB306", ASYNC_PROJECT)


def test_query_in_loop_does_not_follow_helper_functions():
    code = """\
    from sqlalchemy.orm import Session

    def load_posts(db: Session, user):
        return db.scalars(select(Post).where(Post.author_id == user.id)).all()

    def posts(db: Session, users):
        return [load_posts(db, user) for user in users]
    """
    # The query runs once per user, but only through a helper: the rule reports calls
    # written inside the loop, so the file is not one it needs.
    assert not applies(code, "FDB306")
    assert lint(code, "FDB306") == []


def test_rows_instead_of_scalars_needs_execute_select_and_a_row_terminal():
    code = """\
    import sqlalchemy as sa

    async def users(session: sa.ext.asyncio.AsyncSession):
        return (await session.execute(sa.select(User))).all()
    """
    assert applies(code, "FDB307")
    assert not applies(code.replace(": sa.ext.asyncio.AsyncSession", ""), "FDB307")
    assert not applies(code.replace(".all()", ".scalar_one()"), "FDB307")
    assert not applies('def n(db):\n    return db.execute(text("SELECT 1")).all()\n', "FDB307")


def test_unbounded_select_needs_a_route_decorator():
    route = """\
    @router.get("/users")
    async def list_users(session: SessionDep):
        return (await session.scalars(select(User))).all()
    """
    with_alias = ProjectTerms(frozenset({"SessionDep"}), frozenset(), True)
    assert applies(route, "FDB308", with_alias)
    assert not applies(route, "FDB308")
    helper = route.replace('    @router.get("/users")\n', "")
    assert not applies(helper, "FDB308")


def test_select_filter_alias_needs_a_select():
    assert applies("stmt = select(User).filter(User.active)\n", "FDB309")
    assert not applies("def active(db):\n    return db.query(User).filter(User.active).all()\n", "FDB309")


def test_update_or_delete_applies_to_executed_or_legacy_writes():
    dict_update = """\
    def merge(settings, overrides):
        settings.update(overrides)
        return settings
    """
    assert not applies(dict_update, "FDB310")
    # Any receiver's `execute(statement)` is checked.
    core_table = "def wipe(conn):\n    conn.execute(users_table.delete())\n"
    assert applies(core_table, "FDB310")
    legacy = "def wipe(db: Session):\n    db.query(Item).delete()\n"
    assert applies(legacy, "FDB310")
    # `Query.delete()` on a name no session reaches, and `execute()` without a statement.
    assert not applies(legacy.replace(": Session", ""), "FDB310")
    google_api = """\
    def remove(service, file_id):
        service.files().delete(fileId=file_id).execute()
        service.permissions().update(body={}).execute()
    """
    assert not applies(google_api, "FDB310")
    aliased = """\
    from sqlalchemy import delete as sa_delete

    async def wipe(session):
        await session.execute(sa_delete(Item))
    """
    assert applies(aliased, "FDB310")
    assert [f.code for f in lint(aliased, "FDB310")] == ["FDB310"]


def _projected(code: str) -> ProjectTerms:
    """The terms of the test project with ``code`` as ``app/example.py``."""
    project = build_index([(p, p, t) for p, t in {**PROJECT, "app/example.py": textwrap.dedent(code)}.items()])
    return Engine(Settings(root=Path("."), select=("ALL",), enabled=resolve_selection(("ALL",))), project).terms


def _selected_exactly(code: str, rule: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether ``rule`` applies to ``code``; the findings must be those of a run where it
    applies everywhere (a file it skips has none)."""
    selected = applies(code, rule, _projected(code))
    found = [(f.start.row, f.start.column) for f in lint(code, rule)]
    with monkeypatch.context() as patch:
        patch.setattr(get_rule(rule), "applies", classmethod(lambda cls, shape, project: True))
        assert [(f.start.row, f.start.column) for f in lint(code, rule)] == found
    assert selected or not found
    return selected


SCOPED_RECEIVERS = {
    # An untyped parameter is untyped, whatever a sibling function's parameter of the
    # same name is.
    "sibling": (
        """\
        from sqlalchemy.orm import Session

        def typed(db_session: Session):
            return db_session.get(User, 1)

        def untyped(*, db_session, model):
            return db_session.query(model)
        """,
        False,
    ),
    # A parameter hides the module's session.
    "shadowed": (
        """\
        from app.db import SessionLocal

        db = SessionLocal()

        def find(db, user_id):
            return db.query(User).all()
        """,
        False,
    ),
    # ... which the functions without such a parameter read.
    "module": (
        """\
        from app.db import SessionLocal

        db = SessionLocal()

        def find():
            return db.query(User).all()
        """,
        True,
    ),
    # A closure reads the function around it.
    "closure": (
        """\
        from sqlalchemy.orm import Session

        def outer(db: Session):
            def inner():
                return db.query(User).all()
            return inner
        """,
        True,
    ),
    # A name bound around a function is typed where it is bound, even when the
    # function's parameter hides what that binding reads.
    "bound_outside": (
        """\
        from sqlalchemy.orm import Session

        def outer(session: Session):
            current = session

            def inner(session):
                return current.query(User).all()
            return inner
        """,
        True,
    ),
    # A class body and a comprehension belong to the function around them.
    "class_body": (
        """\
        from sqlalchemy.orm import Session

        def build(db: Session):
            class Repository:
                rows = [db.query(User).all() for _ in range(2)]
            return Repository
        """,
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(SCOPED_RECEIVERS))
def test_query_rules_type_a_receiver_in_its_scope(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    code, expected = SCOPED_RECEIVERS[case]
    assert _selected_exactly(code, "FDB301", monkeypatch) is expected
    assert bool(lint(code, "FDB301")) is expected


QUERY_WRITES = {
    # A filter after the `query()`: the rule has nothing to say.
    "filtered": (
        """\
        from sqlalchemy.orm import Session

        def remove(db: Session, item_id: int):
            db.query(Item).filter(Item.id == item_id).delete()
            db.query(Item).filter_by(id=item_id).update({"done": True})
        """,
        False,
    ),
    "unfiltered": (
        """\
        from sqlalchemy.orm import Session

        def remove(db: Session, item_id: int):
            db.query(Item).filter(Item.id == item_id).delete()
            db.query(Item).order_by(Item.id).delete()
        """,
        True,
    ),
    # Only what follows the outermost `query()` is read (the rule reads what follows
    # the innermost one): the file is read, and the rule finds the filter.
    "filter_before_query": (
        """\
        from sqlalchemy.orm import Session

        def remove(db: Session):
            db.query(Item).filter(Item.done).query(Item).delete()
        """,
        True,
    ),
    # Through a name assigned a query.
    "named": (
        """\
        from sqlalchemy.orm import Session

        def remove(db: Session):
            query = db.query(Item).order_by(Item.id)
            query.delete()
        """,
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(QUERY_WRITES))
def test_update_or_delete_skips_query_chains_filtered_after_their_query(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    code, expected = QUERY_WRITES[case]
    assert _selected_exactly(code, "FDB310", monkeypatch) is expected
    assert bool(lint(code, "FDB310")) is (expected and case in ("unfiltered", "named"))


SLACK_HANDLER = """\
from sqlalchemy.orm import Session

def handle_submission(db_session: Session, payload: dict, participants):
    tags = []
    for item in payload.get("tags", []):
        tags.append(tag_service.get(db_session=db_session, tag_id=int(item["value"])))
    for participant in participants:
        info = contact_plugin.instance.get(participant.email, db_session=db_session)
        print(info.get("fullname"), info.get("team"))
    return tags
"""


def test_query_in_loop_skips_dict_and_service_gets_next_to_a_session():
    # Only `get()` of dicts and service modules in the loops; the session is passed along.
    assert not applies(SLACK_HANDLER, "FDB306")
    assert lint(SLACK_HANDLER, "FDB306") == []
    # The session itself queried in a loop.
    direct = SLACK_HANDLER.replace("tag_service.get(db_session=db_session, ", "db_session.get(Tag, ")
    assert applies(direct, "FDB306")


def test_query_in_loop_follows_the_names_a_session_reaches():
    cases = {
        "alias": "from app.db import SessionLocal as Maker\n"
        "def f(ids):\n    db = Maker()\n    return [db.get(User, i) for i in ids]\n",
        "chain": "def f(ids):\n    first = SessionLocal()\n    db = first\n    for i in ids:\n        db.refresh(i)\n",
        "with": "def f(ids):\n    with SessionLocal.begin() as db:\n        for i in ids:\n            db.execute(stmt)\n",
        "attribute": "from sqlalchemy.orm import Session\n"
        "class Repo:\n    def __init__(self, session: Session):\n        self.session = session\n"
        "    def load(self, ids):\n        return [self.session.get(User, i) for i in ids]\n",
        "class annotation": "class Repo:\n    session: 'Session'\n"
        "    def load(self, ids):\n        return [self.session.get(User, i) for i in ids]\n",
        "dependency": "def route(ids, db=Depends(get_db)):\n    return [db.get(User, i) for i in ids]\n",
        "module value": "from app import db\ndef f(ids):\n    return [db.SessionLocal().get(User, i) for i in ids]\n",
    }
    for name, code in cases.items():
        assert applies(code, "FDB306", SYNC_PROJECT), name
    assert [f.code for f in lint(cases["alias"], "FDB306")] == ["FDB306"]
    # The same loops with names nothing types.
    assert not applies(cases["chain"], "FDB306", ASYNC_PROJECT)
    assert not applies(cases["dependency"].replace("Depends(get_db)", "None"), "FDB306", SYNC_PROJECT)


def test_legacy_query_needs_a_typed_receiver():
    service = """\
    from sqlalchemy.orm import Session

    def get(*, db_session, user_id: int):
        return db_session.query(User).filter(User.id == user_id).one_or_none()

    def create(*, session: "Session", user: User):
        session.add(user)
        session.commit()
    """
    # `query()` is only called on an untyped parameter.
    assert not applies(service, "FDB301", SYNC_PROJECT)
    assert lint(service, "FDB301") == []
    typed = service.replace("db_session, user_id", "db_session: Session, user_id")
    assert applies(typed, "FDB301", SYNC_PROJECT)
    assert [f.code for f in lint(typed, "FDB301")] == ["FDB301"]


def test_legacy_query_get_needs_get_on_a_query():
    code = """\
    from sqlalchemy.orm import Session

    def find(db: Session, key):
        return db.query(User).filter_by(name=key).first(), cache.get(key)
    """
    assert not applies(code, "FDB303")
    assert applies(code.replace("filter_by(name=key).first()", "get(key)"), "FDB303")


def test_select_list_needs_a_list_argument():
    assert not applies("from sqlalchemy import select\nstmt = select(User.id, User.name)\n", "FDB304")
    assert applies("from sqlalchemy import select\nstmt = select([User.id])\n", "FDB304")


def test_python_side_aggregation_len_needs_listed_rows():
    code = """\
    from sqlalchemy.orm import Session

    def page(db: Session, filters):
        items = db.scalars(select(Item)).all()
        return {"count": len(filters), "items": items}
    """
    assert not applies(code, "FDB305")
    counted = code.replace("len(filters)", "len(items)")
    assert applies(counted, "FDB305")
    assert applies(code.replace("len(filters)", "len(list(db.scalars(select(Item))))"), "FDB305")


def test_rows_instead_of_scalars_needs_a_terminal_on_an_execute_result():
    code = """\
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    def users(db: Session):
        found = db.scalars(select(User)).unique()
        return found.all(), db.execute(select(User.id)).scalar_one()
    """
    # `all()` is called on `scalars()`'s result (through a name): not on rows.
    assert not applies(code, "FDB307")
    named = code.replace("db.scalars(select(User)).unique()", "db.execute(select(User))")
    assert applies(named, "FDB307")
    assert applies(code.replace("found.all()", "db.execute(select(User)).unique().first()"), "FDB307")
    # Scalars read from the result: the terminal is not on the rows.
    assert not applies(code.replace("found.all()", "db.execute(select(User)).unique().scalars().all()"), "FDB307")
    unique_name = code.replace("db.scalars(select(User)).unique()", "db.execute(select(User))").replace(
        "found.all()", "found.unique().one()"
    )
    assert applies(unique_name, "FDB307")


def test_update_or_delete_needs_a_write_statement_or_a_query_write():
    code = """\
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    def remove(db: Session, item, settings, overrides):
        settings.update(overrides)
        db.delete(item)
        db.execute(select(Item))
    """
    assert not applies(code, "FDB310")
    forms = [
        "stmt = delete(Item)\n        stmt = stmt.returning(Item.id)\n        db.execute(stmt)",
        "db.execute(items_table.update().values(done=True))",
        "query = db.query(Item)\n        query.delete()",
    ]
    for form in forms:
        assert applies(code.replace("db.delete(item)", form), "FDB310"), form
