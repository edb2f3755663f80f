"""FDB5xx beyond the embedded examples: the mapped-class analysis, several files,
messages, fixes that keep formatting and are idempotent."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from fastdb_lint.analysis.models import ClassRole, ModelIndex
from fastdb_lint.analysis.shape import file_shape
from fastdb_lint.config import Settings
from fastdb_lint.engine import Engine, build_index, lint_sources
from fastdb_lint.registry import all_rules, get_rule, resolve_selection
from fastdb_lint.rules.base import ProjectTerms
from fastdb_lint.rules.models import plural_word
from fastdb_lint.source import SourceText
from fastdb_lint.testing import NO_PROJECT_TERMS, engine_for

BASE = "from sqlalchemy.orm import DeclarativeBase\n\n\nclass Base(DeclarativeBase):\n    pass\n"


def _sources(code: str, path: str, files: dict[str, str]) -> dict[str, str]:
    return {**{k: textwrap.dedent(v) for k, v in files.items()}, path: textwrap.dedent(code)}


def lint(code: str, select: str, path: str = "app/models.py", files: dict[str, str] | None = None):
    sources = _sources(code, path, files or {})
    return [f for f in lint_sources(sources, select=(select,))[path] if f.code == select]


def fix(code: str, select: str, path: str = "app/models.py", files: dict[str, str] | None = None) -> str:
    sources = _sources(code, path, files or {})
    settings = Settings(root=Path("."), select=(select,), enabled=resolve_selection((select,)))

    def run(text: str) -> str:
        engine = Engine(settings, build_index([(p, p, t) for p, t in {**sources, path: text}.items()]))
        outcome = engine.fix(path, path, SourceText(text), unsafe=True)
        assert outcome.error is None, outcome.error
        return outcome.text

    fixed = run(sources[path])
    cst.parse_module(fixed)
    assert run(fixed) == fixed, "fixing twice must change nothing"
    return fixed


def models(files: dict[str, str]) -> ModelIndex:
    sources = {k: textwrap.dedent(v) for k, v in files.items()}
    return ModelIndex.of(build_index([(p, p, t) for p, t in sources.items()]))


# -- the shared analysis -------------------------------------------------------------


def test_mapped_classes_across_files_and_styles():
    index = models(
        {
            "app/db/base_class.py": """
                from sqlalchemy.orm import DeclarativeBase
                class Base(DeclarativeBase):
                    pass
            """,
            "app/db/__init__.py": "from app.db.base_class import Base\nfrom app.db.session import SessionLocal\n",
            "app/models/user.py": """
                from sqlalchemy.orm import Mapped, mapped_column
                from app.db import Base
                class Timestamped(Base):
                    __abstract__ = True
                class User(Timestamped):
                    __tablename__ = "user"
                class Admin(User):
                    pass
                class Mixin:
                    pass
            """,
            "app/legacy.py": """
                from sqlalchemy.orm import declarative_base, registry, as_declarative
                from sqlalchemy.orm import DeclarativeBaseNoMeta
                Legacy = declarative_base()
                reg = registry()
                Generated = reg.generate_base()
                class A(Legacy):
                    __tablename__ = "a"
                class B(Generated):
                    __tablename__ = "b"
                @reg.mapped
                class C:
                    __tablename__ = "c"
                @as_declarative()
                class D:
                    pass
                class E(D):
                    __tablename__ = "e"
                class NoMeta(DeclarativeBaseNoMeta):
                    pass
                class F(NoMeta):
                    __tablename__ = "f"
            """,
            "app/tables.py": """
                from sqlmodel import SQLModel
                class HeroBase(SQLModel):
                    name: str
                class Hero(HeroBase, table=True):
                    pass
            """,
        }
    )
    info = index.info
    assert info("app.db.base_class.Base").role is ClassRole.BASE
    assert info("app.db.Base").role is ClassRole.BASE
    assert info("app.models.user.Timestamped").role is ClassRole.ABSTRACT
    assert index.is_mapped("app.models.user.User")
    assert index.is_mapped("app.models.user.Admin")
    assert info("app.models.user.Mixin").role is ClassRole.PLAIN
    assert index.is_declarative_base("app.legacy.Legacy")
    assert index.is_declarative_base("app.legacy.Generated")
    for name in ("A", "B", "C", "E", "F"):
        assert index.is_mapped(f"app.legacy.{name}"), name
    assert index.is_declarative_base("app.legacy.D")
    assert info("app.tables.HeroBase").role is ClassRole.SQLMODEL_MODEL
    hero = info("app.tables.Hero")
    assert hero.is_mapped and hero.sqlmodel
    assert index.mapped_by_name("Hero") == ["app.tables.Hero"]
    assert index.mapped_by_name("Timestamped") == []
    mapped = {q for q, _, _ in index.mapped_classes()}
    assert {"app.models.user.User", "app.legacy.A", "app.tables.Hero"} <= mapped
    assert "app.models.user.Timestamped" not in mapped


def test_unknown_bases_stay_unknown():
    index = models({"app/m.py": "from thirdparty import Model\nclass User(Model):\n    pass\n"})
    assert index.info("app.m.User").role is ClassRole.UNKNOWN
    assert not index.is_mapped("app.m.User")


def test_provides_follows_project_ancestors():
    index = models(
        {
            "app/base.py": """
                from sqlalchemy.orm import declarative_base, declared_attr
                class Named:
                    @declared_attr
                    def __tablename__(cls):
                        return cls.__name__.lower()
                Base = declarative_base(cls=Named)
                Plain = declarative_base()
            """,
        }
    )
    assert index.provides("app.base.Base", ["__tablename__"]) is True
    assert index.provides("app.base.Plain", ["__tablename__"]) is False
    assert index.provides("thirdparty.Model", ["__tablename__"]) is None


# -- FDB501 --------------------------------------------------------------------------


def test_fdb501_one_constant_for_several_metadata():
    fixed = fix(
        """\
        import sqlalchemy as sa

        main = sa.MetaData()
        audit = sa.MetaData(schema="audit")
        """,
        "FDB501",
    )
    assert fixed.count("NAMING_CONVENTION = {") == 1
    assert "main = sa.MetaData(naming_convention=NAMING_CONVENTION)" in fixed
    assert 'audit = sa.MetaData(schema="audit", naming_convention=NAMING_CONVENTION)' in fixed


def test_fdb501_reuses_an_existing_constant():
    fixed = fix(
        """\
        from sqlalchemy import MetaData
        from app.conventions import NAMING_CONVENTION

        metadata = MetaData()
        """,
        "FDB501",
    )
    assert fixed.count("NAMING_CONVENTION") == 2
    assert "metadata = MetaData(naming_convention=NAMING_CONVENTION)" in fixed


def test_fdb501_class_with_docstring_and_decorated_method():
    fixed = fix(
        '''\
        from sqlalchemy.orm import DeclarativeBase, declared_attr


        class Base(DeclarativeBase):

            @declared_attr.directive
            def __tablename__(cls) -> str:
                return cls.__name__.lower()


        class Other(DeclarativeBase):
            """Doc."""
        ''',
        "FDB501",
    )
    assert (
        "class Base(DeclarativeBase):\n\n"
        "    metadata = MetaData(naming_convention=NAMING_CONVENTION)\n"
        "    @declared_attr.directive\n"
    ) in fixed
    assert 'class Other(DeclarativeBase):\n    """Doc."""\n    metadata = MetaData(naming_convention=NAMING_CONVENTION)\n' in fixed
    assert "from sqlalchemy import MetaData\n" in fixed


def test_fdb501_one_line_class():
    fixed = fix("from sqlalchemy.orm import DeclarativeBase\n\nclass Base(DeclarativeBase): ...\n", "FDB501")
    assert "class Base(DeclarativeBase): metadata = MetaData(naming_convention=NAMING_CONVENTION)\n" in fixed


def test_fdb501_base_with_metadata_name_unconventional_is_reported_at_the_call():
    findings = lint(
        """\
        from sqlalchemy.orm import DeclarativeBase
        from app.meta import metadata_obj

        class Base(DeclarativeBase):
            metadata = metadata_obj
        """,
        "FDB501",
        files={"app/meta.py": "from sqlalchemy import MetaData\nmetadata_obj = MetaData()\n"},
    )
    assert findings == []
    meta = lint_sources(
        {
            "app/meta.py": "from sqlalchemy import MetaData\nmetadata_obj = MetaData()\n",
            "app/models.py": "from sqlalchemy.orm import DeclarativeBase\nfrom app.meta import metadata_obj\n"
            "class Base(DeclarativeBase):\n    metadata = metadata_obj\n",
        },
        select=("FDB501",),
    )
    assert [(f.start.row, f.code) for f in meta["app/meta.py"]] == [(2, "FDB501")]


@pytest.mark.parametrize(
    "code",
    [
        "from sqlalchemy import MetaData\ndef reflect(engine):\n    meta = MetaData()\n    meta.reflect(engine)\n",
        "from sqlalchemy import MetaData\nmetadata = MetaData(None, None, {'pk': 'pk_%(table_name)s'})\n",
    ],
)
def test_fdb501_silent(code):
    assert lint(code, "FDB501") == []


def test_fdb501_test_files_are_skipped():
    assert lint("from sqlalchemy import MetaData\nmetadata = MetaData()\n", "FDB501", path="tests/conftest.py") == []


def test_fdb501_registry_attribute_without_metadata():
    findings = lint(
        """\
        from sqlalchemy.orm import DeclarativeBase, registry

        class Base(DeclarativeBase):
            registry = registry(type_annotation_map={})
        """,
        "FDB501",
    )
    assert [(f.start.row, f.message) for f in findings] == [
        (4, "`registry()` without a `metadata=` that sets a naming convention")
    ]


def test_fdb501_sqlmodel_convention_set_through_an_alias():
    files = {
        "migrations/env.py": """
            from alembic import context
            from sqlmodel import SQLModel
            target_metadata = SQLModel.metadata
            target_metadata.naming_convention = {"pk": "pk_%(table_name)s"}
        """
    }
    code = "from sqlmodel import SQLModel\nclass Hero(SQLModel, table=True):\n    id: int\n"
    assert lint(code, "FDB501", files=files) == []
    assert len(lint(code, "FDB501")) == 1


def test_fdb501_sqlmodel_module_alias():
    code = """\
        import sqlmodel
        sqlmodel.SQLModel.metadata.naming_convention = {"pk": "pk_%(table_name)s"}
        class Hero(sqlmodel.SQLModel, table=True):
            id: int
    """
    assert lint(code, "FDB501") == []


# -- FDB502 --------------------------------------------------------------------------


def test_fdb502_annotated_target_and_carried_arguments():
    fixed = fix(
        """\
        from typing import Any
        from sqlalchemy.orm import declarative_base

        Base: Any = declarative_base(name="Base", type_annotation_map={str: String(50)})
        """,
        "FDB502",
    )
    assert fixed.endswith(
        "class Base(DeclarativeBase):\n    type_annotation_map = {str: String(50)}\n"
    )
    assert "from sqlalchemy.orm import declarative_base, DeclarativeBase\n" in fixed


@pytest.mark.parametrize(
    "code",
    [
        "from sqlalchemy.orm import declarative_base\nBase = declarative_base(name='Model')\n",
        "from sqlalchemy.ext.declarative import declarative_base\nBase = declarative_base(bind)\n",
        "from sqlalchemy.orm import declarative_base\nBase = declarative_base(**options)\n",
        "from sqlalchemy.orm import declarative_base\nBase = Other = declarative_base()\n",
    ],
)
def test_fdb502_reported_without_fix(code):
    findings = lint(code, "FDB502")
    assert len(findings) == 1 and findings[0].fix is None


# -- FDB503 --------------------------------------------------------------------------

ORDER = """\
    import datetime
    from sqlalchemy import Boolean, Column, Date, Integer, JSON, LargeBinary, Numeric, String
    from sqlalchemy.dialects.postgresql import UUID
    from app.db import Base

    class Order(Base):
        __tablename__ = "order"
        id = Column(UUID(as_uuid=False), primary_key=True)
        placed_on = Column(Date, nullable=False)
        total = Column(Numeric(10, 2, asdecimal=False))
        paid = Column(Boolean, nullable=flag)
        payload = Column("data", JSON)
        blob = Column(type_=LargeBinary)
        count = Column(Integer, nullable=True, primary_key=True)
"""


def test_fdb503_type_table_and_nullability():
    fixed = fix(ORDER, "FDB503", files={"app/db.py": BASE})
    assert "id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)" in fixed
    assert "placed_on: Mapped[datetime.date] = mapped_column(Date, nullable=False)" in fixed
    assert "total: Mapped[float | None] = mapped_column(Numeric(10, 2, asdecimal=False))" in fixed
    assert "paid = Column(Boolean, nullable=flag)" in fixed
    assert 'payload: Mapped[dict | None] = mapped_column("data", JSON)' in fixed
    assert "blob: Mapped[bytes | None] = mapped_column(type_=LargeBinary)" in fixed
    assert "count: Mapped[int | None] = mapped_column(Integer, nullable=True, primary_key=True)" in fixed
    assert fixed.count("Mapped, mapped_column") == 1


def test_fdb503_imports_added_once_over_several_rounds():
    fixed = fix(
        """\
        from sqlalchemy import Column, Date, DateTime, Numeric, Uuid
        from sqlalchemy.orm import DeclarativeBase

        class Base(DeclarativeBase):
            pass

        class Event(Base):
            __tablename__ = "event"
            id = Column(Uuid, primary_key=True)
            starts_at = Column(DateTime)
            ends_at = Column(DateTime)
            day = Column(Date)
            price = Column(Numeric)
        """,
        "FDB503",
    )
    assert fixed.count("import uuid\n") == 1
    assert fixed.count("from datetime import") == 1
    assert fixed.count("Decimal\n") == 1
    assert fixed.count("Mapped, mapped_column") == 1
    assert "id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)" in fixed
    assert "ends_at: Mapped[datetime | None] = mapped_column(DateTime)" in fixed
    assert "price: Mapped[Decimal | None] = mapped_column(Numeric)" in fixed


def test_fdb503_no_fix_when_the_type_name_is_rebound_in_the_class():
    findings = lint(
        """\
        from sqlalchemy import Column, Date
        from app.db import Base
        class Day(Base):
            __tablename__ = "day"
            start = Column(Date)
            date = Column(Date)
        """,
        "FDB503",
        files={"app/db.py": BASE},
    )
    assert [f.fix is None for f in findings] == [True, True]


def test_fdb503_messages_and_positions():
    findings = lint(
        """\
        from sqlalchemy import Column, Integer
        from app.db import Base
        class User(Base):
            __tablename__ = "user"; id = Column(Integer, primary_key=True)
        class Admin(User):
            level = Column(Integer)
        """,
        "FDB503",
        files={"app/db.py": BASE},
    )
    assert [(f.start.row, f.start.column, f.message) for f in findings] == [
        (4, 29, "Untyped column `id`: declare `id: Mapped[...] = mapped_column(...)`"),
        (6, 5, "Untyped column `level`: declare `level: Mapped[...] = mapped_column(...)`"),
    ]


def test_fdb503_registry_mapped_and_sqlmodel():
    code = """\
        from sqlalchemy import Column, Integer
        from sqlalchemy.orm import registry
        from sqlmodel import Field, SQLModel
        reg = registry()
        @reg.mapped
        class User:
            __tablename__ = "user"
            id = Column(Integer, primary_key=True)
        class Hero(SQLModel, table=True):
            id: int = Field(primary_key=True)
            legacy = Column(Integer)
    """
    assert [f.start.row for f in lint(code, "FDB503")] == [8]


# -- FDB504 --------------------------------------------------------------------------


def test_fdb504_tablename_from_a_mixin_or_abstract_false():
    files = {
        "app/db.py": BASE,
        "app/mixins.py": """
            from sqlalchemy.orm import declared_attr
            class Named:
                @declared_attr.directive
                def __tablename__(cls):
                    return cls.__name__.lower()
        """,
    }
    code = """\
        from sqlalchemy.orm import Mapped
        from app.db import Base
        from app.mixins import Named
        class A(Named, Base):
            pass
        class B(Base):
            __abstract__ = False
    """
    findings = lint(code, "FDB504", files=files)
    assert [(f.start.row, f.message) for f in findings] == [(6, "Mapped class `B` has no `__tablename__`")]


# -- FDB505 --------------------------------------------------------------------------


def test_fdb505_silent_cases():
    code = """\
        from sqlalchemy import Column, ForeignKey, Integer
        from sqlalchemy.orm import Mapped, mapped_column
        from sqlmodel import Field, SQLModel
        from app.db import Base
        from app.args import table_args
        class A(Base):
            __tablename__ = "a"
            id: Mapped[int] = mapped_column(primary_key=True)
            b_id: Mapped[int] = mapped_column(ForeignKey("b.id"), index=False)
            c_id: Mapped[int] = mapped_column(ForeignKey("c.id"), index=settings.INDEX)
        class D(Base):
            __tablename__ = "d"
            id: Mapped[int] = mapped_column(primary_key=True)
            e_id = Column(Integer, ForeignKey("e.id"))
            __table_args__ = table_args()
        class HeroSchema(SQLModel):
            team_id: int = Field(foreign_key="team.id")
        class Mixin:
            team_id: Mapped[int] = mapped_column(ForeignKey("team.id"))
    """
    assert lint(code, "FDB505", files={"app/db.py": BASE}) == []


def test_fdb505_sqlmodel_sa_column_and_index_on_table_attribute():
    code = """\
        from sqlalchemy import Column, ForeignKey, Index, Integer, Table
        from sqlmodel import Field, SQLModel
        from app.db import metadata
        class Item(SQLModel, table=True):
            id: int = Field(primary_key=True)
            owner_id: int = Field(sa_column=Column(Integer, ForeignKey("user.id")))
        audit = Table("audit", metadata, Column("user_id", ForeignKey("user.id")))
        Index("ix_audit_user", audit.c.user_id)
    """
    fixed = fix(code, "FDB505")
    assert 'owner_id: int = Field(sa_column=Column(Integer, ForeignKey("user.id"), index=True))' in fixed
    assert 'audit = Table("audit", metadata, Column("user_id", ForeignKey("user.id")))' in fixed


# -- FDB506 --------------------------------------------------------------------------


def test_fdb506_forms():
    code = """\
        from datetime import datetime
        from sqlalchemy import Column, DateTime
        from sqlmodel import Field, SQLModel
        a = Column(DateTime, default=datetime.today)
        b = Column(DateTime, default=datetime.now(tz))
        c = Column(DateTime, onupdate=datetime.utcnow)
        class Schema(SQLModel):
            created_at: datetime = Field(default_factory=datetime.utcnow)
    """
    assert [f.start.row for f in lint(code, "FDB506")] == [4]


def test_fdb506_not_in_migrations():
    code = """\
        from datetime import datetime
        import sqlalchemy as sa
        from alembic import op
        revision = "1"
        def upgrade():
            op.add_column("t", sa.Column("created_at", sa.DateTime, default=datetime.utcnow))
    """
    assert lint(code, "FDB506", path="migrations/versions/0001_x.py") == []


# -- FDB507 / FDB508 / FDB509 --------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "plural"),
    [
        ("posts", True),
        ("categories", True),
        ("boxes", True),
        ("status", False),
        ("address", False),
        ("news", False),
        ("series", False),
        ("analysis", False),
        ("campus", False),
        ("sms", False),
        ("user", False),
    ],
)
def test_plural_word(word, plural):
    assert plural_word(word) is plural


def test_fdb507_is_opt_in():
    code = 'class Post:\n    __tablename__ = "posts"\n'
    assert lint_sources({"app/models.py": code})["app/models.py"] == []
    assert len(lint(code, "FDB507")) == 1


def test_fdb508_only_class_bodies():
    code = """\
        from datetime import datetime
        from sqlalchemy.orm import Mapped
        created: Mapped[datetime]
        class A:
            created: Mapped[datetime]
            when: Mapped[list[datetime]]
    """
    assert [f.start.row for f in lint(code, "FDB508")] == [5]


def test_fdb509_reports_each_backref_keyword():
    code = """\
        from sqlalchemy.orm import relationship
        class User:
            posts = relationship("Post", backref="author")
            tags = relationship(
                "Tag",
                secondary="user_tag",
                backref="users",
            )
    """
    assert [(f.start.row, f.start.column) for f in lint(code, "FDB509")] == [(3, 34), (7, 9)]


# -- shape preconditions (`applies`) ---------------------------------------------------

NO_TERMS = NO_PROJECT_TERMS
SCHEMAS = """\
    from datetime import datetime
    from pydantic import BaseModel

    class UserCreate(BaseModel):
        email: str
        created_at: datetime | None = None
"""
ROUTES = """\
    from fastapi import APIRouter, Depends
    from app.db import get_session
    router = APIRouter()

    @router.get("/users")
    def list_users(session=Depends(get_session)):
        return session.scalars(select(User)).all()
"""


# A project whose `app.db.Model` and `app.base.Table` are in a model hierarchy.
MODEL_BASES = ProjectTerms(frozenset(), frozenset(), False, model_bases=frozenset({"Model", "Table"}))


def applies(code: str, terms: ProjectTerms = NO_TERMS) -> dict[str, bool]:
    shape = file_shape(ast.parse(textwrap.dedent(code)))
    return {name: rule.applies(shape, terms) for name, rule in all_rules().items() if name.startswith("FDB5")}


def project_applies(code: str, code_name: str, files: dict[str, str], path: str = "app/models.py") -> bool:
    """Whether the rule applies to ``code`` at ``path`` with the terms of the project
    made of ``files`` and that file."""
    rule = get_rule(code_name)
    assert rule is not None
    code = textwrap.dedent(code)
    engine = engine_for(rule, {**{k: textwrap.dedent(v) for k, v in files.items()}, path: code})
    return rule.applies(file_shape(ast.parse(code)), engine.terms)


def test_no_model_rule_applies_to_routes():
    assert not any(applies(ROUTES).values())


def test_no_model_rule_applies_to_a_pydantic_schema():
    assert not any(applies(SCHEMAS).values())
    # Unless the project has a model hierarchy class of a name the file mentions.
    assert {code for code, hit in applies(SCHEMAS.replace("BaseModel", "Model")).items() if hit} == set()
    assert {code for code, hit in applies(SCHEMAS.replace("BaseModel", "Model"), MODEL_BASES).items() if hit} == {"FDB504"}


def test_project_terms_name_the_classes_and_values_of_model_hierarchies():
    files = {
        "app/db.py": "from sqlalchemy.orm import DeclarativeBase, declarative_base\n"
        "class Base(DeclarativeBase):\n    pass\n"
        "Legacy = declarative_base()\n"
        "Model = Base\n",
        "app/mixins.py": "from app.db import Base\nfrom sqlalchemy.orm import Mapped\nclass Timestamped(Base):\n    __abstract__ = True\n",
        "app/schemas.py": "from pydantic import BaseModel\nfrom sqlalchemy import String\nclass UserOut(BaseModel):\n    name: str\n",
    }
    engine = engine_for(get_rule("FDB504"), files)
    assert {"Base", "Legacy", "Model", "Timestamped"} <= engine.terms.model_bases
    assert "UserOut" not in engine.terms.model_bases


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        # Aliased imports.
        ("from sqlalchemy.orm import DeclarativeBase as DB\nclass Base(DB):\n    pass\n", "FDB501"),
        ("from sqlalchemy.ext.declarative import declarative_base as make_base\nBase = make_base()\n", "FDB502"),
        ("from sqlalchemy import ForeignKey as FK\nclass A(Base):\n    b_id = mapped_column(FK('b.id'))\n", "FDB505"),
        ("from sqlalchemy.orm import relationship as rel\nclass A(Base):\n    b = rel('B', backref='a')\n", "FDB509"),
        ("from datetime import datetime as dt\nx = Column(DateTime, insert_default=dt.utcnow)\n", "FDB506"),
        # MetaData() inside a lambda is at module level for the rule.
        ("import sqlalchemy as sa\nmake = lambda: sa.MetaData()\n", "FDB501"),
        # Bases from other files, whatever their names, under an alias too.
        ("from app.db import Model\nclass User(Model):\n    id = Column(Integer, primary_key=True)\n", "FDB503"),
        ("from app.db import Model\nclass Comment(Model):\n    pass\n", "FDB504"),
        ("from app.db import Model as M\nclass Comment(M):\n    pass\n", "FDB504"),
        ("from sqlmodel import Field\nfrom app.base import Table\nclass A(Table, table=True):\n    b_id: int = Field(foreign_key='b.id')\n", "FDB505"),
        ('class Post:\n    __tablename__ = "posts"\n', "FDB507"),
    ],
)
def test_model_rules_apply_to_tricky_files(code, rule):
    assert applies(code, MODEL_BASES)[rule]


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("from sqlalchemy.orm import DeclarativeBase\nclass Base(DeclarativeBase):\n    pass\n", "FDB502"),
        ('from sqlalchemy import Column, Integer, Table\nt = Table("t", metadata, Column("id", Integer))\n', "FDB503"),
        ("from app.models import User\nclass Admin(User):\n    pass\n", "FDB503"),
        ('class A(Base):\n    b_id = Column(Integer, index=True)\n', "FDB505"),
        ("from sqlalchemy import func\ncreated = Column(DateTime, server_default=func.now())\n", "FDB506"),
        ("class A(Base):\n    created = Column(DateTime, default=make_stamp)\n", "FDB506"),
        ('class A(Base):\n    b = relationship("B", back_populates="a")\n', "FDB509"),
        ("from datetime import datetime\nclass A(Base):\n    created = Column(DateTime)\n", "FDB508"),
    ],
)
def test_model_rules_skip_files_they_cannot_flag(code, rule):
    assert not applies(code)[rule]


def test_fdb501_sqlmodel_table_through_two_bases_from_other_files():
    files = {
        "app/models.py": "from sqlmodel import Field, SQLModel\n"
        "class Hero(SQLModel, table=True):\n"
        "    id: int | None = Field(default=None, primary_key=True)\n",
        "app/schemas.py": "from sqlmodel import SQLModel\nclass HeroPublic(SQLModel):\n    name: str\n",
    }
    code = '"""Read models over the SQLModel tables."""\nfrom app.models import Hero\nfrom app.schemas import HeroPublic\nclass HeroRead(Hero, HeroPublic):\n    pass\n'
    # The project's terms name both bases; nothing in the file says they are SQLModel's.
    assert project_applies(code, "FDB501", files, path="app/views.py")
    assert not applies(code)["FDB501"]
    assert [f.start.row for f in lint(code, "FDB501", path="app/views.py", files=files)] == [4]


def test_fdb503_class_mapped_by_a_registry_decorator():
    code = """\
        from sqlalchemy import Column, Integer
        from app.db import mapper_registry
        @mapper_registry.mapped
        class User:
            __tablename__ = "user"
            id = Column(Integer, primary_key=True)
    """
    files = {"app/db.py": "from sqlalchemy import MetaData\nfrom sqlalchemy.orm import registry\nmapper_registry = registry(metadata=MetaData())\n"}
    assert applies(code)["FDB503"]
    assert [f.start.row for f in lint(code, "FDB503", files=files)] == [6]


def test_fdb508_mapped_through_a_module_alias_in_a_string_annotation():
    code = """\
        import datetime as dt
        import sqlalchemy.orm as orm
        class Event:
            starts: "orm.Mapped[dt.datetime]"
    """
    assert applies(code)["FDB508"]
    assert [f.start.row for f in lint(code, "FDB508")] == [4]


@pytest.mark.parametrize(
    ("files", "code"),
    [
        # A module-level alias of a base from another file.
        ({"app/db.py": BASE}, "from sqlalchemy.orm import Mapped, mapped_column\nfrom app import db\nLocalBase = db.Base\nclass Comment(LocalBase):\n    id: Mapped[int] = mapped_column(primary_key=True)\n"),
        # A base declared in the same file, under an aliased root.
        ({}, "from sqlalchemy.orm import DeclarativeBase as DB\nclass Base(DB):\n    pass\nclass Comment(Base):\n    pass\n"),
        # A base that another module re-exports under another name: the mapped class
        # itself is in the hierarchy.
        (
            {
                "app/base.py": BASE,
                "app/db.py": "from sqlalchemy import create_engine\nfrom app.base import Base as Model\nengine = create_engine(URL)\n",
            },
            "from sqlalchemy.orm import Mapped, mapped_column\nfrom app.db import Model\nclass Comment(Model):\n    id: Mapped[int] = mapped_column(primary_key=True)\n",
        ),
        # `__abstract__ = False` does not make the class abstract.
        ({"app/db.py": BASE}, "from sqlalchemy.orm import Mapped, mapped_column\nfrom app.db import Base\nclass Comment(Base):\n    __abstract__ = False\n    id: Mapped[int] = mapped_column(primary_key=True)\n"),
        # A class defined in a function, its base imported under an alias.
        ({"app/db.py": BASE}, "import sqlalchemy as sa\nfrom app.db import Base as B\ndef make():\n    class Comment(B):\n        id = sa.Column(sa.Integer, primary_key=True)\n    return Comment\n"),
    ],
)
def test_fdb504_applies_to_classes_without_a_table_in_a_hierarchy(files, code):
    assert project_applies(code, "FDB504", files)
    assert len(lint(code, "FDB504", files=files)) == 1


def test_fdb504_skips_files_whose_mapped_classes_all_have_a_table():
    code = """\
        from pydantic import BaseModel
        from app.db import Base
        class Model(Base):
            __abstract__ = True
        class User(Model):
            __tablename__ = "user"
        class Group(Base):
            __table__ = group_table
        class UserRead(BaseModel):
            name: str
    """
    assert not project_applies(code, "FDB504", {"app/db.py": BASE})
    # `DeclarativeBase` itself is a base of mapped classes only under `@<registry>.mapped`.
    assert not applies(BASE)["FDB504"]
    decorated = "from app.db import mapper_registry\nfrom sqlalchemy.orm import DeclarativeBase\n@mapper_registry.mapped\nclass A(DeclarativeBase):\n    pass\n"
    assert applies(decorated)["FDB504"]


def test_fdb501_skips_mapped_classes_with_mixins_and_metadata_made_in_functions():
    code = """\
        from sqlalchemy import Column, Integer, MetaData
        from app.db import Base
        from app.mixins import TimeStampMixin
        class Case(Base, TimeStampMixin):
            __tablename__ = "case"
            id = Column(Integer, primary_key=True)
        def reflect(connection):
            meta = MetaData()
            meta.reflect(connection)
            return meta.tables["case"]
    """
    files = {
        "app/db.py": BASE,
        "app/mixins.py": "from sqlalchemy import Column, DateTime\nclass TimeStampMixin:\n    created_at = Column(DateTime)\n",
    }
    assert not project_applies(code, "FDB501", files)
    assert lint(code, "FDB501", files=files) == []


@pytest.mark.parametrize(
    "code",
    [
        "from sqlalchemy import MetaData\nclass Settings:\n    metadata = MetaData()\n",
        "from sqlalchemy import MetaData as Meta\nmetadata = Meta(schema='app')\n",
        "import sqlalchemy as sa\n@decorate(sa.MetaData())\ndef setup():\n    pass\n",
    ],
)
def test_fdb501_applies_to_metadata_made_outside_functions(code):
    assert applies(code)["FDB501"]


def test_fdb501_sqlmodel_table_under_an_aliased_model_from_another_file():
    code = "from sqlmodel import Field\nfrom app.schemas import HeroBase as HB\nclass Hero(HB, table=True):\n    id: int | None = Field(default=None, primary_key=True)\n"
    files = {"app/schemas.py": "from sqlmodel import SQLModel\nclass HeroBase(SQLModel):\n    name: str\n"}
    assert project_applies(code, "FDB501", files)
    assert [f.start.row for f in lint(code, "FDB501", files=files)] == [3]


def test_fdb503_skips_columns_that_are_not_class_attributes():
    code = """\
        from sqlalchemy import Column, ForeignKey, Table
        from sqlalchemy.orm import Mapped, mapped_column
        from app.db import Base
        tag_recipe = Table("tag_recipe", Base.metadata, Column("tag_id", ForeignKey("tag.id"), index=True))
        class Tag(Base):
            __tablename__ = "tag"
            id: Mapped[int] = mapped_column(primary_key=True)
    """
    assert not project_applies(code, "FDB503", {"app/db.py": BASE})


def test_fdb503_applies_to_an_aliased_column_in_a_model():
    code = 'from sqlalchemy import Column as C, Integer\nfrom app.db import Base\nclass User(Base):\n    __tablename__ = "user"\n    id = C(Integer, primary_key=True)\n'
    assert project_applies(code, "FDB503", {"app/db.py": BASE})
    assert [f.start.row for f in lint(code, "FDB503", files={"app/db.py": BASE})] == [5]


def test_fdb505_skips_indexed_foreign_keys():
    code = """\
        from sqlalchemy import Column, ForeignKey, Integer
        from sqlmodel import Field, SQLModel
        class Post(Base):
            __tablename__ = "post"
            author_id = mapped_column(ForeignKey("user.id"), index=True)
            slug_id = Column(Integer, ForeignKey("slug.id"), unique=True)
            group_id = Column(Integer, ForeignKey("group.id"), primary_key=flag)
            tag_id = Column(Integer, ForeignKey("tag.id"), **options)
        class Hero(SQLModel, table=True):
            team_id: int = Field(foreign_key="team.id", index=False)
    """
    assert not applies(code)["FDB505"]


@pytest.mark.parametrize(
    "code",
    [
        'class Post(Base):\n    author_id = mapped_column(ForeignKey("user.id"), unique=False)\n',
        'import sqlalchemy as sa\nt = sa.Table("t", m, sa.Column("user_id", sa.ForeignKey("user.id"), primary_key=False))\n',
    ],
)
def test_fdb505_applies_to_unindexed_foreign_keys(code):
    assert applies(code)["FDB505"]


def test_fdb506_skips_aware_and_database_defaults():
    code = """\
        from datetime import datetime, timezone
        from sqlalchemy import Column, Date, DateTime
        from sqlmodel import Field, SQLModel
        class Event(Base):
            created_at = Column(DateTime, default=lambda: datetime.now(timezone.utc))
            day = mapped_column(Date, default=get_utc_today)
            seen_at = Column(DateTime, default=datetime.now(timezone.utc), onupdate=datetime.utcnow)
        class Hero(SQLModel, table=True):
            created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    """
    assert not applies(code)["FDB506"]


@pytest.mark.parametrize(
    "code",
    [
        "from datetime import datetime\nfrom sqlalchemy import Column, DateTime\nx = Column(DateTime, default=datetime.now)\n",
        "from datetime import datetime\nfrom sqlalchemy import Column, DateTime\nx = Column(DateTime, default=datetime.now())\n",
        "import datetime as dt\nfrom sqlalchemy.orm import mapped_column\nx = mapped_column(default=lambda: dt.datetime.utcnow())\n",
        "import datetime\nimport sqlalchemy.orm as orm\nx = orm.mapped_column(insert_default=datetime.datetime.today(tz))\n",
    ],
)
def test_fdb506_applies_to_naive_defaults(code):
    assert applies(code)["FDB506"]
    assert len(lint(code, "FDB506")) == 1
