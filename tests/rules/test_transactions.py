"""FDB801-FDB803 beyond the embedded examples: several files, messages, fixes, traps."""

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
from fastdb_lint.testing import NO_PROJECT_TERMS, fix_sources

PATH = "app/example.py"
DB = """\
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

engine = create_async_engine("postgresql+asyncpg://localhost/app")
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session():
    async with SessionLocal() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
"""
MODELS = """\
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Versioned:
    version: Mapped[int] = mapped_column(nullable=False)
    __mapper_args__ = {"version_id_col": version}


class Wallet(Versioned, Base):
    __tablename__ = "wallet"
    id: Mapped[int] = mapped_column(primary_key=True)
    balance: Mapped[int]


class Account(Base):
    __tablename__ = "account"
    id: Mapped[int] = mapped_column(primary_key=True)
    balance: Mapped[int]
"""


def lint(code: str, select: str, files: dict[str, str] | None = None, path: str = PATH):
    sources = {**(files or {}), path: textwrap.dedent(code)}
    return lint_sources(sources, select=(select,))[path]


def fix(code: str, select: str, *, unsafe: bool = True, files: dict[str, str] | None = None) -> str:
    code = textwrap.dedent(code)
    return fix_sources({**(files or {}), PATH: code}, PATH, (select,), unsafe=unsafe)


# -- FDB801 -------------------------------------------------------------------------


def test_commit_in_loop_of_a_route_with_session_alias():
    findings = lint(
        """\
        from fastapi import APIRouter
        from app.db import SessionDep

        router = APIRouter()

        @router.post("/import")
        async def import_users(emails: list[str], session: SessionDep):
            async for email in stream(emails):
                session.add(User(email=email))
                await session.commit()
        """,
        "FDB801",
        files={"app/db.py": DB},
    )
    assert [(f.start.row, f.start.column) for f in findings] == [(10, 15)]
    assert "one transaction per iteration" in findings[0].message


def test_commit_in_loop_each_commit_reported_and_not_after_loop():
    findings = lint(
        """\
        from sqlalchemy.orm import Session
        def f(db: Session, items, other):
            for item in items:
                db.add(item)
                db.commit()
                for x in other:
                    db.commit()
            db.commit()
            for item in items:
                def later():
                    db.commit()
        """,
        "FDB801",
    )
    assert [f.start.row for f in findings] == [5, 7]


def test_commit_in_loop_with_a_per_row_limited_query():
    findings = lint(
        """\
        from sqlalchemy import select
        from sqlalchemy.orm import Session
        def f(db: Session, users, pages):
            for user in users:
                user.last = db.scalars(select(Order).where(Order.user_id == user.id).limit(1)).first()
                db.commit()
            for n in range(pages):
                rows = db.scalars(select(Order).offset(n * 100).limit(100)).all()
                db.commit()
        """,
        "FDB801",
    )
    assert [f.start.row for f in findings] == [6]


@pytest.mark.parametrize(
    "loop",
    [
        "    for chunk in chunked(items, 100):\n        db.add_all(chunk)\n        db.commit()\n",
        "    for i in range(0, len(items), SIZE):\n        db.add_all(items[i : i + SIZE])\n        db.commit()\n",
        "    for part in result.partitions(500):\n        db.commit()\n",
        "    batches = [items[i : i + 100] for i in range(0, len(items), 100)]\n    for b in batches:\n        db.commit()\n",
        "    buf = []\n    for item in items:\n        buf.append(item)\n        if len(buf) >= 100:\n            db.add_all(buf)\n            db.commit()\n",
        "    for n, item in enumerate(items):\n        db.add(item)\n        if n % 1000 == 0:\n            db.commit()\n",
        "    offset = 0\n    while offset < total:\n        db.execute(select(M).offset(offset).limit(100))\n        db.commit()\n        offset += 100\n",
        "    for attempt in range(MAX_RETRIES):\n        try:\n            db.commit()\n            return\n        except OperationalError:\n            db.rollback()\n",
        "    for attempt in Retrying(stop=stop_after_attempt(3)):\n        with attempt:\n            db.commit()\n",
        "    while True:\n        job = queue.get()\n        if job is None:\n            break\n        db.add(job)\n        db.commit()\n",
        "    for tenant in tenants:\n        with Session(engine) as db:\n            db.add(tenant)\n            db.commit()\n",
        "    for item in items:\n        cache.commit()\n",
    ],
)
def test_commit_in_loop_traps(loop):
    code = "from sqlalchemy.orm import Session\nSIZE = 100\ndef f(db: Session, items, result, total, queue, tenants, engine, cache):\n" + loop
    assert lint(code, "FDB801") == []


# -- FDB802 -------------------------------------------------------------------------


def test_swallowed_error_reported_at_except_with_message():
    findings = lint(
        """\
        from sqlalchemy.exc import DBAPIError
        from app.db import SessionDep

        async def create(session: SessionDep, user):
            session.add(user)
            try:
                await session.commit()
            except DBAPIError:
                log.warning("failed")
        """,
        "FDB802",
        files={"app/db.py": DB},
    )
    assert [(f.start.row, f.start.column) for f in findings] == [(8, 5)]
    assert "PendingRollbackError" in findings[0].message


def test_swallowed_error_fix_matches_tab_indentation_and_comments():
    code = (
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "async def f(session: AsyncSession):\n"
        "\ttry:\n"
        "\t\tawait session.commit()\n"
        "\texcept Exception:  # keep going\n"
        "\t\t# the duplicate is fine\n"
        "\t\tlog.info('dup')\n"
    )
    assert fix(code, "FDB802") == (
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "async def f(session: AsyncSession):\n"
        "\ttry:\n"
        "\t\tawait session.commit()\n"
        "\texcept Exception:  # keep going\n"
        "\t\t# the duplicate is fine\n"
        "\t\tawait session.rollback()\n"
        "\t\tlog.info('dup')\n"
    )
    assert fix(code, "FDB802", unsafe=False) == code


def test_swallowed_error_fix_is_idempotent():
    code = """\
    from sqlalchemy.orm import Session
    def f(db: Session):
        try:
            db.flush()
        except Exception:
            pass
    """
    once = fix(code, "FDB802")
    assert "        db.rollback()\n        pass\n" in once
    assert fix(once, "FDB802") == once


@pytest.mark.parametrize(
    "code",
    [
        # an async session in a plain def: no await possible
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "def f(session: AsyncSession):\n"
        "    try:\n        session.commit()\n    except Exception:\n        pass\n",
        # two sessions: which one to roll back?
        "from sqlalchemy.orm import Session\n"
        "def f(a: Session, b: Session):\n"
        "    try:\n        a.commit()\n        b.commit()\n    except Exception:\n        pass\n",
    ],
)
def test_swallowed_error_without_fix(code):
    findings = lint(code, "FDB802")
    assert len(findings) == 1 and findings[0].fix is None


@pytest.mark.parametrize(
    "code",
    [
        # finally closes the session
        "from sqlalchemy.orm import Session\n"
        "def f(db: Session):\n"
        "    try:\n        db.commit()\n    except Exception:\n        log.error('x')\n    finally:\n        db.close()\n",
        # the session is opened by the with statement inside the try
        "from sqlalchemy.orm import Session\n"
        "def f(engine):\n"
        "    try:\n        with Session(engine) as db:\n            db.commit()\n    except Exception:\n        log.error('x')\n",
        # an inner handler rolls back and re-raises; the outer one catches what is left
        "from sqlalchemy.orm import Session\n"
        "def f(db: Session):\n"
        "    try:\n        try:\n            db.commit()\n        except Exception:\n            db.rollback()\n            raise\n"
        "    except Exception:\n        return None\n",
        # a re-raise in a branch counts
        "from sqlalchemy.orm import Session\n"
        "def f(db: Session, strict: bool):\n"
        "    try:\n        db.commit()\n    except Exception:\n        if strict:\n            raise\n",
        # closed right after the try
        "from sqlalchemy import Connection, text\n"
        "def f(conn: Connection):\n"
        "    try:\n        conn.execute(text('DROP DATABASE test'))\n    except Exception:\n        pass\n"
        "    conn.close()\n",
        # only the database call's own try matters
        "from sqlalchemy.orm import Session\n"
        "def f(db: Session):\n"
        "    db.commit()\n    try:\n        notify()\n    except Exception:\n        pass\n",
    ],
)
def test_swallowed_error_traps(code):
    assert lint(code, "FDB802") == []


def test_swallowed_error_on_an_object_of_unknown_type():
    code = """\
    from sqlalchemy.exc import IntegrityError

    async def create(db, user):
        try:
            await db.commit()
        except IntegrityError:
            return None
        try:
            await db.commit()
        except Exception:
            return None
    """
    findings = lint(code, "FDB802")
    assert [f.start.row for f in findings] == [6]
    assert "    except IntegrityError:\n        await db.rollback()\n        return None\n" in fix(code, "FDB802")


def test_swallowed_error_imported_exception_aliases():
    findings = lint(
        """\
        import sqlalchemy.exc as sa_exc
        from sqlalchemy.orm import Session
        def f(db: Session):
            try:
                db.commit()
            except (KeyError, sa_exc.IntegrityError):
                pass
            except sa_exc.OperationalError:
                return
        """,
        "FDB802",
    )
    assert [f.start.row for f in findings] == [6, 8]


# -- FDB803 -------------------------------------------------------------------------


def test_read_modify_write_optimistic_locking_on_a_base_class():
    code = """\
    from sqlalchemy.ext.asyncio import AsyncSession
    from app.models import Account, Wallet

    async def pay(session: AsyncSession, wallet_id: int, account_id: int, amount: int) -> None:
        wallet = await session.get(Wallet, wallet_id)
        wallet.balance -= amount
        account = await session.get(Account, account_id)
        account.balance += amount
        await session.commit()
    """
    findings = lint(code, "FDB803", files={"app/models.py": MODELS})
    assert [(f.start.row, f.start.column) for f in findings] == [(8, 5)]
    assert "with_for_update()" in findings[0].message


def test_read_modify_write_needs_a_later_commit():
    findings = lint(
        """\
        from sqlalchemy.orm import Session
        def f(db: Session, pk: int):
            db.commit()
            item = db.get(Item, pk)
            item.count += 1
            return item
        def g(db: Session, pk: int):
            item = db.get(Item, pk)
            item.count += 1
            helper()
            db.flush()
        """,
        "FDB803",
    )
    assert [f.start.row for f in findings] == [9]


@pytest.mark.parametrize(
    "body",
    [
        "    stmt = select(Item).where(Item.id == pk)\n    stmt = stmt.with_for_update()\n"
        "    item = db.execute(stmt).scalar_one()\n",
        "    item = db.query(Item).filter(Item.id == pk).with_for_update().one()\n",
        "    item = db.scalars(select(Item).with_for_update(skip_locked=True)).first()\n",
        "    item = db.get(Item, pk, with_for_update={'nowait': True})\n",
        "    item = load_item(db, pk)\n",
    ],
)
def test_read_modify_write_traps(body):
    code = (
        "from sqlalchemy import select\nfrom sqlalchemy.orm import Session\n"
        "def f(db: Session, pk: int):\n" + body + "    item.count += 1\n    db.commit()\n"
    )
    assert lint(code, "FDB803") == []


def test_read_modify_write_loop_over_loaded_rows():
    findings = lint(
        """\
        from sqlalchemy import select
        from sqlalchemy.ext.asyncio import AsyncSession
        async def f(session: AsyncSession, ids):
            for item in (await session.scalars(select(Item).where(Item.id.in_(ids)))).all():
                item.count += 1
                item.tags += ["seen"]
            await session.commit()
        """,
        "FDB803",
    )
    assert [f.start.row for f in findings] == [5]


# -- shape preconditions -------------------------------------------------------------

NO_TERMS = NO_PROJECT_TERMS


def applies(code: str, select: str, project: ProjectTerms = NO_TERMS) -> bool:
    return all_rules()[select].applies(file_shape(ast.parse(textwrap.dedent(code))), project)


def applies_in(code: str, select: str, files: dict[str, str]) -> bool:
    """Whether ``select`` applies to ``code`` linted at PATH next to ``files``, with the
    project terms the engine derives from them."""
    sources = {**files, PATH: textwrap.dedent(code)}
    settings = Settings(root=Path("."), select=(select,), enabled=resolve_selection((select,)))
    terms = Engine(settings, build_index([(p, p, t) for p, t in sources.items()])).terms
    return applies(code, select, terms)


COMMIT_IN_HELPER = """\
from sqlalchemy.orm import Session
def save(db: Session, row) -> None:
    db.add(row)
    db.commit()
def import_rows(db: Session, rows) -> None:
    for row in rows:
        save(db, row)
"""


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "from sqlalchemy.orm import Session\n"
            "def import_rows(db: Session, rows) -> None:\n"
            "    for row in rows:\n"
            "        db.add(row)\n"
            "    db.commit()\n",
            False,
        ),
        # The rule only sees `commit()` written inside the loop, not one in a helper it calls.
        (COMMIT_IN_HELPER, False),
        (
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def drain(session: AsyncSession, stream) -> None:\n"
            "    async for item in stream:\n"
            "        session.add(item)\n"
            "        await session.commit()\n",
            True,
        ),
        (
            "from sqlalchemy import create_engine\n"
            "engine = create_engine(URL)\n"
            "def drain(queue) -> None:\n"
            "    with engine.connect() as conn:\n"
            "        while queue:\n"
            "            conn.execute(queue.pop())\n"
            "            conn.commit()\n",
            True,
        ),
        # A receiver of unknown type is no session: nothing names one.
        ("def drain(queue, db) -> None:\n    while queue:\n        db.add(queue.pop())\n        db.commit()\n", False),
    ],
)
def test_commit_in_loop_applies(code, expected):
    assert applies(code, "FDB801") is expected


def test_commit_in_loop_applies_through_a_project_dependency():
    code = """\
    from fastapi import Depends
    from app.db import get_session
    async def import_rows(rows, session=Depends(get_session)) -> None:
        for row in rows:
            session.add(row)
            await session.commit()
    """
    assert not applies(code, "FDB801")
    assert applies_in(code, "FDB801", {"app/db.py": DB})
    assert [f.start.row for f in lint(code, "FDB801", files={"app/db.py": DB})] == [6]


def test_commit_in_a_helper_called_in_a_loop_is_not_reported():
    assert lint(COMMIT_IN_HELPER, "FDB801") == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # An API client's `execute()` guarded by its own error type.
        (
            "from googleapiclient.errors import HttpError\n"
            "def fetch(service):\n"
            "    try:\n"
            "        return service.files().get(fileId='x').execute()\n"
            "    except HttpError:\n"
            "        return None\n",
            False,
        ),
        # The same with a generic handler: the receiver is of unknown type.
        (
            "def fetch(service):\n"
            "    try:\n"
            "        return service.files().get(fileId='x').execute()\n"
            "    except Exception:\n"
            "        return None\n",
            False,
        ),
        # The commit is not in the `try`.
        (
            "from sqlalchemy.orm import Session\n"
            "def save(db: Session, raw: str) -> None:\n"
            "    try:\n"
            "        value = int(raw)\n"
            "    except Exception:\n"
            "        value = 0\n"
            "    db.add(Row(value=value))\n"
            "    db.commit()\n",
            False,
        ),
        # Every handler raises or rolls back.
        (
            "from sqlalchemy.orm import Session\n"
            "def save(db: Session, row) -> None:\n"
            "    try:\n"
            "        db.commit()\n"
            "    except IntegrityError:\n"
            "        log.warning('duplicate')\n"
            "        raise\n"
            "    try:\n"
            "        db.flush()\n"
            "    except Exception:\n"
            "        db.rollback()\n",
            False,
        ),
        # The commit runs in the handler, or in a function the `try` only defines.
        (
            "from sqlalchemy.orm import Session\n"
            "def save(db: Session, row) -> None:\n"
            "    try:\n"
            "        def later():\n"
            "            db.commit()\n"
            "        prepare(row)\n"
            "    except Exception:\n"
            "        db.commit()\n",
            False,
        ),
        (
            "from sqlalchemy.orm import Session\n"
            "def ping(db: Session) -> bool:\n"
            "    try:\n"
            "        db.execute(text('SELECT 1'))\n"
            "    except:\n"
            "        return False\n"
            "    return True\n",
            True,
        ),
        (
            "from sqlalchemy import exc\n"
            "async def add(session, user) -> None:\n"
            "    try:\n"
            "        await session.flush()\n"
            "    except (ValueError, exc.SQLAlchemyError):\n"
            "        pass\n",
            True,
        ),
    ],
)
def test_db_error_swallowed_applies(code, expected):
    assert applies(code, "FDB802") is expected
    if not expected:
        assert lint(code, "FDB802") == []


def test_db_error_swallowed_through_an_aliased_error_class():
    code = """\
        from sqlalchemy.exc import IntegrityError as Duplicate
        def create(db, user) -> bool:
            try:
                db.commit()
            except Duplicate:
                return False
            return True
        """
    assert applies(code, "FDB802")
    assert [f.start.row for f in lint(code, "FDB802")] == [5]


def test_db_error_swallowed_applies_when_only_a_nested_handler_raises():
    # The `raise` belongs to the inner `except`: the outer one still swallows.
    code = """\
        from sqlalchemy.orm import Session
        def save(db: Session) -> None:
            try:
                db.commit()
            except Exception:
                try:
                    notify()
                except OSError:
                    raise
        """
    assert applies(code, "FDB802")
    assert [f.start.row for f in lint(code, "FDB802")] == [5]


def test_db_error_swallowed_generic_handler_through_a_project_dependency():
    code = """\
        from fastapi import Depends
        from app.db import get_session
        async def create(user, session=Depends(get_session)) -> bool:
            session.add(user)
            try:
                await session.commit()
            except Exception:
                return False
            return True
        """
    assert not applies(code, "FDB802")
    assert applies_in(code, "FDB802", {"app/db.py": DB})
    assert [f.start.row for f in lint(code, "FDB802", files={"app/db.py": DB})] == [7]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # Modified, never committed or flushed.
        (
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def preview(session: AsyncSession, account_id: int, amount: int) -> int:\n"
            "    account = await session.get(Account, account_id)\n"
            "    account.balance -= amount\n"
            "    return account.balance\n",
            False,
        ),
        # The increment is done in SQL.
        (
            "from sqlalchemy import update\n"
            "def bump(db, pk: int) -> None:\n"
            "    db.execute(update(Post).where(Post.id == pk).values(likes=Post.likes + 1))\n"
            "    db.commit()\n",
            False,
        ),
        # An in-memory counter next to a commit: no instance loaded through a session.
        (
            "class Stats:\n"
            "    def hit(self, db) -> None:\n"
            "        self.hits += 1\n"
            "        db.commit()\n",
            False,
        ),
        # Instances reached through an attribute (a relationship), not bound to a call.
        (
            "from sqlalchemy.orm import Session\n"
            "def touch(db: Session, participant) -> None:\n"
            "    for role in participant.active_roles:\n"
            "        role.activity += 1\n"
            "    user = db.get(User, participant.user_id)\n"
            "    db.commit()\n",
            False,
        ),
        # A session of unknown type.
        (
            "async def restock(session, sku: str, n: int) -> None:\n"
            "    item = (await session.scalars(select(Item).where(Item.sku == sku))).one()\n"
            "    item.stock += n\n"
            "    await session.commit()\n",
            False,
        ),
        (
            "from sqlalchemy.orm import Session\n"
            "def like(db: Session, post_id: int) -> None:\n"
            "    post = db.query(Post).filter(Post.id == post_id).first()\n"
            "    post.likes += 1\n"
            "    db.flush()\n",
            True,
        ),
        (
            "from sqlalchemy.ext.asyncio import AsyncSession\n"
            "async def restock(session: AsyncSession, sku: str, n: int) -> None:\n"
            "    item = (await session.scalars(select(Item).where(Item.sku == sku))).one()\n"
            "    item.stock += n\n"
            "    await session.commit()\n",
            True,
        ),
    ],
)
def test_read_modify_write_applies(code, expected):
    assert applies(code, "FDB803") is expected
    if not expected:
        assert lint(code, "FDB803") == []


def test_read_modify_write_through_another_name_and_a_project_dependency():
    code = """\
        from fastapi import Depends
        from app.db import SessionDep
        async def like(session: SessionDep, post_id: int) -> None:
            post = await session.get(Post, post_id)
            target = post
            target.likes += 1
            await session.commit()
        """
    assert not applies(code, "FDB803")
    assert applies_in(code, "FDB803", {"app/db.py": DB})
    assert [f.start.row for f in lint(code, "FDB803", files={"app/db.py": DB})] == [6]
