"""File shapes: what the index pass records for rule preconditions, and that filtering
rules by shape never changes what a run reports."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fastdb_lint.analysis.shape import FileShape, file_shape
from fastdb_lint.config import load
from fastdb_lint.engine import Engine, LintResult, build_index
from fastdb_lint.registry import all_rules
from fastdb_lint.runner import RunOptions, run
from fastdb_lint.source import SourceText

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def shape(code: str) -> FileShape:
    return file_shape(ast.parse(textwrap.dedent(code)))


def test_calls_record_the_last_name_and_the_original_of_an_import_alias() -> None:
    found = shape(
        """
        from sqlalchemy import create_engine as make_engine
        import sqlalchemy.orm as orm

        engine = make_engine(URL)
        factory = orm.sessionmaker(engine)
        get_db()()
        """
    )
    assert {"make_engine", "create_engine", "sessionmaker", "get_db"} <= found.calls
    assert "orm" not in found.calls and "URL" not in found.calls
    assert {"sqlalchemy", "orm", "make_engine", "create_engine", "URL"} <= found.names


def test_loop_try_and_module_level_calls() -> None:
    found = shape(
        """
        setup()

        @router.get("/")
        def handler(limit=default_limit()):
            for item in items():
                session.add(item)
            [row.touch() for row in rows]
            while pending():
                step()
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
            try:
                cleanup()
            finally:
                close()
            return lambda: later()

        class Settings:
            engine = create_engine(URL)
        """
    )
    assert {"items", "add", "touch", "pending", "step"} <= found.loop_calls
    assert not {"commit", "cleanup", "close", "setup"} & found.loop_calls
    assert {"commit", "rollback"} <= found.try_calls
    assert not {"cleanup", "close", "add"} & found.try_calls
    assert {"setup", "get", "default_limit", "create_engine"} <= found.module_calls
    assert not {"items", "add", "commit", "later"} & found.module_calls


def test_an_aliased_call_counts_where_it_is_made() -> None:
    found = shape(
        """
        from sqlalchemy.orm import Session as S

        def work():
            for _ in range(3):
                S().commit()
        """
    )
    assert {"S", "Session"} <= found.loop_calls
    assert "Session" not in found.module_calls


def test_keywords_bases_and_attribute_stores() -> None:
    found = shape(
        """
        class Hero(SQLModel, table=True):
            team: Mapped["Team"] = relationship(back_populates="heroes", lazy="selectin")

        class Item(models.Base, Generic[T]):
            pass

        def bump(account):
            account.balance += 1
            account.owner, other.name = owner, name
        """
    )
    assert {"table", "back_populates", "lazy"} <= found.keywords
    assert {"SQLModel", "Base", "Generic"} <= found.bases
    assert found.attribute_stores >= {"balance", "owner", "name"}
    assert found.attribute_aug_stores == {"balance"}


@pytest.mark.parametrize(
    ("code", "has_async", "has_with"),
    [
        ("def f():\n    with session.begin():\n        pass\n", False, True),
        ("async def f():\n    async with session.begin():\n        pass\n", True, False),
        ("async def f():\n    pass\n", True, False),
        ("def f(xs):\n    return [x for x in xs]\n", False, False),
    ],
)
def test_async_and_with_flags(code: str, has_async: bool, has_with: bool) -> None:
    found = shape(code)
    assert (found.has_async, found.has_with) == (has_async, has_with)


def test_the_index_records_the_shape_of_the_files_it_reads() -> None:
    project = build_index([("app/jobs.py", "app/jobs.py", "from sqlalchemy.orm import Session\n\ndef run(session: Session):\n    session.commit()\n")])
    shape = project.by_path["app/jobs.py"].shape
    assert shape is not None and "commit" in shape.calls


@pytest.mark.parametrize("indexed", [True, False])
def test_a_file_where_no_rule_applies_is_not_parsed(indexed: bool) -> None:
    # Without a SQLAlchemy import the file is not indexed: its shape comes from the lint pass.
    header = "from sqlalchemy.orm import Session\n\n" if indexed else ""
    code = header + "def run(session):\n    return session\n"
    settings = load(None, Path(".")).with_cli(select=("FDB301",))

    def lint(text: str) -> LintResult:
        engine = Engine(settings, build_index([("app/jobs.py", "app/jobs.py", text)]))
        assert ("app/jobs.py" in engine.project.by_path) == indexed
        return engine.lint("app/jobs.py", "app/jobs.py", SourceText(text))

    result = lint(code)
    assert not result.parsed and not result.findings
    assert [f.code for f in lint(code + "def (:\n").findings] == ["FDB001"]


def _report(app: Path, monkeypatch: pytest.MonkeyPatch, *, every_rule_applies: bool) -> tuple[list[tuple[str, str, int, int]], int]:
    """The findings of a run over ``app`` and how many files it parsed with LibCST."""
    parsed = 0
    lint = Engine.lint

    def counting_lint(self: Engine, *args: Any, **kwargs: Any) -> LintResult:
        nonlocal parsed
        result = lint(self, *args, **kwargs)
        parsed += result.parsed
        return result

    with monkeypatch.context() as patch:
        patch.setattr(Engine, "lint", counting_lint)
        if every_rule_applies:
            for rule in all_rules().values():
                patch.setattr(rule, "applies", classmethod(lambda cls, shape, project: True))
        result = run([app], load(None, app).with_cli(select=("ALL",)), RunOptions(jobs=1))
    return sorted((f.path, f.code, f.start.row, f.start.column) for f in result.findings), parsed


@pytest.mark.parametrize("app", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_filtering_by_shape_changes_no_finding_on_the_fixtures(app: str, monkeypatch: pytest.MonkeyPatch) -> None:
    filtered, parsed_filtered = _report(FIXTURES / app, monkeypatch, every_rule_applies=False)
    unfiltered, parsed_unfiltered = _report(FIXTURES / app, monkeypatch, every_rule_applies=True)
    assert filtered == unfiltered
    assert bool(filtered) != app.endswith("clean_app")
    assert parsed_filtered <= parsed_unfiltered


def test_multiple_bases_and_relative_imports() -> None:
    assert shape("class User(Base, TimestampMixin):\n    pass\n").multiple_bases
    assert not shape("class User(Base):\n    pass\nclass Post(Base, metaclass=Meta):\n    pass\n").multiple_bases
    assert shape("def upgrade():\n    from ..helpers import create_trigger\n").relative_import
    assert shape("from . import models\n").relative_import
    assert not shape("from app import models\nimport sqlalchemy as sa\n").relative_import


def test_string_annotation_names() -> None:
    found = shape(
        """
        import sqlalchemy.orm as orm

        class Event(Base):
            starts: "orm.Mapped['dt.datetime | None']"
            owner: Mapped["User"] = relationship()
            label = "not.an.annotation"

        def handle(session: "AsyncSession", n: int = 1) -> "list[Row]":
            note: "broken ]["
        """
    )
    assert found.string_annotation_names == {"orm", "Mapped", "dt", "datetime", "User", "AsyncSession", "list", "Row"}
    assert "Mapped" in found.names and "datetime" not in found.names and "not" not in found.string_annotation_names


def test_a_starred_base_is_read_like_the_class_analysis_reads_it() -> None:
    assert {"Base", "Mixin"} <= shape("class User(*Base, *mixins.Mixin[int]):\n    pass\n").bases


def test_import_paths_hold_absolute_imports_only() -> None:
    found = shape(
        """
        import psycopg2.extras as extras, os
        from sqlalchemy.ext import asyncio
        from pymysql.cursors import DictCursor
        from sqlmodel import *
        from . import cx_Oracle
        from ..db import engine

        def connect():
            import MySQLdb
        """
    )
    assert found.import_paths == {
        "psycopg2.extras", "os", "sqlalchemy.ext", "sqlalchemy.ext.asyncio", "pymysql.cursors",
        "pymysql.cursors.DictCursor", "sqlmodel", "MySQLdb",
    }


def test_url_schemes_of_string_constants() -> None:
    found = shape(
        """
        '''Connect with postgresql+psycopg2://user@host/db.'''
        URL = f"MySQL+PyMySQL://{user}:{password}@{host}/app"
        MERGED = ("x" "sqlite:///:memory:")
        TWO = "redis://cache,amqp://broker"
        EMPTY = "://nothing"
        RAW = b"oracle://app:pw@db/app"
        """
    )
    assert found.url_schemes == {"postgresql+psycopg2", "mysql+pymysql", "xsqlite", "redis", "amqp", ""}


def test_handler_types() -> None:
    found = shape(
        """
        from sqlalchemy.exc import IntegrityError as Duplicate
        from sqlalchemy import exc

        try:
            run()
        except Duplicate:
            pass
        except (ValueError, exc.DBAPIError, *extra.ERRORS):
            pass
        except get_errors():
            pass

        def f():
            try:
                run()
            except:
                pass
        """
    )
    assert found.handler_types == {"Duplicate", "IntegrityError", "ValueError", "DBAPIError", "ERRORS", ""}


def test_false_keywords_empty_functions_and_aliased_bases() -> None:
    found = shape(
        '''
        from app.db import Model as M

        class User(M):
            pass

        def downgrade():
            """Not reversible."""
            ...

        async def noop():
            pass

        def upgrade():
            op.add_column("user", sa.Column("plan", nullable=False, unique=True, index=0))

        def outer():
            def inner():
                pass
        '''
    )
    assert found.false_keywords == {"nullable"}
    assert found.empty_functions == {"downgrade", "noop"}
    assert {"M", "Model"} <= found.bases
