"""The clean-file path: a clean CSV is read once, and its typed Parquet is exactly what the
full path (text table, row edits, typed copy) writes, with the same row numbers. Row
defects never stay on it (test_bad_inputs: every row case is sent to the full path)."""

from __future__ import annotations

import csv
import re

import pytest

from collectwatch.contracts import SUBMISSION_TYPES
from collectwatch.intake import lifecycle
from collectwatch.intake.edits import exact_values
from collectwatch.intake.formats import load_text_table
from collectwatch.intake.process import IntakeSession, intake_file
from collectwatch.raw import typed_select
from conftest import read_rows

TYPES = ("lender_portfolio", "agency_assignment", "agency_caseload", "contact_events", "complaints")


def _full_path_table(settings, path, submission_type):
    con = settings.duckdb()
    try:
        load_text_table(con, path, SUBMISSION_TYPES[submission_type], settings)
        typed = con.sql(typed_select(SUBMISSION_TYPES[submission_type])).to_arrow_table()
        row_numbers = con.execute("select _row_no from submission").fetchall()
        return typed, row_numbers
    finally:
        con.close()


@pytest.mark.parametrize("submission_type", TYPES)
def test_clean_csv_is_written_as_the_full_path_writes_it(submission_type, settings, landing):
    path = landing.put(submission_type)
    typed, row_numbers = _full_path_table(settings, path, submission_type)
    with IntakeSession(settings, record=False) as session:
        session.check(path)
        assert session.clean is not None
        assert session.clean.row_count == typed.num_rows > 0
        clean = session.con.sql(f"select * from '{session.clean.typed_path}'").to_arrow_table()
        assert clean.equals(typed)
        session.checked.open_submission()  # made when an edit reads the records
        assert session.con.execute("select _row_no from submission").fetchall() == row_numbers
    assert not list(settings.intake_work_dir.glob("*.parquet"))  # a check keeps nothing


def _padded_full_width_and_grouped(rows, fieldnames):
    rows[0]["region_code"] = " " + rows[0]["region_code"] + " "
    rows[1]["accounts"] = _full_width(rows[1]["accounts"])
    rows[2]["balance"] = f"{float(rows[2]['balance']):,.2f}"
    rows[3]["region_code"] = _full_width(rows[3]["region_code"])
    return rows, fieldnames


def _full_width(digits: str) -> str:
    return "".join(chr(ord(digit) + 0xFEE0) for digit in digits)


def _assert_kept_on_the_clean_path_as_the_full_path_types_it(
    settings, path, submission_type="lender_portfolio"
) -> None:
    typed, _ = _full_path_table(settings, path, submission_type)
    with IntakeSession(settings, record=False) as session:
        report = session.check(path)
        assert session.clean is not None, report.rule_counts
        clean = session.con.sql(f"select * from '{session.clean.typed_path}'").to_arrow_table()
        assert clean.equals(typed)


def test_cells_the_full_path_normalises_stay_on_the_clean_path(settings, landing):
    """Padding, full-width digits (in a count and in a region code) and thousands
    separators are normalised, not defects: the file stays on the clean path and gets the
    same typed values."""
    path = landing.put("lender_portfolio", _padded_full_width_and_grouped)
    assert "," in read_rows(path)[0][2]["balance"]
    _assert_kept_on_the_clean_path_as_the_full_path_types_it(settings, path)


# In the period whatever the offset, the first and the last microsecond included; and
# hash-like references, which are lowercase hex.
IN_PERIOD_CONTACTS = {
    0: "2026-09-30T16:00:00Z",
    1: "2026-10-05T10:00:00+0800",
    2: "2026-10-31T23:59:59.999999+08:00",
    3: "2026-10-31T10:00:00-05:00",
}


def _contacts_with_other_offsets(rows, fieldnames):
    for index, contact_at in IN_PERIOD_CONTACTS.items():
        rows[index]["contact_at"] = contact_at
    rows[4]["debtor_ref"] = "0123456789abcdef" * 4
    return rows, fieldnames


def test_timestamps_in_the_period_with_any_offset_stay_on_the_clean_path(settings, landing):
    """The clean path finds Beijing's offset without a regular expression; any other offset
    in the period is as clean, and typed to the same instant."""
    path = landing.put("contact_events", _contacts_with_other_offsets)
    _assert_kept_on_the_clean_path_as_the_full_path_types_it(settings, path, "contact_events")


def test_accepted_clean_file_is_moved_into_the_raw_zone_and_archive(settings, landing):
    path = landing.put("contact_events")
    result = intake_file(path, settings)
    assert result.status == lifecycle.ACCEPTED, result.report.rule_counts
    assert not path.exists()
    assert not list(settings.intake_work_dir.glob("*.parquet"))
    (raw,) = settings.raw_dir.glob("contact_events/**/*.parquet")
    typed_rows = settings.duckdb().execute(f"select count(*) from '{raw}'").fetchone()[0]
    assert typed_rows == len(read_rows(landing.source("contact_events"))[0])
    assert len(list(settings.archive_dir.glob("*.csv"))) == 2  # the registry and this file


def _codes_padded_with_unicode_white_space(rows, fieldnames):
    rows[0]["region_code"] += "\u00a0"  # no-break space: folded to a space and trimmed
    rows[1]["bucket"] = "\u3000" + rows[1]["bucket"]  # ideographic space: likewise
    return rows, fieldnames


def test_codes_are_written_as_read_only_when_they_are_well_formed(settings, landing):
    """The clean path writes a required code column's cells as read, untrimmed: right for
    the white space normalisation removes (the typed values are the full path's), and a
    code with other white space is malformed, so its file leaves the clean path."""
    path = landing.put("lender_portfolio", _codes_padded_with_unicode_white_space)
    _assert_kept_on_the_clean_path_as_the_full_path_types_it(settings, path)

    def em_space_after_code(rows, fieldnames):
        rows[0]["region_code"] += "\u2003"
        return rows, fieldnames

    path = landing.put("lender_portfolio", em_space_after_code)
    with IntakeSession(settings, record=False) as session:
        report = session.check(path)
        assert session.clean is None
    found = {(f["rule_id"], f["row"], f["field"]) for f in report.findings}
    assert ("V005", 2, "region_code") in found


def test_every_well_formed_code_is_ascii_without_white_space(settings):
    """What the clean path's cheaper tests rest on (edits._CellRules.column, clean._as_read):
    a well-formed cell of a code column is printable ASCII without spaces, so a cell of
    white space only is malformed, and trimming a well-formed one changes nothing."""
    printable = re.compile(r"[!-~]+")
    codes = [value for t in SUBMISSION_TYPES.values() for c in t.columns for value in c.allowed]
    codes += [row["region_code"] for row in csv.DictReader(settings.region_seed.open())]
    assert len(codes) > 300
    assert [code for code in codes if not printable.fullmatch(code)] == []
    kinds = {c.kind for t in SUBMISSION_TYPES.values() for c in t.columns if exact_values(c)}
    # the other kinds' formats: USCC characters, lowercase hex, the period YYYY-MM ("": codes)
    assert kinds <= {"uscc", "hmac_ref", "region", "period", ""}
