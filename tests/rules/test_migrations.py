"""FDB7xx beyond the embedded examples: file recognition, several findings, messages."""

from __future__ import annotations

import ast
import textwrap

import libcst as cst
import pytest

from fastdb_lint.analysis.alembic import classify
from fastdb_lint.analysis.shape import file_shape
from fastdb_lint.engine import lint_sources
from fastdb_lint.registry import all_rules
from fastdb_lint.testing import NO_PROJECT_TERMS

HEAD = """\
from alembic import op
import sqlalchemy as sa

revision = "b2"
down_revision = "a1"
"""
PATH = "alembic/versions/b2_change.py"


def lint(code: str, select: str, path: str = PATH):
    return [f for f in lint_sources({path: code}, select=(select,))[path] if f.code == select]


def migration(body: str) -> str:
    return HEAD + textwrap.dedent(body)


# -- recognition -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code", "migration_file", "env_file"),
    [
        (PATH, HEAD + "def upgrade():\n    pass\n", True, False),
        ("alembic/versions/b2_change.py", "def upgrade():\n    pass\n", False, False),
        ("alembic/versions/b2_change.py", 'revision = "b2"\n', False, False),
        ("alembic/b2_change.py", HEAD + "def upgrade():\n    pass\n", False, False),
        ("db/versions/b2.py", 'revision: str = "b2"\ndef upgrade() -> None:\n    ...\n', True, False),
        ("alembic/env.py", "from alembic import context\n", False, True),
        ("alembic/env.py", "import alembic.context\n", False, True),
        ("alembic/env.py", "from alembic.context import config\n", False, True),
        ("alembic/env.py", "try:\n    from alembic import context\nexcept ImportError:\n    context = None\n", False, True),
        ("alembic/env.py", "from alembic import op\n", False, False),
        ("app/settings.py", "from alembic import context\n", False, False),
    ],
)
def test_classify(path, code, migration_file, env_file):
    kind = classify(path, cst.parse_module(code))
    assert (kind.is_migration, kind.is_env) == (migration_file, env_file)


# -- FDB701 ----------------------------------------------------------------------------


def test_fdb701_reported_at_def_downgrade():
    code = migration(
        """
        def upgrade():
            op.drop_column("user", "legacy")


        @some_decorator
        def downgrade(): pass
        """
    )
    (finding,) = lint(code, "FDB701")
    assert code.splitlines()[finding.start.row - 1].startswith("def downgrade")


def test_fdb701_docstring_only_upgrade_counts_as_empty():
    code = migration(
        '''
        def upgrade():
            """Merge heads."""

        def downgrade():
            pass
        '''
    )
    assert lint(code, "FDB701") == []


# -- FDB702 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "from app.models import User",
        "import app.models",
        "from . import helpers",
        "from myproject.db.base import Base",
        "from models import Post",
    ],
)
def test_fdb702_flags_non_static_imports(line):
    code = migration(f"{line}\n\ndef upgrade():\n    pass\n")
    (finding,) = lint(code, "FDB702")
    assert "application code" in finding.message


@pytest.mark.parametrize(
    "line",
    [
        "from __future__ import annotations",
        "from typing import Sequence, Union",
        "import sqlalchemy.dialects.postgresql as pg",
        "from sqlmodel.sql.sqltypes import AutoString",
        "from pgvector.sqlalchemy import Vector",
        "import sqlalchemy_utils",
        "from fastapi_users_db_sqlalchemy.generics import GUID",
        "from alembic_postgresql_enum import TableReference",
    ],
)
def test_fdb702_allows_static_imports(line):
    code = migration(f"{line}\n\ndef upgrade():\n    pass\n")
    assert lint(code, "FDB702") == []


def test_fdb702_one_finding_per_statement():
    code = migration("import app.models, app.utils\nfrom app import config\n\ndef upgrade():\n    pass\n")
    assert len(lint(code, "FDB702")) == 2


# -- FDB703 ----------------------------------------------------------------------------


def test_fdb703_identity_and_server_default_none():
    code = migration(
        """
        def upgrade():
            op.add_column("t", sa.Column("id2", sa.Integer, sa.Identity(), nullable=False))
            op.add_column("t", sa.Column("flag", sa.Boolean, nullable=False, server_default=None))
            op.add_column(table_name="t", column=sa.Column("x", sa.Integer, nullable=False))
        """
    )
    assert [f.start.row for f in lint(code, "FDB703")] == [9, 10]


def test_fdb703_outside_migrations_is_silent():
    code = migration('def upgrade():\n    op.add_column("t", sa.Column("x", sa.Integer, nullable=False))\n')
    assert lint(code, "FDB703", path="app/upgrade.py") == []


# -- FDB704 ----------------------------------------------------------------------------


def test_fdb704_is_opt_in_and_flags_each_index():
    code = migration(
        """
        def upgrade():
            op.create_index("ix_a", "order", ["a"])
            op.create_index("ix_b", "order", ["b"], postgresql_concurrently=False)
        """
    )
    assert len(lint(code, "FDB704")) == 2
    default = lint_sources({PATH: code})[PATH]
    assert not any(f.code == "FDB704" for f in default)


def test_fdb704_other_table_than_created_one_is_flagged():
    code = migration(
        """
        def upgrade():
            op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True))
            op.create_index("ix_order_a", "order", ["a"])
        """
    )
    assert len(lint(code, "FDB704")) == 1


# -- FDB705 ----------------------------------------------------------------------------


def test_fdb705_inside_function_is_silent_and_message():
    env = "from alembic import context\n\ndef configure():\n    target_metadata = None\n"
    assert lint(env, "FDB705", path="migrations/env.py") == []
    (finding,) = lint("from alembic import context\ntarget_metadata = None\n", "FDB705", path="migrations/env.py")
    assert "target_metadata" in finding.message


def test_fdb702_well_known_third_party_is_not_app_code():
    code = migration("import pydantic\nfrom dateutil import parser\n\ndef upgrade():\n    pass\n")
    assert lint(code, "FDB702") == []


def test_fdb702_project_package_shadowing_third_party_name_is_app_code():
    code = migration("from typer.models import User\n\ndef upgrade():\n    pass\n")
    files = {PATH: code, "src/typer/models.py": "from sqlalchemy.orm import DeclarativeBase\n"}
    findings = [f for f in lint_sources(files, select=("FDB702",))[PATH]]
    assert len(findings) == 1


# -- shape preconditions (`applies`) ---------------------------------------------------

NO_TERMS = NO_PROJECT_TERMS


def applies(code: str) -> dict[str, bool]:
    shape = file_shape(ast.parse(code))
    return {name: rule.applies(shape, NO_TERMS) for name, rule in all_rules().items() if name.startswith("FDB7")}


def test_no_migration_rule_applies_to_application_code():
    code = textwrap.dedent(
        """\
        from alembic import op
        import sqlalchemy as sa
        from app.models import User

        def add_column(session, name):
            op.add_column("user", sa.Column(name, sa.String, nullable=False))
            op.create_index("ix_user_name", "user", [name])

        def upgrade():
            add_column(None, "plan")
        """
    )
    assert not any(applies(code).values())


def test_an_autogenerated_migration_selects_only_what_it_can_break():
    code = migration(
        """
        def upgrade():
            op.create_table("audit", sa.Column("id", sa.Integer(), nullable=False))

        def downgrade():
            op.drop_table("audit")
        """
    )
    assert not any(applies(code).values())
    irreversible = code.replace('op.drop_table("audit")', '"""Not reversible."""\n    pass')
    assert {name for name, hit in applies(irreversible).items() if hit} == {"FDB701"}


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ('revision: str = "b2"\nasync def upgrade() -> None:\n    ...\nasync def downgrade() -> None:\n    pass\n', "FDB701"),
        (migration("def upgrade():\n    from ..helpers import create_trigger\n"), "FDB702"),
        (migration("from pydantic import BaseModel\ndef upgrade():\n    pass\n"), "FDB702"),
        (migration("import app.models\ndef upgrade():\n    pass\n"), "FDB702"),
        (
            migration(
                'def upgrade():\n    with op.batch_alter_table("user") as batch_op:\n'
                '        batch_op.add_column(sa.Column("plan", sa.String(20), nullable=False))\n'
            ),
            "FDB703",
        ),
        (
            'from alembic import op as o\nrevision = "b2"\ndef upgrade():\n    o.create_index("ix", "t", ["c"])\n',
            "FDB704",
        ),
        ("from alembic.context import config\ntarget_metadata = None\n", "FDB705"),
        ("import alembic.context\ntarget_metadata: object = None\n", "FDB705"),
    ],
)
def test_migration_rules_apply_to_tricky_files(code, rule):
    assert applies(code)[rule]


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("def upgrade():\n    create_everything()\n\ndef downgrade():\n    pass\n", "FDB701"),
        (migration("from datetime import datetime\nimport sqlalchemy_utils\ndef upgrade():\n    pass\n"), "FDB702"),
        (migration('def upgrade():\n    op.drop_column("user", "plan")\n'), "FDB703"),
        (migration('def upgrade():\n    op.drop_index("ix_user_plan")\n'), "FDB704"),
        ("from app.settings import settings\ntarget_metadata = None\n", "FDB705"),
    ],
)
def test_migration_rules_skip_files_they_cannot_flag(code, rule):
    assert not applies(code)[rule]


def test_fdb705_env_importing_from_alembic_context_is_checked():
    code = "from alembic.context import config\ntarget_metadata = None\n"
    assert [f.start.row for f in lint(code, "FDB705", path="migrations/env.py")] == [2]


def test_fdb703_skips_not_null_columns_that_are_not_added_bare():
    code = migration(
        """
        def upgrade():
            op.create_table("audit", sa.Column("id", sa.Integer(), nullable=False))
            op.add_column("user", sa.Column("plan", sa.String(20), nullable=True))
            op.add_column("user", sa.Column("seq", sa.Integer(), server_default=sa.text("1"), nullable=False))
            op.add_column("user", sa.Column("kind", sa.String(20), *extra, nullable=False))
            op.alter_column("user", "plan", nullable=False)
        """
    )
    assert not applies(code)["FDB703"]
    assert lint(code, "FDB703") == []


@pytest.mark.parametrize(
    "body",
    [
        # Under an aliased import, the column given by keyword, `server_default=None`.
        """
        from alembic.op import add_column as add
        def upgrade():
            add("user", column=sa.Column("plan", sa.String(20), nullable=False, server_default=None))
        """,
        """
        def upgrade():
            with op.batch_alter_table("user") as batch:
                batch.add_column(sa.Column("plan", sa.String(20), nullable=(False)))
        """,
    ],
)
def test_fdb703_applies_to_bare_not_null_columns(body):
    code = migration(body)
    assert applies(code)["FDB703"]
    assert len(lint(code, "FDB703")) == 1


def test_fdb705_skips_env_files_that_set_target_metadata():
    code = textwrap.dedent(
        """\
        from alembic import context
        from app.models import Base
        config = context.config
        target_metadata = Base.metadata

        def run_migrations_offline():
            target_metadata = None
            context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)

        class Settings:
            target_metadata = None
        """
    )
    assert not applies(code)["FDB705"]
    assert lint(code, "FDB705", path="migrations/env.py") == []


@pytest.mark.parametrize(
    "code",
    [
        "from alembic import context\nconfig = target_metadata = None\n",
        "from alembic import context\nif context.is_offline_mode():\n    target_metadata = None\n",
    ],
)
def test_fdb705_applies_to_a_module_level_none(code):
    assert applies(code)["FDB705"]
    assert len(lint(code, "FDB705", path="migrations/env.py")) == 1
