"""FDB6xx beyond the embedded examples: URL analysis, several files, fixes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fastdb_lint.analysis.urls import parse_url
from fastdb_lint.config import Settings
from fastdb_lint.engine import Engine, build_index, lint_sources
from fastdb_lint.registry import resolve_selection
from fastdb_lint.source import SourceText


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
