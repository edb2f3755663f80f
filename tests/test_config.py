from __future__ import annotations

from pathlib import Path

import pytest

from fastdb_lint.config import ConfigError, discover, load
from fastdb_lint.registry import all_rules, resolve_selection


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_nearest_pyproject_with_table_wins(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.fastdb-lint]\nignore = ["FDB2"]\n')
    write(tmp_path / "pkg" / "pyproject.toml", '[project]\nname = "pkg"\n')
    settings = discover(tmp_path / "pkg" / "mod.py")
    assert settings.config_path == tmp_path / "pyproject.toml"
    assert settings.root == tmp_path.resolve()
    assert "FDB201" not in settings.enabled
    assert "FDB301" in settings.enabled


def test_no_config_gives_defaults(tmp_path):
    settings = discover(tmp_path)
    defaults = {r.code for r in all_rules().values() if not r.opt_in}
    assert settings.enabled == frozenset(defaults)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('selec = ["FDB2"]', "unknown key `selec`"),
        ('select = "FDB2"', "`select` must be a list of strings"),
        ('select = ["XYZ9"]', "unknown rule selector: 'XYZ9'"),
        ("respect-gitignore = 1", "`respect-gitignore` must be true or false"),
        ('per-file-ignores = ["x"]', "`per-file-ignores` must be a table"),
        ("select = [", "invalid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, body, needle):
    write(tmp_path / "pyproject.toml", f"[tool.fastdb-lint]\n{body}\n")
    with pytest.raises(ConfigError) as excinfo:
        discover(tmp_path)
    assert needle in str(excinfo.value)
    assert "pyproject.toml" in str(excinfo.value)


def test_explicit_config_file(tmp_path):
    config = write(tmp_path / "fastdb-lint.toml", 'select = ["FDB201"]\n')
    settings = load(config, tmp_path)
    assert settings.enabled == {"FDB001", "FDB201"}


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.toml", tmp_path)


def test_selection_semantics():
    rules = all_rules()
    opt_in = [c for c, r in rules.items() if r.opt_in]
    everything = resolve_selection(["ALL"])
    assert "FDB201" in everything
    assert not set(opt_in) & everything, "ALL and prefixes leave opt-in rules off"
    if opt_in:
        assert opt_in[0] in resolve_selection(["FDB2", opt_in[0]])
        assert opt_in[0] in resolve_selection(None, extend_select=[opt_in[0]])
    only_two = resolve_selection(["FDB2"], ignore=["FDB201"])
    assert "FDB201" not in only_two
    assert all(c.startswith("FDB2") or c == "FDB001" for c in only_two)
    assert resolve_selection(["ALL"], ignore=["ALL"]) == {"FDB001"}, "FDB001 is always on"


def test_cli_selectors_override_the_file(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.fastdb-lint]\nselect = ["FDB3"]\n')
    settings = discover(tmp_path).with_cli(select=("FDB201",))
    assert settings.enabled == {"FDB001", "FDB201"}
    with pytest.raises(ConfigError, match="unknown rule selector"):
        discover(tmp_path).with_cli(ignore=("FDB999",))
