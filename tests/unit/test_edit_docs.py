"""docs/edits.md is generated from the catalogue: it cannot drift from the code."""

from __future__ import annotations

from collectwatch.cli import main
from collectwatch.config import PROJECT_ROOT
from collectwatch.intake.catalogue import RULES, render_markdown


def test_checked_in_docs_match_the_catalogue():
    checked_in = (PROJECT_ROOT / "docs" / "edits.md").read_text()
    assert checked_in == render_markdown(), "run `collectwatch docs` and commit docs/edits.md"


def test_every_rule_is_documented_once(tmp_path):
    out = tmp_path / "edits.md"
    assert main(["docs", "--out", str(out)]) == 0
    text = out.read_text()
    for rule_id in RULES:
        assert text.count(f"| {rule_id} |") == 1
