"""Which files the project index reads: facts other files depend on must not be missed."""

from __future__ import annotations

from fastdb_lint.engine import lint_sources
from fastdb_lint.prefilter import wants_index


def codes(sources: dict[str, str], path: str) -> list[str]:
    return sorted(f.code for f in lint_sources(sources)[path])


def test_a_settings_module_holding_only_the_url_is_indexed():
    sources = {
        "app/config.py": 'DATABASE_URL = "postgresql+psycopg2://app@db/app"\n',
        "app/db.py": (
            "from sqlalchemy.ext.asyncio import create_async_engine\n"
            "from app.config import DATABASE_URL\n"
            "engine = create_async_engine(DATABASE_URL, pool_pre_ping=True)\n"
        ),
    }
    assert codes(sources, "app/db.py") == ["FDB601"]


def test_models_re_exported_by_a_package_init_are_known():
    sources = {
        "app/models/base.py": "from sqlalchemy.orm import DeclarativeBase\nclass Base(DeclarativeBase):\n    pass\n",
        "app/models/__init__.py": "from .base import Base\n",
        "app/models/item.py": (
            "from sqlalchemy import Column, Integer\n"
            "from app.models import Base\n"
            "class Item(Base):\n"
            "    __tablename__ = 'item'\n"
            "    id = Column(Integer, primary_key=True)\n"
        ),
    }
    assert codes(sources, "app/models/item.py") == ["FDB503"]


def test_plain_modules_are_still_skipped():
    assert not wants_index("def add(a, b):\n    return a + b\n", "app/utils.py")
    assert not wants_index("VERSION = '1.0'\n", "app/__init__.py")
    assert wants_index("from .base import Base\n", "app/models/__init__.py")
