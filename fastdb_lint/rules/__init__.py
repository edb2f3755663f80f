"""Rule modules, one per rule group. Importing this package registers every rule."""

from fastdb_lint.rules import (  # noqa: F401
    async_,
    engine,
    fastapi,
    linter,
    migrations,
    models,
    queries,
    raw_sql,
    sessions,
    transactions,
)
