"""All rules, looked up by code, and rule selection (``select``/``ignore``).

Selection reads the generated catalog (plain data); the rule classes, and with them
LibCST, are imported only by :func:`all_rules`, when files are actually linted.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from fastdb_lint.catalog import RULES, RuleInfo
from fastdb_lint.diagnostics import PARSE_ERROR

if TYPE_CHECKING:
    from fastdb_lint.rules.base import Rule



class SelectionError(ValueError):
    pass


def _all_subclasses(cls: type[Rule]) -> list[type[Rule]]:
    out = []
    for sub in cls.__subclasses__():
        if hasattr(sub, "code"):
            out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


@lru_cache(maxsize=1)
def all_rules() -> dict[str, type[Rule]]:
    import fastdb_lint.rules  # noqa: F401  (registers the rule classes)
    from fastdb_lint.rules.base import Rule

    rules = sorted(_all_subclasses(Rule), key=lambda r: r.code)
    by_code: dict[str, type[Rule]] = {}
    for rule in rules:
        if rule.code in by_code:
            raise RuntimeError(f"duplicate rule code {rule.code}")
        by_code[rule.code] = rule
    return by_code


def get_rule(code_or_name: str) -> type[Rule] | None:
    """The rule class, by code (any case) or name."""
    info = find_rule(code_or_name)
    return all_rules().get(info.code) if info is not None else None


def find_rule(code_or_name: str) -> RuleInfo | None:
    """The catalog entry of a rule, by code (any case) or name."""
    info = RULES.get(code_or_name.upper())
    if info is not None:
        return info
    return next((i for i in RULES.values() if i.name == code_or_name), None)


def _matches(selector: str, rule: RuleInfo) -> bool:
    if selector == "ALL":
        return not rule.opt_in
    if rule.code == selector:
        return True
    return rule.code.startswith(selector) and not rule.opt_in


def validate_selector(selector: str) -> str:
    normalized = selector.strip().upper()
    if normalized == "ALL":
        return normalized
    if not any(code.startswith(normalized) for code in RULES) or not normalized.startswith("FDB"):
        raise SelectionError(f"unknown rule selector: {selector!r}")
    return normalized


def resolve_selection(
    select: Iterable[str] | None,
    ignore: Iterable[str] = (),
    extend_select: Iterable[str] = (),
) -> frozenset[str]:
    """Codes enabled by ruff-style selectors (prefixes, exact codes, ``ALL``).

    Opt-in rules are enabled only by their exact code. FDB001 is always enabled.
    """
    rules = RULES
    base = [r for r in rules.values() if not r.opt_in] if select is None else [
        r for r in rules.values() if any(_matches(s, r) for s in select)
    ]
    enabled = {r.code for r in base}
    enabled |= {r.code for r in rules.values() if any(_matches(s, r) for s in extend_select)}
    enabled -= {r.code for r in rules.values() if any(s == "ALL" or r.code.startswith(s) for s in ignore)}
    enabled.add(PARSE_ERROR)
    return frozenset(enabled)
