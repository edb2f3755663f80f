"""Every rule's embedded valid/invalid examples, run through the real engine."""

from __future__ import annotations

import re

import libcst as cst
import pytest

from fastdb_lint.diagnostics import FixAvailability
from fastdb_lint.registry import all_rules
from fastdb_lint.testing import findings_for, fixed_code

RULES = list(all_rules().values())
VALID = [pytest.param(r, i, id=f"{r.code}-valid-{i}") for r in RULES for i in range(len(r.valid))]
INVALID = [pytest.param(r, i, id=f"{r.code}-invalid-{i}") for r in RULES for i in range(len(r.invalid))]
SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Fix safety")


@pytest.mark.parametrize(("rule", "index"), VALID)
def test_valid_example_is_not_flagged(rule, index):
    example = rule.valid[index]
    findings = findings_for(rule, example)
    assert findings == [], f"{rule.code} flagged a valid example:\n{example.code}\n{findings}"


@pytest.mark.parametrize(("rule", "index"), INVALID)
def test_invalid_example_is_flagged(rule, index):
    example = rule.invalid[index]
    findings = findings_for(rule, example)
    assert len(findings) == example.count, (
        f"{rule.code}: expected {example.count} finding(s), got {len(findings)}:\n{example.code}\n{findings}"
    )
    if example.line is not None:
        assert findings[0].start.row == example.line
    if example.fixed is not None:
        fixed = fixed_code(rule, example)
        assert fixed == example.fixed
        cst.parse_module(fixed)
        assert fixed_code(rule, example, fixed) == fixed, "fixing twice must change nothing"
    elif rule.code != "FDB001":
        assert all(f.fix is None for f in findings) or rule.fix is not FixAvailability.NONE


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_rule_is_documented(rule):
    assert re.fullmatch(r"FDB\d{3}", rule.code)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
    assert rule.summary and not rule.summary.endswith(".")
    doc = rule.documentation()
    for section in SECTIONS:
        assert section in doc, f"{rule.code} docstring lacks {section!r}"
    assert rule.valid and rule.invalid, f"{rule.code} needs valid and invalid examples"
    if rule.fix is not FixAvailability.NONE:
        assert any(ex.fixed is not None for ex in rule.invalid), f"{rule.code} has a fix but no fixed example"
    else:
        assert all(ex.fixed is None for ex in rule.invalid)


def test_names_are_unique():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
