"""FDB201-FDB208 beyond the embedded examples: several files, messages, fixes, traps, and
the file shapes each rule applies to."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from fastdb_lint.analysis.shape import file_shape
from fastdb_lint.config import Settings
from fastdb_lint.engine import Engine, build_index, lint_sources
from fastdb_lint.registry import all_rules, resolve_selection
from fastdb_lint.rules.base import ProjectTerms
from fastdb_lint.source import SourceText

MODELS = """\
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class TimestampMixin:
    audit_log: Mapped[list["AuditEntry"]] = relationship()


class User(TimestampMixin, Base):
    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    posts: Mapped[list["Post"]] = relationship(back_populates="author")
    groups: Mapped[list["Group"]] = relationship(lazy="selectin")
    roles: Mapped[list["Role"]] = relationship(lazy="raise")
    profile: Mapped["Profile"] = relationship(lazy=PROFILE_STRATEGY)


class Post(Base):
    __tablename__ = "post"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    author: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list["Comment"]] = relationship(lazy="select")
"""
DB = """\
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine("postgresql+asyncpg://localhost/app")
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session():
    async with SessionLocal() as session:
        yield session
"""
HEAD = """\
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from app.models import Post, User
"""
PROJECT = {"app/models/__init__.py": "from .user import Post, User\n", "app/models/user.py": MODELS, "app/db.py": DB}


def lint(code: str, select: str, path: str = "app/example.py", files: dict[str, str] | None = None):
    sources = {**(files or {}), path: textwrap.dedent(code)}
    return [f for f in lint_sources(sources, select=(select,))[path] if f.code == select]


def rows(code: str, select: str, **kwargs) -> list[int]:
    return sorted(f.start.row for f in lint(code, select, **kwargs))


def fix(code: str, select: str, *, unsafe: bool = False, path: str = "app/example.py", files: dict[str, str] | None = None) -> str:
    code = textwrap.dedent(code)
    sources = {**(files or {}), path: code}
    settings = Settings(root=Path("."), select=(select,), enabled=resolve_selection((select,)))
    engine = Engine(settings, build_index([(p, p, t) for p, t in sources.items()]))
    outcome = engine.fix(path, path, SourceText(code), unsafe=unsafe)
    assert outcome.error is None
    again = engine.fix(path, path, SourceText(outcome.text), unsafe=unsafe)
    assert again.text == outcome.text, "fixing twice must change nothing"
    return outcome.text


# -- FDB202 missing-await ---------------------------------------------------------------


def test_missing_await_through_dependency_and_alias():
    code = """\
    from typing import Annotated
    from fastapi import APIRouter, Depends
    from sqlalchemy.ext.asyncio import AsyncSession
    from app.db import get_session

    router = APIRouter()
    SessionDep = Annotated[AsyncSession, Depends(get_session)]

    @router.post("/a")
    async def a(session: SessionDep):
        session.flush()

    @router.post("/b")
    async def b(session=Depends(get_session)):
        session.rollback()
    """
    findings = lint(code, "FDB202", files={"app/db.py": DB})
    assert [f.start.row for f in findings] == [11, 15]
    assert findings[0].message == "`AsyncSession.flush()` is a coroutine and is not awaited"


def test_missing_await_on_repository_attribute_and_factory_session():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    from app.db import SessionLocal

    class UserRepository:
        def __init__(self, session: AsyncSession) -> None:
            self.session = session

        async def save(self, user):
            self.session.add(user)
            self.session.commit()

    async def job():
        async with SessionLocal() as session:
            session.execute(stmt)
    """
    assert rows(code, "FDB202", files={"app/db.py": DB}) == [10, 14]


def test_missing_await_assigned_name_released_by_later_use():
    code = """\
    import asyncio
    from sqlalchemy.ext.asyncio import AsyncSession

    async def gathered(session: AsyncSession, stmt):
        first = session.execute(stmt)
        second = session.scalar(stmt)
        return await asyncio.gather(first, second)

    async def listed(session: AsyncSession, users):
        jobs = []
        for user in users:
            job = session.refresh(user)
            jobs.append(job)
        await asyncio.gather(*jobs)

    async def forgotten(session: AsyncSession, stmt):
        result = session.execute(stmt)
        rows = result.all()
        return rows
    """
    assert rows(code, "FDB202") == [17]


def test_missing_await_misuses():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession

    async def misuses(session: AsyncSession, stmt):
        for row in session.execute(stmt):
            pass
        if session.scalar(stmt):
            pass
        count = session.scalar(stmt) + 1
        values = [session.get(User, 1)]
        return not session.scalar(stmt)
    """
    assert rows(code, "FDB202") == [4, 6, 10]


def test_missing_await_registry_and_connection():
    code = """\
    from asyncio import current_task
    from sqlalchemy.ext.asyncio import async_scoped_session, async_sessionmaker, create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    factory = async_sessionmaker(engine, expire_on_commit=False)
    Session = async_scoped_session(factory, scopefunc=current_task)

    async def cleanup():
        Session.remove()
        async with engine.connect() as conn:
            conn.commit()
            conn.begin()
    """
    findings = lint(code, "FDB202")
    assert [f.start.row for f in findings] == [9, 11]
    assert "async_scoped_session.remove()" in findings[0].message
    assert "AsyncConnection.commit()" in findings[1].message


def test_missing_await_fix_keeps_comments_and_parentheses():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession

    async def f(session: AsyncSession, stmt):
        session.commit()  # persist
        users = (session.scalars(stmt)).all()
        first = session.execute(stmt).scalars().first()
        return await session.scalars(stmt).all(), first, users
    """
    assert fix(code, "FDB202") == textwrap.dedent(
        """\
        from sqlalchemy.ext.asyncio import AsyncSession

        async def f(session: AsyncSession, stmt):
            await session.commit()  # persist
            users = (await session.scalars(stmt)).all()
            first = (await session.execute(stmt)).scalars().first()
            return (await session.scalars(stmt)).all(), first, users
        """
    )


def test_missing_await_no_fix_when_outer_await_belongs_elsewhere():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession

    async def f(session: AsyncSession, stmt):
        return await session.stream(stmt).all()
    """
    findings = lint(code, "FDB202")
    assert len(findings) == 1 and findings[0].fix is None


@pytest.mark.parametrize(
    "body",
    [
        "session.add(user)",
        "session.add_all([user])",
        "session.expunge(user)",
        "session.expire(user)",
        "tx = session.begin()",
        "await asyncio.create_task(session.commit())",
        "task = asyncio.ensure_future(session.flush())",
        "callback = lambda: session.commit()",
        "await session.run_sync(lambda s: s.commit())",
        "coros = [session.refresh(u) for u in users]",
    ],
)
def test_missing_await_traps(body):
    code = f"""\
import asyncio
from sqlalchemy.ext.asyncio import AsyncSession

async def f(session: AsyncSession, user, users):
    {body}
"""
    assert lint(code, "FDB202") == []


def test_missing_await_ignores_sync_and_unknown_receivers():
    code = """\
    from sqlalchemy.orm import Session
    import httpx

    async def f(db: Session, client: httpx.AsyncClient, session, stmt):
        db.commit()
        db.execute(stmt)
        client.get("/x")
        session.commit()
    """
    assert lint(code, "FDB202") == []


# -- FDB203 sync-session-in-async ----------------------------------------------------------


SYNC_DB = """\
from typing import Annotated, Generator
from fastapi import Depends
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine("postgresql+psycopg2://localhost/app")
SessionLocal = sessionmaker(bind=engine)


def get_db() -> Generator[Session, None, None]:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


DbDep = Annotated[Session, Depends(get_db)]
"""


def test_sync_session_in_async_route_through_alias():
    code = """\
    from fastapi import APIRouter
    from app.db import DbDep

    router = APIRouter()

    @router.get("/users")
    async def users(db: DbDep):
        users = db.query(User).filter(User.active).all()
        db.commit()
        db.add(users[0])
        return users

    @router.get("/sync")
    def sync_users(db: DbDep):
        return db.query(User).all()
    """
    findings = lint(code, "FDB203", files={"app/db.py": SYNC_DB})
    assert [f.start.row for f in findings] == [8, 9]
    assert "Session.query()" in findings[0].message


def test_sync_session_in_async_threadpool_wrappers():
    code = """\
    import asyncio
    from starlette.concurrency import run_in_threadpool
    from app.db import DbDep

    async def users(db: DbDep):
        loop = asyncio.get_running_loop()
        a = await run_in_threadpool(lambda: db.query(User).all())
        b = await asyncio.to_thread(db.execute, stmt)
        c = await loop.run_in_executor(None, db.scalars(stmt).all)
        return a, b, c
    """
    assert lint(code, "FDB203", files={"app/db.py": SYNC_DB}) == []


# -- FDB204 implicit-lazy-load -------------------------------------------------------------


def lazy(code: str) -> list[int]:
    return rows(HEAD + textwrap.dedent(code), "FDB204", files=PROJECT)


def test_lazy_load_through_reexported_models_and_mixins():
    assert lazy(
        """\
        async def f(session: AsyncSession, user_id: int):
            user = await session.get(User, user_id)
            return user.posts, user.audit_log, user.groups, user.roles, user.profile
        """
    ) == [7, 7]


def test_lazy_load_message_names_model_and_relationship():
    findings = lint(
        HEAD + "async def f(session: AsyncSession):\n    post = await session.get(Post, 1)\n    return post.comments\n",
        "FDB204",
        files=PROJECT,
    )
    assert len(findings) == 1
    assert findings[0].message.startswith("`Post.comments` is not eager-loaded")
    assert (findings[0].start.row, findings[0].start.column) == (7, 12)


def test_lazy_load_result_shapes():
    assert lazy(
        """\
        async def f(session: AsyncSession):
            result = await session.execute(select(User).where(User.id == 1))
            user = result.scalar_one_or_none()
            users = result.scalars().all()
            first = (await session.execute(select(Post))).scalars().first()
            stream = await session.stream_scalars(select(User))
            async for streamed in stream:
                print(streamed.posts)
            print(user.posts, users[0].posts, first.author)
            return [u.posts for u in users]
        """
    ) == [12, 13, 13, 13, 14]


def test_lazy_load_options_in_variables_and_chains():
    assert lazy(
        """\
        async def f(session: AsyncSession, flag: bool):
            stmt = select(Post)
            if flag:
                stmt = stmt.where(Post.id > 1)
            stmt = stmt.options(joinedload(Post.author).selectinload(User.posts))
            posts = (await session.scalars(stmt)).unique().all()
            for post in posts:
                print(post.author, post.comments)
        """
    ) == [12]


def test_lazy_load_branches_merge_to_silence():
    assert lazy(
        """\
        async def f(session: AsyncSession, flag: bool):
            if flag:
                user = await session.scalar(select(User).options(selectinload(User.posts)))
            else:
                user = await session.get(User, 1, options=[selectinload(User.posts)])
            return user.posts
        """
    ) == []
    assert lazy(
        """\
        async def f(session: AsyncSession, flag: bool):
            if flag:
                user = await session.scalar(select(User).options(selectinload(User.posts)))
            else:
                user = await session.get(User, 1)
            return user.posts
        """
    ) == []


def test_lazy_load_rebinding_to_unknown_forgets():
    assert lazy(
        """\
        async def f(session: AsyncSession):
            user = await session.get(User, 1)
            user = await load_user_somehow(session)
            for post in await fetch_posts():
                print(post.author)
            return user.posts
        """
    ) == []


def test_lazy_load_refresh_and_awaitable_attrs():
    assert lazy(
        """\
        async def f(session: AsyncSession):
            user = await session.get(User, 1)
            await session.refresh(user, attribute_names=["posts"])
            post = await session.get(Post, 1)
            comments = await post.awaitable_attrs.comments
            other = await session.get(Post, 2)
            other.author = user
            return user.posts, post.comments, other.author
        """
    ) == []
    assert lazy(
        """\
        async def f(session: AsyncSession, user: User):
            print(user.posts)
            await session.refresh(user)
            return user.posts
        """
    ) == [8]


def test_lazy_load_classmethod_select_cls():
    code = MODELS + textwrap.dedent(
        """\
        from sqlalchemy import select
        from sqlalchemy.ext.asyncio import AsyncSession

        class Repo(Post):
            @classmethod
            async def load(cls, session: AsyncSession):
                post = await session.scalar(select(cls))
                return post.comments
        """
    )
    findings = lint(code, "FDB204", path="app/models/user.py")
    assert [f.start.row for f in findings] == [35]


@pytest.mark.parametrize(
    "body",
    [
        "user = await session.get(User, 1)\n    return await session.run_sync(lambda s: user.posts)",
        "user = await session.get(User, 1)\n    def inner():\n        return user.posts\n    return await session.run_sync(lambda s: inner())",
        "user = User()\n    session.add(user)\n    await session.flush()\n    return user.posts",
        "user = await session.scalar(select(User).options(*OPTIONS))\n    return user.posts",
        "user = await session.scalar(select(User, Post))\n    return user.posts",
        "row = (await session.execute(select(User))).first()\n    return row.posts",
        "user = await session.get(User, 1)\n    return user.groups, user.roles, user.profile",
        "user = await session.get(User, 1, options=[joinedload(User.posts)])\n    return user.posts",
        "user = await session.get(User, 1)\n    user.posts = []\n    return user.posts",
    ],
)
def test_lazy_load_traps(body):
    code = HEAD + f"async def f(session: AsyncSession):\n    {body}\n"
    assert lint(code, "FDB204", files=PROJECT) == []


def test_lazy_load_sync_session_is_not_flagged():
    code = """\
    from sqlalchemy.orm import Session
    from app.models import User

    async def f(db: Session):
        user = db.get(User, 1)
        return user.posts
    """
    assert lint(code, "FDB204", files=PROJECT) == []


def test_lazy_load_response_model():
    code = HEAD + textwrap.dedent(
        """\
        from fastapi import APIRouter, Depends
        from pydantic import BaseModel
        from app.db import get_session

        router = APIRouter()

        class PostOut(BaseModel):
            id: int

        class UserOut(BaseModel):
            id: int
            posts: list[PostOut]

        @router.get("/users", response_model=list[UserOut])
        async def users(session: AsyncSession = Depends(get_session)):
            return (await session.scalars(select(User))).all()

        @router.get("/users/{user_id}")
        async def user(user_id: int, session: AsyncSession = Depends(get_session)) -> UserOut | None:
            return await session.get(User, user_id)

        @router.get("/ok/{user_id}", response_model=UserOut)
        async def ok(user_id: int, session: AsyncSession = Depends(get_session)):
            return await session.get(User, user_id, options=[selectinload(User.posts)])

        @router.get("/ids/{user_id}", response_model=PostOut)
        async def ids(user_id: int, session: AsyncSession = Depends(get_session)):
            return await session.get(User, user_id)

        @router.get("/validated/{user_id}")
        async def validated(user_id: int, session: AsyncSession = Depends(get_session)):
            user = await session.get(User, user_id)
            return UserOut.model_validate(user)
        """
    )
    findings = lint(code, "FDB204", files=PROJECT)
    assert [f.start.row for f in findings] == [20, 24, 37]
    assert "`User.posts`" in findings[0].message


# -- FDB205 relationship-without-lazy ------------------------------------------------------


def test_relationship_without_lazy_only_in_asyncio_projects():
    models = MODELS
    assert rows(models, "FDB205", path="app/models/user.py") == []
    assert rows(models, "FDB205", path="app/models/user.py", files={"app/db.py": DB}) == [10, 16, 26]


def test_relationship_without_lazy_fix_multiline():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import relationship

    class User(Base):
        __tablename__ = "user"
        posts = relationship(
            "Post",
            back_populates="author",  # the other side
        )
    """
    assert fix(code, "FDB205", unsafe=True) == textwrap.dedent(
        """\
        from sqlalchemy.ext.asyncio import AsyncSession
        from sqlalchemy.orm import relationship

        class User(Base):
            __tablename__ = "user"
            posts = relationship(
                "Post",
                back_populates="author",  # the other side
                lazy="raise",
            )
        """
    )
    assert fix(code, "FDB205") == textwrap.dedent(code), "the fix is unsafe"


# -- FDB206 dynamic-relationship-in-async --------------------------------------------------


def test_dynamic_relationship_variants():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy import orm
    from sqlalchemy.orm import dynamic_loader
    from sqlmodel import Relationship

    class User(Base):
        __tablename__ = "user"
        posts: orm.DynamicMapped["Post"] = orm.relationship()
        tags = dynamic_loader("Tag")

    class Hero(SQLModel, table=True):
        team: list["Team"] = Relationship(sa_relationship_kwargs={"lazy": "dynamic"})
    """
    findings = lint(code, "FDB206")
    assert [f.start.row for f in findings] == [8, 9, 12]
    assert findings[1].fix is None
    assert fix(code, "FDB206", unsafe=True) == textwrap.dedent(code).replace(
        'orm.DynamicMapped["Post"]', 'orm.WriteOnlyMapped["Post"]'
    ).replace('"lazy": "dynamic"', '"lazy": "write_only"')


# -- FDB207 sync-context-manager-on-async ----------------------------------------------------


def test_sync_with_on_async_context_dependency():
    code = """\
    from contextlib import asynccontextmanager
    from sqlalchemy.ext.asyncio import AsyncSession
    from app.db import SessionLocal

    @asynccontextmanager
    async def session_scope() -> AsyncSession:
        async with SessionLocal() as session:
            yield session

    async def job():
        with session_scope() as session:
            pass
        with open("x") as fh:
            pass
    """
    assert rows(code, "FDB207", files={"app/db.py": DB}) == [11]


def test_sync_with_fix_only_in_async_def():
    code = """\
    from app.db import SessionLocal, engine

    def sync_job():
        with SessionLocal() as session:
            pass

    async def async_job():
        with engine.connect() as conn, SessionLocal() as session:
            pass
    """
    findings = lint(code, "FDB207", files={"app/db.py": DB})
    assert [f.start.row for f in findings] == [4, 8]
    assert findings[0].fix is None and findings[1].fix is not None
    assert "async with engine.connect() as conn, SessionLocal() as session:" in fix(code, "FDB207", files={"app/db.py": DB})


# -- FDB208 async-session-in-sync-function ---------------------------------------------------


def test_async_session_in_sync_route_via_dependency():
    code = """\
    from fastapi import APIRouter, Depends
    from app.db import get_session

    router = APIRouter()

    @router.delete("/users/{user_id}")
    def delete_user(user_id: int, session=Depends(get_session)):
        user = session.get(User, user_id)
        session.delete(user)
        return pass_on(session)
    """
    findings = sorted(lint(code, "FDB208", files={"app/db.py": DB}), key=lambda f: f.start)
    assert [f.start.row for f in findings] == [8, 9]
    assert findings[0].message == "`AsyncSession.get()` is a coroutine: a plain `def` can never await it"


def test_async_session_in_sync_function_passes_on():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession

    def make_service(session: AsyncSession):
        service = Service(session)
        pending = session.commit()
        return service, pending
    """
    assert lint(code, "FDB208") == []


# -- applies(): the file shapes each rule can report in ------------------------------------

# A class method returning an async session: a project term by its last name only.
ASYNC_DATABASE = """\
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

SessionLocal = async_sessionmaker(expire_on_commit=False)


class Database:
    @staticmethod
    def session() -> AsyncSession:
        return SessionLocal()
"""
SYNC_PROJECT = ProjectTerms(frozenset({"SessionLocal", "get_db"}), frozenset({"User"}), False)
ASYNC_PROJECT = ProjectTerms(frozenset({"SessionLocal", "get_session"}), frozenset({"User"}), True)


def applies(code: str, rule: str, project: ProjectTerms) -> bool:
    return all_rules()[rule].applies(file_shape(ast.parse(textwrap.dedent(code))), project)


def terms_of(files: dict[str, str]) -> ProjectTerms:
    """The project terms the engine derives from an in-memory project."""
    settings = Settings(root=Path("."), select=("FDB202",), enabled=resolve_selection(("FDB202",)))
    return Engine(settings, build_index([(p, p, textwrap.dedent(t)) for p, t in files.items()])).terms


def applies_in(code: str, rule: str, files: dict[str, str]) -> bool:
    """Whether ``rule`` applies to ``code`` linted as app/example.py next to ``files``."""
    return applies(code, rule, terms_of({**files, "app/example.py": code}))


def test_expire_on_commit_applies_only_to_async_factory_calls():
    sync_factory = """\
    from sqlalchemy.orm import Session, sessionmaker
    SessionLocal = sessionmaker(bind=engine, class_=Session)
    async def get_session():
        async with SessionLocal() as session:
            yield session
    """
    assert not applies(sync_factory, "FDB201", ASYNC_PROJECT)
    annotated_only = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    async def create(session: AsyncSession) -> None:
        await session.commit()
    """
    assert not applies(annotated_only, "FDB201", ASYNC_PROJECT)
    aliased = """\
    from sqlalchemy.ext.asyncio import async_sessionmaker as make_factory
    SessionLocal = make_factory(engine)
    """
    assert applies(aliased, "FDB201", SYNC_PROJECT)
    assert rows(aliased, "FDB201") == [2]
    class_keyword = """\
    from sqlalchemy import orm
    from sqlalchemy.ext import asyncio as sa_asyncio
    SessionLocal = orm.sessionmaker(engine, class_=sa_asyncio.AsyncSession)
    """
    assert applies(class_keyword, "FDB201", SYNC_PROJECT)
    assert rows(class_keyword, "FDB201") == [3]


def test_async_rules_need_a_name_that_holds_an_async_object():
    # In an asyncio project, a file that names neither an asyncio API nor a project
    # session symbol holds no async object the rules could see.
    cache_only = """\
    async def cached(cache, key):
        value = cache.get(key)
        cache.delete(key)
        return value
    def warm(cache):
        cache.get("k").commit()
        with cache.begin():
            pass
    """
    files = {"app/db.py": DB, "app/models/user.py": MODELS}
    assert terms_of(files).asyncio
    for rule in ("FDB202", "FDB207", "FDB208"):
        assert not applies_in(cache_only, rule, files), rule
        assert lint(cache_only, rule, files=files) == []
    # The same calls on the project's session dependency.
    through_dependency = """\
    from fastapi import Depends
    from app.db import get_session
    async def remove(item_id: int, db=Depends(get_session)):
        db.execute(stmt)
    def remove_later(db=Depends(get_session)):
        db.commit()
    """
    assert applies_in(through_dependency, "FDB202", files)
    assert applies_in(through_dependency, "FDB208", files)
    assert rows(through_dependency, "FDB202", files=files) == [4]
    assert rows(through_dependency, "FDB208", files=files) == [6]


def test_missing_await_needs_an_unawaited_call_in_an_async_def():
    awaited = """\
    from fastapi import APIRouter, Depends
    from sqlalchemy.ext.asyncio import AsyncSession
    router = APIRouter()
    @router.get("/items/{item_id}")
    @router.delete("/items/{item_id}")
    async def item(item_id: int, session: AsyncSession = Depends(get_session)):
        item = await session.get(Item, item_id)
        await session.delete(item)
        await session.commit()
        later = lambda: session.commit()
        return item, later
    """
    assert not applies(awaited, "FDB202", ASYNC_PROJECT)
    assert lint(awaited, "FDB202") == []
    no_async_def = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    def commit_later(session: AsyncSession):
        return session.commit()
    """
    assert not applies(no_async_def, "FDB202", ASYNC_PROJECT)
    # An asyncio API named through a module attribute, in a project the index saw no
    # asyncio import in.
    module_attribute = """\
    import sqlalchemy.ext.asyncio as aio
    async def create(session: aio.AsyncSession):
        session.commit()
    """
    assert applies(module_attribute, "FDB202", SYNC_PROJECT)
    # A def's defaults and decorators are in its scope: a nested `async def`'s default.
    nested_default = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    def build(session: AsyncSession):
        async def handler(name=session.get(User, 1).name):
            return name
        return handler
    """
    assert applies(nested_default, "FDB202", SYNC_PROJECT)
    assert rows(nested_default, "FDB202") == [3]
    string_annotation = """\
    async def create(session: "AsyncSession"):
        session.commit()
    """
    assert applies(string_annotation, "FDB202", SYNC_PROJECT)


def test_missing_await_through_project_names_the_file_does_not_spell():
    # Neither file names an asyncio API: the session comes from a project alias and
    # from a class method of another module.
    code = """\
    from app.db import Database
    from app.deps import SessionDep

    async def create(session: SessionDep, user):
        session.add(user)
        session.commit()

    async def job(stmt):
        db = Database.session()
        db.execute(stmt)
    """
    deps = (
        "from typing import Annotated\n"
        "from fastapi import Depends\n"
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "from app.db import get_session\n"
        "SessionDep = Annotated[AsyncSession, Depends(get_session)]\n"
    )
    db = ASYNC_DATABASE + "\n\nasync def get_session():\n    async with SessionLocal() as session:\n        yield session\n"
    files = {"app/db.py": db, "app/deps.py": deps}
    assert rows(code, "FDB202", files=files) == [6, 10]
    assert applies_in(code, "FDB202", files)
    assert {"SessionDep", "session"} <= terms_of(files).session_names


def test_sync_session_in_async_applies_with_a_sync_session_name():
    sync_route = """\
    from sqlalchemy.orm import Session
    def users(db: Session):
        return db.query(User).all()
    """
    assert not applies(sync_route, "FDB203", SYNC_PROJECT)
    no_blocking_call = """\
    from sqlalchemy.orm import Session
    async def stage(db: Session, user):
        db.add(user)
    """
    assert not applies(no_blocking_call, "FDB203", SYNC_PROJECT)
    # Blocking method names on objects that are no session.
    no_session = """\
    from fastapi import Request
    async def search(request: Request, redis):
        term = request.query_params.get("q")
        await redis.delete(term)
        return request.scope.get("path")
    """
    assert not applies(no_session, "FDB203", terms_of({"app/db.py": SYNC_DB, "app/example.py": no_session}))
    # The sync session comes from a class method of another module.
    code = """\
    from app.db import Database
    async def job(stmt):
        db = Database.session()
        db.execute(stmt)
    """
    db = ASYNC_DATABASE.replace("AsyncSession", "Session").replace("async_sessionmaker", "sessionmaker")
    db = db.replace("sqlalchemy.ext.asyncio", "sqlalchemy.orm").replace("expire_on_commit=False", "")
    assert applies_in(code, "FDB203", {"app/db.py": db})
    assert rows(code, "FDB203", files={"app/db.py": db}) == [4]
    # Through a dependency imported under another name, and a string annotation.
    aliased = """\
    from fastapi import Depends
    from app.db import get_db as database
    async def remove(item_id: int, db=Depends(database)):
        db.execute(stmt)
    async def count(db: "Session"):
        return db.scalar(stmt)
    """
    assert applies_in(aliased, "FDB203", {"app/db.py": SYNC_DB})
    assert rows(aliased, "FDB203", files={"app/db.py": SYNC_DB}) == [4]


def test_lazy_load_applies_to_awaited_loads_with_models():
    code = HEAD + textwrap.dedent(
        """\
        async def titles(session: AsyncSession, user_id: int):
            user = await session.get(User, user_id)
            return user.posts
        """
    )
    assert applies(code, "FDB204", ASYNC_PROJECT)
    assert not applies(code, "FDB204", ASYNC_PROJECT._replace(model_names=frozenset()))
    created_only = HEAD + "async def create(session: AsyncSession):\n    session.add(User())\n    await session.commit()\n"
    assert not applies(created_only, "FDB204", ASYNC_PROJECT)
    # Loading method names called, but never awaited.
    not_awaited = HEAD + textwrap.dedent(
        """\
        async def titles(session: AsyncSession, cache, user_id: int):
            user = cache.get(user_id)
            await session.commit()
            return user.posts
        """
    )
    assert not applies(not_awaited, "FDB204", ASYNC_PROJECT)
    assert rows(not_awaited, "FDB204", files=PROJECT) == []
    sync_project = """\
    from app.models import User
    async def titles(db, user_id: int):
        user = db.get(User, user_id)
        return user.posts
    """
    assert not applies(sync_project, "FDB204", SYNC_PROJECT)
    # A created instance refreshed by an awaited `refresh()`.
    refreshed = HEAD + textwrap.dedent(
        """\
        async def create(session: AsyncSession):
            user = User()
            session.add(user)
            await session.commit()
            await session.refresh(user)
            return user.posts
        """
    )
    assert applies_in(refreshed, "FDB204", PROJECT)
    assert rows(refreshed, "FDB204", files=PROJECT) == [10]


def test_relationship_rules_apply_only_in_asyncio_projects():
    models = """\
    from sqlalchemy.orm import relationship as rel
    class User(Base):
        __tablename__ = "user"
        posts = rel("Post", lazy="dynamic")
    """
    assert applies(models, "FDB205", ASYNC_PROJECT) and applies(models, "FDB206", ASYNC_PROJECT)
    assert not applies(models, "FDB205", SYNC_PROJECT) and not applies(models, "FDB206", SYNC_PROJECT)
    no_relationship = """\
    from sqlalchemy.orm import Mapped, mapped_column
    class User(Base):
        __tablename__ = "user"
        id: Mapped[int] = mapped_column(primary_key=True)
    """
    assert not applies(no_relationship, "FDB205", ASYNC_PROJECT)
    assert not applies(no_relationship, "FDB206", ASYNC_PROJECT)


def test_dynamic_relationship_applies_to_each_spelling():
    no_lazy = """\
    from sqlalchemy.orm import relationship
    class User(Base):
        __tablename__ = "user"
        posts = relationship("Post", back_populates="author")
    """
    assert not applies(no_lazy, "FDB206", ASYNC_PROJECT)
    for code in (
        "from sqlalchemy import orm\nclass User(Base):\n    posts: orm.DynamicMapped['Post'] = orm.relationship()\n",
        "from sqlalchemy.orm import dynamic_loader\nclass User(Base):\n    posts = dynamic_loader('Post')\n",
        (
            "from sqlalchemy.orm import backref, relationship\n"
            "class Post(Base):\n    author = relationship('User', backref=backref('posts', lazy='dynamic'))\n"
        ),
        (
            "from sqlmodel import Relationship\n"
            "class Hero(SQLModel, table=True):\n"
            "    team: list['Team'] = Relationship(sa_relationship_kwargs={'lazy': 'dynamic'})\n"
        ),
    ):
        assert applies(code, "FDB206", ASYNC_PROJECT), code
        assert len(lint(code, "FDB206", files={"app/db.py": DB})) == 1, code


def test_sync_with_on_async_applies_to_plain_with_on_async_objects():
    async_with_only = """\
    from sqlalchemy.ext.asyncio import async_sessionmaker
    SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
    async def job():
        async with SessionLocal() as session:
            pass
    """
    assert not applies(async_with_only, "FDB207", ASYNC_PROJECT)
    sync_project = """\
    from app.db import SessionLocal
    def job():
        with SessionLocal() as session:
            session.commit()
    """
    assert not applies(sync_project, "FDB207", SYNC_PROJECT)
    assert applies_in(sync_project, "FDB207", {"app/db.py": DB})
    assert rows(sync_project, "FDB207", files={"app/db.py": DB}) == [3]
    code = """\
    from app.db import Database
    async def job():
        with Database.session() as session:
            pass
    """
    assert applies_in(code, "FDB207", {"app/db.py": ASYNC_DATABASE})
    assert rows(code, "FDB207", files={"app/db.py": ASYNC_DATABASE}) == [3]


def test_async_session_in_sync_function_applies_to_calls_in_plain_defs():
    sync_project = """\
    from app.db import get_db
    def delete_user(user_id: int, db=Depends(get_db)):
        db.delete(db.get(User, user_id))
        db.commit()
    """
    assert not applies(sync_project, "FDB208", SYNC_PROJECT)
    assert not applies_in(sync_project, "FDB208", {"app/db.py": SYNC_DB})
    only_sync_methods = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    def stage(session: AsyncSession, user):
        session.add(user)
        return UserRepository(session)
    """
    assert not applies(only_sync_methods, "FDB208", ASYNC_PROJECT)
    # Coroutine methods called in `async def` only (the decorator of an `async def`
    # is in it too).
    async_only = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    @router.delete("/users/{user_id}")
    async def delete_user(user_id: int, session: AsyncSession):
        session.delete(await session.get(User, user_id))
        await session.commit()
    """
    assert not applies(async_only, "FDB208", ASYNC_PROJECT)
    code = """\
    from app.db import Database
    def job(stmt):
        session = Database.session()
        session.commit()
    """
    assert applies_in(code, "FDB208", {"app/db.py": ASYNC_DATABASE})
    assert rows(code, "FDB208", files={"app/db.py": ASYNC_DATABASE}) == [4]
    # A plain def nested in an `async def`.
    nested = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    async def outer(session: AsyncSession):
        def inner():
            session.flush()
        return inner
    """
    assert applies(nested, "FDB208", SYNC_PROJECT)
    assert rows(nested, "FDB208") == [4]
