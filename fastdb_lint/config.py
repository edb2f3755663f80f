"""Configuration: ``[tool.fastdb-lint]`` in ``pyproject.toml`` (or a file given with
``--config``), validated into a frozen :class:`Settings`.

Discovery follows ruff: the closest ``pyproject.toml`` upward from the linted path that
has a ``[tool.fastdb-lint]`` table wins; files without the table are skipped. Unknown
keys and values of the wrong type are errors naming the key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10
    import tomli as tomllib

from fastdb_lint.registry import SelectionError, resolve_selection, validate_selector

TABLE = "fastdb-lint"


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    root: Path
    config_path: Path | None = None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    force_exclude: bool = False
    enabled: frozenset[str] = field(default_factory=frozenset)

    def with_cli(
        self,
        *,
        select: tuple[str, ...] | None = None,
        ignore: tuple[str, ...] = (),
        extend_select: tuple[str, ...] = (),
        force_exclude: bool | None = None,
    ) -> Settings:
        """CLI options override the file (ruff's precedence)."""
        try:
            sel = tuple(validate_selector(s) for s in select) if select else self.select
            ign = self.ignore + tuple(validate_selector(s) for s in ignore)
            ext = self.extend_select + tuple(validate_selector(s) for s in extend_select)
        except SelectionError as exc:
            raise ConfigError(str(exc)) from exc
        updated = replace(
            self,
            select=sel,
            ignore=ign,
            extend_select=ext,
            force_exclude=self.force_exclude if force_exclude is None else force_exclude,
        )
        return replace(updated, enabled=resolve_selection(updated.select, updated.ignore, updated.extend_select))


_LIST_KEYS = {"select", "ignore", "extend-select", "exclude", "extend-exclude"}
_BOOL_KEYS = {"respect-gitignore", "force-exclude"}
KNOWN_KEYS = _LIST_KEYS | _BOOL_KEYS | {"per-file-ignores"}


def _string_list(key: str, value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `{key}` must be a list of strings, got {value!r}")
    return tuple(value)


def parse_table(table: Any, root: Path, where: str) -> Settings:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [tool.{TABLE}] must be a table")
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key `{unknown[0]}` in [tool.{TABLE}] (known keys: {', '.join(sorted(KNOWN_KEYS))})"
        )
    values: dict[str, Any] = {}
    try:
        for key in _LIST_KEYS & set(table):
            items = _string_list(key, table[key], where)
            if key in ("select", "ignore", "extend-select"):
                items = tuple(validate_selector(s) for s in items)
            values[key.replace("-", "_")] = items
        for key in _BOOL_KEYS & set(table):
            if not isinstance(table[key], bool):
                raise ConfigError(f"{where}: `{key}` must be true or false, got {table[key]!r}")
            values[key.replace("-", "_")] = table[key]
        if "per-file-ignores" in table:
            pfi = table["per-file-ignores"]
            if not isinstance(pfi, dict):
                raise ConfigError(f"{where}: `per-file-ignores` must be a table of glob = [codes]")
            values["per_file_ignores"] = tuple(
                (pattern, tuple(validate_selector(s) for s in _string_list(f"per-file-ignores.{pattern}", codes, where)))
                for pattern, codes in pfi.items()
            )
    except SelectionError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    settings = Settings(root=root, **values)
    return replace(settings, enabled=resolve_selection(settings.select, settings.ignore, settings.extend_select))


def load_file(path: Path, *, explicit: bool) -> Settings | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    if path.name == "pyproject.toml" or not explicit:
        tool = data.get("tool", {})
        table = tool.get(TABLE) if isinstance(tool, dict) else None
        if table is None:
            if explicit:
                raise ConfigError(f"{path}: no [tool.{TABLE}] table")
            return None
    else:
        # A dedicated file (e.g. fastdb-lint.toml) holds the keys at top level.
        tool = data.get("tool")
        table = tool.get(TABLE, data) if isinstance(tool, dict) else data
    return parse_table(table, path.parent.resolve(), str(path))


def discover(start: Path) -> Settings:
    """Closest pyproject.toml with a [tool.fastdb-lint] table, upward from ``start``."""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            settings = load_file(pyproject, explicit=False)
            if settings is not None:
                return replace(settings, config_path=pyproject)
    root = _project_root(directory)
    return replace(Settings(root=root), enabled=resolve_selection(None))


def _project_root(directory: Path) -> Path:
    for candidate in (directory, *directory.parents):
        if (candidate / ".git").exists() or (candidate / "pyproject.toml").is_file():
            return candidate
    return directory


def load(config_file: Path | None, start: Path) -> Settings:
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file not found: {config_file}")
        settings = load_file(config_file, explicit=True)
        assert settings is not None
        return replace(settings, config_path=config_file)
    return discover(start)
