"""fastdb-lint: database anti-pattern linter for FastAPI + SQLAlchemy 2.x."""

__version__ = "0.1.0"
