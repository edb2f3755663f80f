"""FDB6xx beyond the embedded examples: URL analysis, several files, fixes."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fastdb_lint.analysis.shape import file_shape
from fastdb_lint.analysis.urls import parse_url
from fastdb_lint.config import Settings
from fastdb_lint.engine import Engine, build_index, lint_sources
from fastdb_lint.registry import all_rules, resolve_selection
from fastdb_lint.rules.base import ProjectTerms
from fastdb_lint.source import SourceText
from fastdb_lint.testing import NO_PROJECT_TERMS


def lint(code: str, select: str, path: str = "app/db.py", **files: str):
    sources = {**{k.replace("__", "/") + ".py": v for k, v in files.items()}, path: textwrap.dedent(code)}
    return [f for f in lint_sources(sources, select=(select,))[path] if f.code == select]


def fix(code: str, select: str, path: str = "app/db.py") -> str:
    code = textwrap.dedent(code)
    settings = Settings(root=Path("."), select=(select,), enabled=resolve_selection((select,)))
    engine = Engine(settings, build_index([(path, path, code)]))
    outcome = engine.fix(path, path, SourceText(code), unsafe=False)
    assert outcome.error is None
    return outcome.text


# -- URL parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "drivername", "password"),
    [
        ("postgresql+asyncpg://app:pw@db:5432/app", "postgresql+asyncpg", "pw"),
        ("postgresql://{user}:{password}@{host}:{port}/{db}", "postgresql", "{password}"),
        ("mysql://${USER}:${PASS}@${HOST}:${PORT}/app", "mysql", "${PASS}"),
        ("postgresql://app:%(DB_PASS)s@db/app", "postgresql", "%(DB_PASS)s"),
        ("postgresql://app:p%40ss@db/app", "postgresql", "p@ss"),
    ],
)
def test_parse_url_is_lenient_with_templates(url, drivername, password):
    parsed = parse_url(url)
    assert parsed is not None
    assert parsed.drivername == drivername
    assert parsed.password == password


def test_parse_url_memory_forms():
    assert parse_url("sqlite://").is_memory_sqlite
    assert parse_url("sqlite:///:memory:").is_memory_sqlite
    shared = parse_url("sqlite:///file:db1?mode=memory&cache=shared&uri=true")
    assert shared.is_memory_sqlite and shared.is_shared_cache
    assert not parse_url("sqlite:///./app.db").is_memory_sqlite
    assert parse_url("not a url") is None


def test_make_url_is_imported_lazily():
    code = (
        "import sys\n"
        "from fastdb_lint.registry import all_rules\n"
        "all_rules()\n"
        "import fastdb_lint.analysis.urls\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- FDB601 --------------------------------------------------------------------------


def test_fdb601_message_names_driver():
    (finding,) = lint(
        """
        from sqlalchemy.ext.asyncio import create_async_engine
        engine = create_async_engine("mysql+pymysql://app@db/app")
        """,
        "FDB601",
    )
    assert "mysql+pymysql" in finding.message and "mysql+aiomysql" in finding.message


def test_fdb601_constant_shared_with_sync_engine_gets_no_fix():
    code = """\
        from sqlalchemy import create_engine
        from sqlalchemy.ext.asyncio import create_async_engine
        URL = "postgresql://app@db/app"
        sync_engine = create_engine(URL)
        engine = create_async_engine(URL)
        """
    (finding,) = lint(code, "FDB601")
    assert finding.start.row == 5
    assert finding.fix is None


def test_fdb601_constant_imported_elsewhere_gets_no_fix():
    code = """\
        from sqlalchemy.ext.asyncio import create_async_engine
        DATABASE_URL = "postgresql://app@db/app"
        engine = create_async_engine(DATABASE_URL)
        """
    other = "from sqlalchemy import create_engine\nfrom app.db import DATABASE_URL\nengine = create_engine(DATABASE_URL)\n"
    (finding,) = lint(code, "FDB601", app__sync=other)
    assert finding.fix is None


def test_fdb601_postgres_query_options_get_no_fix():
    (finding,) = lint(
        """
        from sqlalchemy.ext.asyncio import create_async_engine
        engine = create_async_engine("postgresql://app@db/app?sslmode=require")
        """,
        "FDB601",
    )
    assert finding.fix is None


def test_fdb601_settings_property_is_followed():
    code = """\
        from pydantic import computed_field
        from pydantic_settings import BaseSettings
        from sqlalchemy.ext.asyncio import create_async_engine

        class Settings(BaseSettings):
            POSTGRES_USER: str = "app"

            @computed_field
            @property
            def DATABASE_URI(self) -> str:
                return f"postgresql+psycopg2://{self.POSTGRES_USER}@db/app"

        def get_settings() -> Settings:
            return Settings()

        engine = create_async_engine(str(get_settings().DATABASE_URI))
        """
    (finding,) = lint(code, "FDB601")
    assert finding.start.row == 16
    assert 'return f"postgresql+asyncpg://{self.POSTGRES_USER}@db/app"' in fix(code, "FDB601")


@pytest.mark.parametrize(
    "code",
    [
        # conditional assignment: either value may be the URL
        """
        import os
        from sqlalchemy.ext.asyncio import create_async_engine
        if os.getenv("TESTING"):
            URL = "sqlite://"
        else:
            URL = "postgresql+asyncpg://db/app"
        engine = create_async_engine(URL)
        """,
        # a parameter shadows nothing: its default is not the URL at every call
        """
        from sqlalchemy.ext.asyncio import create_async_engine
        def make(url="postgresql://x/app"):
            return create_async_engine(url)
        """,
        # built at run time
        """
        import os
        from sqlalchemy.ext.asyncio import create_async_engine
        engine = create_async_engine(os.environ["DATABASE_URL"].replace("postgres://", "postgresql+asyncpg://"))
        """,
        # unknown scheme
        """
        from sqlalchemy.ext.asyncio import create_async_engine
        engine = create_async_engine(f"{scheme}://app@db/app")
        """,
    ],
)
def test_fdb601_unresolved_urls_are_silent(code):
    assert lint(code, "FDB601") == []


def test_fdb601_fix_keeps_comments_and_is_idempotent():
    code = """\
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(  # the one engine
            "sqlite:///./app.db",  # local file
            echo=False,
        )
        """
    fixed = fix(code, "FDB601")
    assert fixed == textwrap.dedent(code).replace("sqlite:///", "sqlite+aiosqlite:///")
    assert fix(fixed, "FDB601") == fixed


# -- FDB602 --------------------------------------------------------------------------


def test_fdb602_one_finding_per_import_and_env_py_skipped():
    code = """\
        import psycopg2
        from psycopg2.extras import RealDictCursor
        from sqlalchemy.ext.asyncio import AsyncSession
        """
    assert [f.start.row for f in lint(code, "FDB602")] == [1, 2]
    env = "from alembic import context\n" + textwrap.dedent(code)
    assert lint(env, "FDB602", path="migrations/env.py") == []


def test_fdb602_async_route_through_router_in_other_file():
    code = """\
        import pymysql
        from app.routers import router

        @router.post("/items")
        async def create_item():
            return {}
        """
    routers = "from fastapi import APIRouter\nrouter = APIRouter()\n"
    assert len(lint(code, "FDB602", app__routers=routers)) == 1


# -- FDB603 / FDB607 / FDB608 -----------------------------------------------------------


def test_fdb603_two_keywords_fixed_in_rounds():
    code = """\
        from sqlalchemy import create_engine
        engine = create_engine(
            url,
            echo=True,  # noisy
            echo_pool="debug",
        )
        """
    assert len(lint(code, "FDB603")) == 2
    assert fix(code, "FDB603") == "from sqlalchemy import create_engine\nengine = create_engine(\n    url,\n)\n"


def test_fdb607_single_finding_per_call():
    code = """\
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool
        engine = create_engine(url, poolclass=NullPool, pool_size=5, max_overflow=2)
        """
    (finding,) = lint(code, "FDB607")
    assert "`pool_size`, `max_overflow`" in finding.message


def test_fdb608_false_and_unknown_calls_are_silent():
    code = """\
        from sqlalchemy import create_engine
        engine = create_engine(url, future=False)
        other = make_engine(url, future=True)
        """
    assert lint(code, "FDB608") == []


# -- FDB604 / FDB606 ---------------------------------------------------------------------


def test_fdb604_sqlite_constant_and_getenv_default_are_silent():
    code = """\
        import os
        from sqlalchemy import create_engine
        engine = create_engine(os.getenv("DATABASE_URL", "sqlite:///./app.db"))
        """
    assert lint(code, "FDB604") == []


def test_fdb604_unresolvable_poolclass_is_silent():
    code = """\
        from sqlalchemy import create_engine
        engine = create_engine(url, poolclass=settings.POOL_CLASS)
        """
    assert lint(code, "FDB604") == []


def test_fdb604_queue_pool_is_flagged():
    code = """\
        from sqlalchemy import create_engine
        from sqlalchemy.pool import QueuePool
        engine = create_engine(url, poolclass=QueuePool)
        """
    assert len(lint(code, "FDB604")) == 1


def test_fdb606_replaces_null_pool_keeping_import():
    code = """\
        from sqlalchemy import create_engine, StaticPool
        from sqlalchemy.pool import NullPool
        engine = create_engine("sqlite://", poolclass=NullPool)
        """
    assert fix(code, "FDB606") == (
        "from sqlalchemy import create_engine, StaticPool\n"
        "from sqlalchemy.pool import NullPool\n"
        'engine = create_engine("sqlite://", poolclass=StaticPool)\n'
    )


def test_fdb606_in_test_files_too():
    code = """\
        from sqlalchemy import create_engine
        engine = create_engine("sqlite:///:memory:")
        """
    assert len(lint(code, "FDB606", path="tests/conftest.py")) == 1


def test_fdb606_async_engine_with_sync_sqlite_driver_left_to_fdb601():
    code = """\
        from sqlalchemy.ext.asyncio import create_async_engine
        engine = create_async_engine("sqlite://")
        """
    assert lint(code, "FDB606") == []


# -- FDB605 ------------------------------------------------------------------------------


def test_fdb605_alembic_ini_position_and_noqa():
    ini = "[alembic]\nscript_location = migrations\nsqlalchemy.url = postgresql://app:s3cr3t@db/app\n"
    (finding,) = lint_sources({"alembic.ini": ini}, select=("FDB605",))["alembic.ini"]
    assert (finding.start.row, finding.start.column, finding.end.column) == (3, 18, 48)
    assert finding.severity.value == "security"
    suppressed = ini.replace("sqlalchemy.url", "# noqa: FDB605\nsqlalchemy.url")
    assert lint_sources({"alembic.ini": suppressed}, select=("FDB605",))["alembic.ini"] == []


def test_fdb605_ini_percent_escape():
    ini = "[alembic]\nsqlalchemy.url = postgresql://app:%%(DB_PASS)s@db/app\n"
    assert lint_sources({"alembic.ini": ini}, select=("FDB605",))["alembic.ini"] == []
    ini = "[alembic]\nsqlalchemy.url = postgresql://app:p%%40ss@db/app\n"
    assert len(lint_sources({"alembic.ini": ini}, select=("FDB605",))["alembic.ini"]) == 1


def test_fdb605_ini_in_tests_directory_is_skipped():
    ini = "[alembic]\nsqlalchemy.url = postgresql://app:s3cr3t@db/app\n"
    assert lint_sources({"tests/alembic.ini": ini}, select=("FDB605",))["tests/alembic.ini"] == []


@pytest.mark.parametrize(
    "literal",
    [
        '"redis://:s3cr3t@cache:6379/0"',
        '"https://user:s3cr3t@example.com/"',
        '"see postgresql://app:s3cr3t@db/app for details"',
        '"postgresql://app:xxxx@db/app"',
        '"postgresql://app:@db/app"',
    ],
)
def test_fdb605_not_database_urls_or_placeholders(literal):
    assert lint(f"URL = {literal}\n", "FDB605") == []


def test_fdb605_reported_at_literal():
    code = 'import os\nURL = os.getenv("DATABASE_URL", "postgresql://app:s3cr3t@db/app")\n'
    (finding,) = lint(code, "FDB605")
    assert (finding.start.row, finding.start.column) == (2, 33)


def test_fdb606_fix_drops_queue_arguments_static_pool_rejects():
    code = """\
        from sqlalchemy import create_engine
        engine = create_engine("sqlite://", pool_size=5, max_overflow=0, echo=False)
        """
    assert fix(code, "FDB606") == (
        "from sqlalchemy import create_engine\n"
        "from sqlalchemy.pool import StaticPool\n"
        'engine = create_engine("sqlite://", echo=False, poolclass=StaticPool)\n'
    )


def test_all_engine_fixes_together_converge():
    code = """\
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool
        DATABASE_URL = "sqlite:///:memory:"
        engine = create_async_engine(DATABASE_URL, echo=True, future=True, poolclass=NullPool, pool_size=3)
        """
    assert fix(code, "FDB6") == (
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "from sqlalchemy.pool import NullPool, StaticPool\n"
        'DATABASE_URL = "sqlite+aiosqlite:///:memory:"\n'
        "engine = create_async_engine(DATABASE_URL, poolclass=StaticPool)\n"
    )


def test_fdb601_function_local_constant():
    code = """\
        from sqlalchemy.ext.asyncio import create_async_engine

        def build_engine():
            url = "postgresql://app@db/app"
            return create_async_engine(url)

        def build_other(flag):
            url = "postgresql://app@db/app"
            if flag:
                url = "postgresql+asyncpg://app@db/app"
            return create_async_engine(url)
        """
    (finding,) = lint(code, "FDB601")
    assert finding.start.row == 5
    assert finding.fix is None  # `url` is used in two functions


# -- shape preconditions -------------------------------------------------------------

NO_TERMS = NO_PROJECT_TERMS


def applies(code: str, select: str, terms: ProjectTerms = NO_TERMS) -> bool:
    return all_rules()[select].applies(file_shape(ast.parse(textwrap.dedent(code))), terms)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # A sync engine, and an async one only named in annotations.
        ("from sqlalchemy import create_engine\nengine = create_engine('postgresql://app@db/app')\n", False),
        (
            "from sqlalchemy.ext.asyncio import AsyncEngine\n"
            "async def ping(engine: AsyncEngine) -> None:\n"
            "    async with engine.connect() as conn:\n"
            "        await conn.close()\n",
            False,
        ),
        (
            "from sqlalchemy.ext.asyncio import create_async_engine as make_engine\n"
            "engine = make_engine('postgresql://app@db/app')\n",
            True,
        ),
        ("import sqlalchemy.ext.asyncio as aio\nengine = aio.create_async_engine(URL)\n", True),
        (
            "from sqlalchemy import create_engine as ce\n"
            "from sqlalchemy.ext.asyncio import AsyncEngine\n"
            "engine = AsyncEngine(ce('sqlite:///./app.db'))\n",
            True,
        ),
    ],
)
def test_fdb601_applies(code, expected):
    assert applies(code, "FDB601") is expected


def test_fdb601_aliased_factory_still_reported():
    code = """\
        from sqlalchemy.ext.asyncio import create_async_engine as make_engine
        engine = make_engine("postgresql://app@db/app")
        """
    assert [f.start.row for f in lint(code, "FDB601")] == [2]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # A sync module: no async def, no asyncio extension.
        ("import psycopg2\n\ndef connect():\n    return psycopg2.connect('')\n", False),
        # The driver only named in a URL.
        (
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "engine = create_async_engine('postgresql+psycopg2://app@db/app')\n",
            False,
        ),
        # A relative import of a module named like a driver.
        ("from . import psycopg2\nasync def f():\n    pass\n", False),
        (
            "from pymysql.cursors import DictCursor\n"
            "from fastapi import APIRouter\n"
            "router = APIRouter()\n"
            "@router.get('/items')\n"
            "async def items():\n"
            "    return []\n",
            True,
        ),
        ("import MySQLdb, cx_Oracle\nimport sqlalchemy.ext.asyncio as sa_async\n", True),
        ("import psycopg2.extras as extras\nfrom sqlalchemy.ext import asyncio\n", True),
        (
            "from sqlmodel.ext.asyncio.session import AsyncSession\n"
            "def connect():\n"
            "    import psycopg2\n"
            "    return psycopg2.connect('')\n",
            True,
        ),
    ],
)
def test_fdb602_applies(code, expected):
    assert applies(code, "FDB602") is expected


def test_fdb602_submodule_from_import_still_reported():
    code = """\
        from pymysql.cursors import DictCursor
        from sqlalchemy.ext.asyncio import AsyncSession
        """
    assert [f.start.row for f in lint(code, "FDB602")] == [1]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # `echo` as a call, not as a keyword of an engine factory.
        ("import typer\nfrom sqlalchemy import create_engine\nengine = create_engine(url)\ntyper.echo('ok')\n", False),
        ("def build(factory):\n    return factory(url, echo=True)\n", False),
        ("from sqlmodel import create_engine as ce\nengine = ce(url, echo_pool=True)\n", True),
        ("import sqlalchemy as sa\nengine = sa.create_engine(url, echo='debug')\n", True),
    ],
)
def test_fdb603_applies(code, expected):
    assert applies(code, "FDB603") is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # Uses an engine created elsewhere.
        ("from app.db import engine\n\ndef ping():\n    with engine.connect() as conn:\n        return conn\n", False),
        ("import sqlalchemy as sa\nengine = sa.create_engine(DATABASE_URL)\n", True),
        ("from sqlalchemy.ext.asyncio import create_async_engine as cae\nengine = cae(url)\n", True),
    ],
)
def test_fdb604_applies(code, expected):
    assert applies(code, "FDB604") is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # Dialect imports mention a backend, but no string holds a database URL.
        (
            "from sqlalchemy.dialects.postgresql import UUID\n"
            "DOCS = 'https://docs.sqlalchemy.org/en/20/dialects/postgresql.html'\n",
            False,
        ),
        ("BROKER = 'redis://:s3cr3t@cache:6379/0'\n", False),
        ("DATABASE_URL = 'postgresql+asyncpg://app:s3cr3t@db:5432/app'\n", True),
        ("engine = create_engine(f'mysql+pymysql://root:hunter2@{host}/shop')\n", True),
        # Implicit concatenation: one constant in the `ast`, two literals in LibCST.
        ("DATABASE_URL = ('x' 'postgresql://app:s3cr3t@db/app')\n", True),
        # Every credential is a replacement field: no literal password.
        ("URL = f'postgresql+psycopg2://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}'\n", False),
        (
            "URL = (\n"
            "    f'postgresql+psycopg2://{USER}:'\n"
            "    f'{PASSWORD}@{HOST}:{PORT}/{NAME}'\n"
            ")\n",
            False,
        ),
        # No user information at all.
        ("URL = f'sqlite:///{path}'\nPREFIX = 'sqlite:///'\n", False),
        # A literal password between replacement fields.
        ("URL = f'postgresql://{USER}:hunter2@{HOST}/app'\n", True),
        ("URL = f'mysql://{USER}:hunter2@' f'{HOST}/app'\n", True),
    ],
)
def test_fdb605_applies(code, expected):
    assert applies(code, "FDB605") is expected
    if not expected:
        assert lint(code, "FDB605") == []
    elif "hunter2" in code:
        assert len(lint(code, "FDB605")) == 1


def test_fdb605_url_after_a_concatenated_literal_still_reported():
    assert len(lint('DATABASE_URL = ("x" "postgresql://app:s3cr3t@db/app")\n', "FDB605")) == 1


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("from app.db import SessionLocal\n\ndef get_db():\n    return SessionLocal()\n", False),
        # The URL comes from another module: the file's strings say nothing.
        ("from sqlalchemy import create_engine\nfrom app.settings import TEST_URL\nengine = create_engine(TEST_URL)\n", True),
    ],
)
def test_fdb606_applies(code, expected):
    assert applies(code, "FDB606") is expected


def test_fdb606_url_from_another_module_still_reported():
    code = """\
        from sqlalchemy import create_engine
        from app.settings import TEST_URL
        engine = create_engine(TEST_URL)
        """
    assert [f.start.row for f in lint(code, "FDB606", app__settings='TEST_URL = "sqlite://"\n')] == [3]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "from sqlalchemy import create_engine\nfrom sqlalchemy.pool import QueuePool\n"
            "engine = create_engine(url, poolclass=QueuePool, pool_size=5)\n",
            False,
        ),
        (
            "from sqlalchemy.ext.asyncio import create_async_engine\nfrom sqlalchemy.pool import NullPool\n"
            "engine = create_async_engine(url, poolclass=NullPool)\n",
            False,
        ),
        ("import sqlalchemy as sa\nengine = sa.create_engine(url, pool_size=5, poolclass=sa.pool.NullPool)\n", True),
        (
            "from sqlalchemy.ext.asyncio import create_async_engine as cae\nfrom sqlalchemy.pool import NullPool as NP\n"
            "engine = cae(url, poolclass=NP, max_overflow=10)\n",
            True,
        ),
    ],
)
def test_fdb607_applies(code, expected):
    assert applies(code, "FDB607") is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("def build(factory):\n    return factory(url, future=True)\n", False),
        ("from sqlalchemy import create_engine\nengine = create_engine(url)\n", False),
        ("from sqlalchemy.orm import sessionmaker as sm\nSessionLocal = sm(bind=engine, future=True)\n", True),
        (
            "from sqlalchemy.orm import Session\n"
            "def run():\n"
            "    with Session(engine, future=True) as session:\n"
            "        pass\n",
            True,
        ),
    ],
)
def test_fdb608_applies(code, expected):
    assert applies(code, "FDB608") is expected
