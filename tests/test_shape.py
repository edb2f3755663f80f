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


def test_loop_and_module_level_calls() -> None:
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


def test_keywords_and_bases() -> None:
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


def test_relative_imports() -> None:
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


def test_empty_functions_and_aliased_bases() -> None:
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
    assert found.empty_functions == {"downgrade", "noop"}
    assert {"M", "Model"} <= found.bases


def test_decorator_calls() -> None:
    found = shape(
        '''
        @router.get("/items", response_model=list[Item])
        async def items():
            return cache.get("items")

        class Controller:
            @api.routes.post("/items")
            @staticmethod
            def create():
                @functools.lru_cache(maxsize=1)
                def inner():
                    pass

        @dataclass(frozen=True)
        class Point:
            x: int

        handler = app.delete("/items")(lambda: None)
        '''
    )
    assert found.decorator_calls == {"get", "post", "lru_cache"}


def test_calls_with_args_list_arg_calls_and_chained_calls() -> None:
    found = shape(
        """
        from sqlalchemy import select as sa_select

        stmt = sa_select([users.c.id])
        rows = db.execute(stmt).all()
        first = (await session.execute(stmt)).first()
        db.commit()
        service.files().list(q=name).execute()
        one = db.query(User).get(1)
        sa_select(*columns)
        """
    )
    assert {"sa_select", "select", "execute", "list", "query", "get"} <= found.calls_with_args
    assert not {"commit", "files", "all", "first"} & found.calls_with_args
    assert found.list_arg_calls == {"sa_select", "select"}
    assert {("execute", "all"), ("execute", "first"), ("query", "get"), ("files", "list"), ("list", "execute")} <= found.chained_calls
    assert ("sa_select", "execute") not in found.chained_calls
    assert not {c for c in found.chained_calls if c[1] == "commit"}


def test_chained_calls_name_the_original_of_an_aliased_callee() -> None:
    found = shape("from sqlalchemy import select as s\nstmt = s(User).filter(User.id == 1)\n")
    assert {("s", "filter"), ("select", "filter")} <= found.chained_calls


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('sql = f"SELECT * FROM t WHERE id = {ident}"\n', True),
        ('sql = "SELECT * FROM t WHERE id = %s" % ident\n', True),
        ('sql = "SELECT * FROM t WHERE id = " + ident\n', True),
        ('sql = "SELECT 1"\nsql += tail\n', True),
        ('sql = f"SELECT 1"\n', False),
        ('sql = "SELECT {}".format(ident)\ncount = n * 2 - 1\nflags |= 4\n', False),
    ],
)
def test_has_formatting(code: str, expected: bool) -> None:
    assert shape(code).has_formatting is expected


def test_attribute_names_and_called_results() -> None:
    found = shape(
        '''
        from sqlalchemy.orm import sessionmaker as maker
        from app import database

        db = maker(bind=engine)()
        registry = database.Session
        self.session = scoped_session(factory)
        make_app()
        handlers[0]()
        '''
    )
    assert found.attribute_names == {"Session", "session"}
    assert found.called_results == {"maker", "sessionmaker"}


def test_lambda_calls() -> None:
    found = shape(
        """
        from sqlalchemy import MetaData as Meta
        make = lambda: Meta(schema="app")
        def setup(factory=lambda: build()):
            return [lambda: inner() for _ in range(2)]
        done()
        """
    )
    assert found.lambda_calls == {"Meta", "MetaData", "build", "inner"}


def test_class_bases_and_tableless_classes() -> None:
    found = shape(
        """
        from app.db import Base as B
        import sqlalchemy.orm as orm
        class Model(B):
            __abstract__ = True
        class Reset(Model):
            __abstract__ = True
            __abstract__ = False
        class User(Model, orm.MappedAsDataclass):
            __tablename__ = "user"
        class Group(Model):
            __table__ = group_table
        class Named(Model):
            @declared_attr
            def __tablename__(cls):
                return cls.__name__.lower()
        class Item(Generic[T], *mixins):
            if flag:
                __tablename__ = "item"
        def make():
            class Local(B):
                __tablename__: str
            return Local
        """
    )
    assert found.class_bases == {
        ("Model", "B", "Base"),
        ("Reset", "Model"),
        ("User", "Model", "MappedAsDataclass"),
        ("Group", "Model"),
        ("Named", "Model"),
        ("Item", "Generic", "mixins"),
        ("Local", "B", "Base"),
    }
    assert found.tableless_classes == {"Reset", "Item"}


def test_class_assigned_calls() -> None:
    found = shape(
        """
        from sqlalchemy import Column as C
        table = Table("t", metadata, Column("id", Integer))
        class User(Base):
            id = C(Integer, primary_key=True)
            name: Mapped[str] = mapped_column(String)
            tags = [Column("tag")]
            def method(self):
                self.x = compute()
        """
    )
    assert found.class_assigned_calls == {"C", "Column", "mapped_column"}


def test_unindexed_foreign_keys() -> None:
    found = shape(
        """
        from sqlalchemy import ForeignKey as FK
        a = mapped_column(FK("a.id"))
        b = Column(Integer, sa.ForeignKey("b.id"), unique=False, primary_key=False)
        c = Field(foreign_key="c.id")
        d = Column(Integer, ForeignKey("d.id"), index=False)
        e = Column(Integer, ForeignKey("e.id"), unique=True)
        f = Column(Integer, ForeignKey("f.id"), primary_key=flag)
        g = Column(Integer, ForeignKey("g.id"), **options)
        h = Column(*args, ForeignKey("h.id"))
        i = Column(Integer, nullable=False)
        """
    )
    assert found.unindexed_foreign_keys == {"mapped_column", "Column", "Field"}
    assert shape("d = Column(Integer, ForeignKey('d.id'), index=False)\n").unindexed_foreign_keys == frozenset()


def test_not_null_arguments() -> None:
    found = shape(
        """
        from alembic.op import add_column as add
        add("t", sa.Column("a", sa.Integer, nullable=False))
        batch.add_column(column=sa.Column("b", sa.Integer, nullable=False, server_default=None))
        op.create_table("t", sa.Column("c", sa.Integer, nullable=False, server_default="0"))
        op.alter_column("t", "d", nullable=False)
        op.other("t", sa.Column("e", sa.Integer, nullable=flag))
        op.splat("t", sa.Column("f", *types, nullable=False))
        """
    )
    assert found.not_null_arguments == {"add", "add_column"}


def test_keyword_values() -> None:
    found = shape(
        """
        from app.clock import utcnow as now_utc
        a = Column(default=datetime.utcnow, onupdate=now_utc)
        b = Column(default=lambda: datetime.now(timezone.utc), insert_default=dt.datetime.today())
        c = Field(default_factory=lambda: stamp, name="c", size=len(x)[0])
        """
    )
    assert found.keyword_values == {
        "default=utcnow",
        "onupdate=now_utc",
        "onupdate=utcnow",
        "default=now(...)",
        "insert_default=today()",
    }


def test_module_none_names() -> None:
    found = shape(
        """
        target_metadata = None
        config = engine = None
        url: str | None = None
        count: int
        a, b = None, None
        if offline:
            fallback = None
        def f():
            local = None
        class Settings:
            field = None
        value = compute() or None
        """
    )
    assert found.module_none_names == {"target_metadata", "config", "engine", "url", "fallback"}


def test_awaited_plain_def_and_unawaited_async_calls() -> None:
    found = shape(
        """
        from app.db import fetch as load

        @router.get("/items")
        async def handler(session, key=defaults.pop("key")):
            rows = await session.execute(stmt)
            await load(key)
            session.commit()
            later = lambda: session.flush()
            helper(await session.scalar(stmt))

            @decorate(session.merge(item).id)
            def inner(value=session.refresh(item)):
                session.delete(value)

            class Local:
                attr = session.get_one(Item, 1)

        def sync(session):
            session.close()
        """
    )
    assert found.awaited_calls == {"execute", "load", "fetch", "scalar"}
    # A def's decorators and defaults belong to it; lambdas and classes do not count.
    assert found.unawaited_async_calls == {"pop", "commit", "helper", "get_one"}
    assert found.plain_def_calls == {"decorate", "merge", "refresh", "delete", "close"}


def test_quiet_try_calls() -> None:
    found = shape(
        """
        def f(db):
            try:
                db.commit()
                try:
                    db.flush()
                except ValueError:
                    raise
                def later():
                    db.execute(stmt)
            except IntegrityError:
                log()
                try:
                    notify()
                except OSError:
                    raise
            try:
                db.merge(row)
            except Exception:
                db.rollback()
            try:
                db.refresh(row)
            except Exception:
                raise
            else:
                db.get(Row, 1)
            try:
                db.scalar(stmt)
            finally:
                db.close()
        """
    )
    # Only the first `try` has a handler without a raise or a clean-up of its own; a
    # nested function's calls are not its body's.
    assert found.quiet_try_calls == {"commit", "flush"}


def test_credential_url_schemes() -> None:
    found = shape(
        """
        a = "postgresql+asyncpg://app:s3cr3t@db/app"
        b = f"mysql://{user}:{password}@{host}/shop"
        c = f"mssql://{user}:hunter2@{host}/shop"
        d = "sqlite:///./app.db"
        e = "oracle://" "scott:tiger@db"
        f = f"{scheme}://user:pw@host"
        g = "redis://cache:6379/0"
        """
    )
    assert found.credential_url_schemes == {"postgresql+asyncpg", "mssql", "oracle", ""}
    # A URL in a constant without an ``@``, or whose password comes from a field.
    assert not {"mysql", "sqlite", "redis"} & found.credential_url_schemes


def test_aug_call_owners() -> None:
    found = shape(
        """
        post = db.get(Post, 1)
        post.likes += 1
        alias = post
        alias.score += 2
        for row in loaded():
            row.count += 1
        for role in participant.roles:
            role.activity += 1
        if (item := await session.get(Item, 1)):
            item.stock -= 1
        total = 0
        total += 1
        self.hits += 1
        """
    )
    assert found.aug_call_owners == {"post", "alias", "row", "item"}


def test_method_receivers_and_kind_sources() -> None:
    found = shape(
        """
        from sqlalchemy.orm import Session as S

        class Repository:
            db: "S"

            def __init__(self, session: S, other=Depends(get_db)):
                self.session = session

            def find(self, ids):
                for i in ids:
                    self.session.get(User, i)
                with SessionLocal.begin() as tx:
                    tx.execute(stmt)
                engine.connect().execute(stmt)
                rows = (await self.session.scalars(stmt)).all()
                item = payload["x"]
                payload["x"].get("y")
        """
    )
    none = frozenset()
    # Scopes: the module (0), ``__init__`` (1), ``find`` (2).
    assert [parent for parent, _ in found.scopes] == [-1, 0, 0]
    assert found.scopes[1][1] == {"self", "session", "other"}
    assert {
        # Without plain names, the scope does not matter: 0.
        ("get", none, frozenset({"self.session"}), 0),
        ("begin", frozenset({"SessionLocal"}), none, 2),
        ("execute", frozenset({"tx"}), none, 2),
        ("execute", frozenset({"engine"}), frozenset({"connect"}), 2),
        ("scalars", none, frozenset({"self.session"}), 0),
    } <= found.method_receivers
    # An awaited result or a subscript cannot be typed: no entry.
    assert not {entry[0] for entry in found.method_receivers} & {"all"}
    assert ("get", none, frozenset({"self.session"}), 0) in found.loop_method_receivers
    assert ("execute", frozenset({"tx"}), none, 2) not in found.loop_method_receivers
    assert {
        ("S", none, frozenset({"Session"}), 0),
        ("self.db", none, frozenset({"S"}), 0),
        ("session", none, frozenset({"S"}), 1),
        ("other", none, frozenset({"Depends", "get_db"}), 1),
        ("self.session", frozenset({"session"}), none, 0),
        ("tx", frozenset({"SessionLocal"}), frozenset({"begin"}), 2),
    } <= found.kind_sources
    # Parameters without annotation or default, values that cannot be typed: no entry.
    assert not {entry[0] for entry in found.kind_sources} & {"self", "ids", "i", "item"}
    assert ("rows", none, frozenset({"all"}), 2) in found.kind_sources


def test_scopes_follow_the_session_analysis() -> None:
    found = shape(
        """
        from db import get_db as provide

        @app.get("/")
        def route(db: Session = Depends(provide)):
            def nested(item):
                db.add(item)
                with factory() as tx:
                    tx.flush()
            handler = lambda s: s.commit()
            class Local:
                value = db
                def method(self):
                    value.merge(1)
            return [row.refresh() for row in rows]

        async def sibling(db):
            db.query(User)
        """
    )
    # route (1), nested (2), method (3), sibling (4): lambdas, comprehensions and class
    # bodies belong to the scope around them.
    assert found.scopes == ((-1, frozenset()), (0, {"db"}), (1, {"item"}), (1, {"self"}), (0, {"db"}))
    none = frozenset()
    assert {
        ("add", frozenset({"db"}), none, 2),
        ("flush", frozenset({"tx"}), none, 2),
        ("commit", frozenset({"s"}), none, 1),
        ("merge", frozenset({"value"}), none, 3),
        ("refresh", frozenset({"row"}), none, 1),
        ("query", frozenset({"db"}), none, 4),
        # A decorator belongs to the def's scope: the analysis enters it there.
        ("get", frozenset({"app"}), none, 1),
    } <= found.method_receivers
    assert {
        ("provide", none, frozenset({"get_db"}), 0),
        ("db", none, frozenset({"Session", "Depends", "provide"}), 1),
        ("tx", frozenset({"factory"}), none, 2),
        ("value", frozenset({"db"}), none, 1),
    } <= found.kind_sources


def test_receiver_argument_and_assigned_chains() -> None:
    found = shape(
        """
        from sqlalchemy import update as sa_update

        def run(db, session, conn):
            db.query(Item).filter(Item.done).delete()
            conn.execute(sa_update(Item).values(done=False))
            rows = (await session.scalars(stmt)).all()
            if (count := len(rows)):
                return count
            conn.execute("SELECT 1")
        """
    )
    assert ("delete", frozenset({"query", "filter"}), "db") in found.receiver_chains
    assert ("all", frozenset({"scalars"}), "session") in found.receiver_chains
    assert ("execute", frozenset({"values", "sa_update", "update"}), "sa_update") in found.argument_chains
    assert ("len", frozenset(), "rows") in found.argument_chains
    # A literal argument has neither calls nor a name.
    assert not [entry for entry in found.argument_chains if entry[2] == "" and not entry[1]]
    assert {("rows", frozenset({"all", "scalars"}), "session"), ("count", frozenset({"len"}), "len")} <= found.assigned_chains


def test_task_argument_names() -> None:
    found = shape(
        """
        tasks.add_task(notify, incident.id, session=db, when=lambda: later(clock))
        BackgroundTask(partial(export, conn), *rest)
        other(kept_out)
        """
    ).task_argument_names
    assert found == {"notify", "incident", "db", "later", "clock", "partial", "export", "conn", "rest"}
    # Under another name, the calls cannot be told apart: every name counts.
    aliased = shape(
        """
        from starlette.background import BackgroundTask as Job
        Job(notify, db)
        other(kept_in)
        """
    )
    assert aliased.task_argument_names == aliased.names
