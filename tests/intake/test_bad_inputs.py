"""The bad-input catalogue: a clean generated file with one thing broken, each rejected
(or held, or flagged) by exactly the rule meant for it, with the row, field and value
(masked when personal data) in the report — and nothing of it in the raw zone."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from collectwatch.config import Settings
from collectwatch.intake import lifecycle
from collectwatch.intake.catalogue import BLOCKING_CLASSES, RULES
from collectwatch.intake.process import IntakeSession, intake_file
from collectwatch.uscc import check_character
from conftest import ON_TIME, PERIOD, Landing, current_ids, read_rows

UNREGISTERED_USCC = "91440300MA5G8XXXX" + check_character("91440300MA5G8XXXX")
MOBILE = "13812345678"
ID_NUMBER = "11010519491231002X"  # the GB 11643 specimen: its check digit is right


def set_cell(index: int, field: str, value: str | None):
    def edit(rows, fieldnames):
        rows[index][field] = value
        return rows, fieldnames

    return edit


def masked(raw: str) -> Callable[[str], bool]:
    return lambda value: "*" in value and raw not in value and raw[3:-2] not in value


@dataclass(frozen=True)
class Case:
    id: str
    submission_type: str
    edit: Callable | None
    rule: str
    row: int | None
    field: str
    value: object  # the reported value, or a predicate on it
    # other blocking rules the same defect necessarily trips
    also: frozenset = frozenset()
    options: dict = dataclasses.field(default_factory=dict)


def _duplicate_row(rows, fieldnames):
    return [*rows, dict(rows[3])], fieldnames


def _first_resolved_after_the_1st(rows) -> int:
    return next(i for i, r in enumerate(rows) if r["resolved_at"] and r["received_at"][8:10] > "01")


def _resolved_before_received(rows, fieldnames):
    rows[_first_resolved_after_the_1st(rows)]["resolved_at"] = f"{PERIOD}-01T08:00:00+08:00"
    return rows, fieldnames


ROW_CASES = [
    Case("type", "lender_portfolio", set_cell(4, "accounts", "abc"), "V001", 6, "accounts", "abc"),
    Case("required", "lender_portfolio", set_cell(2, "balance", ""), "V002", 4, "balance", None),
    # White space only, which normalisation does not fold to a space (em and no-break
    # spaces): missing, in a code, a free-text and a timestamp column alike.
    Case(
        "blank code", "contact_events", set_cell(3, "channel", "\u2003"), "V002", 5, "channel", None
    ),
    Case(
        "blank id", "contact_events", set_cell(3, "event_id", "\u00a0"), "V002", 5, "event_id", None
    ),
    Case(
        "blank time",
        "contact_events",
        set_cell(3, "contact_at", "\u2003"),
        "V002",
        5,
        "contact_at",
        None,
    ),
    Case("enum", "contact_events", set_cell(3, "channel", "fax"), "V003", 5, "channel", "fax"),
    Case(
        "uscc check character",
        "agency_assignment",
        None,  # filled in below: needs the file's own agency code
        "V004",
        3,
        "agency_uscc",
        None,
    ),
    Case(
        "unknown region",
        "lender_portfolio",
        set_cell(5, "region_code", "999999"),
        "V005",
        7,
        "region_code",
        "999999",
    ),
    Case(
        "negative",
        "lender_portfolio",
        set_cell(0, "written_off", "-1.00"),
        "V006",
        2,
        "written_off",
        "-1.00",
    ),
    Case(
        "row period", "complaints", set_cell(0, "period", "2026-09"), "V007", 2, "period", "2026-09"
    ),
    Case(
        "timestamp without offset",
        "contact_events",
        set_cell(2, "contact_at", "2026-10-05T10:00:00"),
        "V009",
        4,
        "contact_at",
        "2026-10-05T10:00:00",
    ),
    Case(
        "timestamp outside the month",
        "contact_events",
        set_cell(2, "contact_at", "2026-11-02T10:00:00+08:00"),
        "V009",
        4,
        "contact_at",
        "2026-11-02T10:00:00+08:00",
    ),
    Case(
        "timestamp with an offset that does not parse",
        "contact_events",
        set_cell(2, "contact_at", "2026-10-32T10:00:00+08:00"),
        "V001",
        4,
        "contact_at",
        "2026-10-32T10:00:00+08:00",
    ),
    Case(
        "timestamp an hour after the month, in UTC",
        "contact_events",
        set_cell(2, "contact_at", "2026-10-31T17:00:00Z"),
        "V009",
        4,
        "contact_at",
        "2026-10-31T17:00:00Z",
    ),
    Case(
        "uppercase reference",
        "contact_events",
        set_cell(3, "case_ref", "0123456789ABCDEF" * 4),
        "V012",
        5,
        "case_ref",
        "0123456789ABCDEF" * 4,
    ),
    Case(
        "duplicate key",
        "contact_events",
        _duplicate_row,
        "V010",
        5,
        "period+agency_uscc+event_id",
        None,
    ),
    Case(
        "outsourced over balance",
        "lender_portfolio",
        set_cell(0, "balance_outsourced", "999999999999.00"),
        "V011",
        2,
        "balance_outsourced",
        "999999999999.00",
    ),
    Case(
        "reference",
        "contact_events",
        set_cell(6, "case_ref", "CASE-001"),
        "V012",
        8,
        "case_ref",
        "CASE-001",
    ),
    Case(
        "resolved before received",
        "complaints",
        _resolved_before_received,
        "V014",
        None,  # the first resolved complaint's row, found below
        "resolved_at",
        None,
    ),
    Case(
        "mobile number in an identifier",
        "contact_events",
        set_cell(0, "event_id", f"E{MOBILE}"),
        "V015",
        2,
        "event_id",
        masked(MOBILE),
    ),
    Case(
        "ID number as a debtor reference",
        "contact_events",
        set_cell(1, "debtor_ref", ID_NUMBER),
        "V015",
        3,
        "debtor_ref",
        masked(ID_NUMBER),
        also=frozenset({"V012"}),
    ),
    Case(
        "ID number in a licence number",
        "institution_registry",
        set_cell(2, "licence_no", f"L-{ID_NUMBER}"),
        "V015",
        4,
        "licence_no",
        masked(ID_NUMBER),
    ),
    Case(
        "personal name in a complaint id",
        "complaints",
        set_cell(0, "complaint_id", "张伟投诉"),
        "V018",
        2,
        "complaint_id",
        lambda value: "张" not in value and "伟" not in value,
    ),
]


def _expected_row(case: Case, rows):
    return 2 + _first_resolved_after_the_1st(rows) if case.rule == "V014" else case.row


def _put_case(case: Case, settings, landing):
    """Land the case's broken file; the case (with its value filled in where it depends on
    the file) and the file's path."""
    edit = case.edit
    if case.rule == "V004":
        rows, _ = read_rows(landing.source(case.submission_type))
        bad = rows[1]["agency_uscc"][:-1] + ("A" if rows[1]["agency_uscc"][-1] != "A" else "B")
        edit = set_cell(1, "agency_uscc", bad)
        case = dataclasses.replace(case, value=bad)
    submitter = settings.regulator_uscc if case.submission_type == "institution_registry" else None
    return case, landing.put(case.submission_type, edit, submitter=submitter)


@pytest.mark.parametrize("case", ROW_CASES, ids=[c.id for c in ROW_CASES])
def test_row_defect_is_rejected_with_row_field_and_value(case, settings, landing):
    case, path = _put_case(case, settings, landing)
    rows, _ = read_rows(path)
    result = intake_file(path, settings)

    assert result.status == lifecycle.REJECTED
    blocking = {r for r in result.report.rule_counts if RULES[r].edit_class in BLOCKING_CLASSES}
    assert blocking == {case.rule} | case.also
    found = [f for f in result.report.findings if f["rule_id"] == case.rule]
    row = _expected_row(case, rows)
    assert [(f["row"], f["field"]) for f in found][:1] == [(row, case.field)]
    value = found[0]["value"]
    if callable(case.value):
        assert case.value(value), value
    elif case.value is not None:
        assert value == case.value
    _assert_nothing_loaded(settings, result, case.submission_type)


@pytest.mark.parametrize("case", ROW_CASES, ids=[c.id for c in ROW_CASES])
def test_row_defect_sends_the_file_to_the_full_path(case, settings, landing):
    """The clean path's one-pass test misses no row defect: the file is read again in full
    (which the test above proves reports it exactly), and nothing is left behind."""
    _, path = _put_case(case, settings, landing)
    with IntakeSession(settings, record=False) as session:
        session.check(path)
        assert session.clean is None
    assert not list(settings.intake_work_dir.glob("*.parquet"))


def _assert_nothing_loaded(settings, result, submission_type):
    assert result.submission_id not in current_ids(settings)
    versions = list(settings.raw_dir.glob(f"{submission_type}/**/*.parquet"))
    expected = 1 if submission_type == "institution_registry" else 0  # the fixture's registry
    assert len(versions) == expected
    report = json.loads(result.report_path.read_text())
    assert report["status"] == "rejected"


def test_personal_data_never_appears_in_any_report_file(settings, landing):
    edit = set_cell(0, "event_id", f"E{MOBILE}")
    result = intake_file(landing.put("contact_events", edit), settings)
    for suffix in (".json", ".csv", ".html"):
        text = result.report_path.with_suffix(suffix).read_text(encoding="utf-8-sig")
        assert MOBILE not in text
    # PIPL: a file rejected for personal data is not kept, not even in quarantine.
    assert not any(settings.quarantine_dir.iterdir())


def test_a_name_as_debtor_reference_is_masked_in_every_finding(settings, landing):
    result = intake_file(
        landing.put("contact_events", set_cell(0, "debtor_ref", "王小明")), settings
    )
    assert set(result.report.rule_counts) == {"V012", "V018"}
    for finding in result.report.findings:
        shown = json.dumps([finding["value"], finding["key"]], ensure_ascii=False)
        assert not any(char in shown for char in "王小明"), finding
    assert "王小明" not in result.report_path.with_suffix(".csv").read_text(encoding="utf-8-sig")


def test_licence_numbers_do_not_trip_the_mobile_rule(settings, landing):
    # an 11-digit run in a licence number is the issuer's numbering, not a phone number
    edit = set_cell(2, "licence_no", f"L-{MOBILE}")
    result = landing.intake("institution_registry", edit, submitter=settings.regulator_uscc)
    assert result.status == lifecycle.ACCEPTED, result.report.rule_counts
    assert "V015" not in result.report.rule_counts


# --- file-level (syntactic) defects -------------------------------------------------------


def _header_only(rows, fieldnames):
    return [], fieldnames


def _drop_column(rows, fieldnames):
    return rows, [f for f in fieldnames if f != "sold_balance"]


def _extra_column(rows, fieldnames):
    for row in rows:
        row["note"] = "x"
    return rows, [*fieldnames, "note"]


FILE_CASES = [
    ("bad name", dict(name="portfolio-october.csv"), None, "S001", "file_name"),
    ("unknown type", dict(name="loan_book__{uscc}__2026-10.csv"), None, "S002", "file_name"),
    ("name not the folder's", dict(folder=UNREGISTERED_USCC), None, "S003", "file_name"),
    ("header only", {}, _header_only, "S004", "file"),
    ("missing column", {}, _drop_column, "S005", "sold_balance"),
    ("extra column", {}, _extra_column, "S006", "note"),
    ("month 13", dict(name="lender_portfolio__{uscc}__2026-13.csv"), None, "S009", "file_name"),
    ("future period", dict(name="lender_portfolio__{uscc}__2099-01.csv"), None, "V008", "period"),
]


@pytest.mark.parametrize(
    "options, edit, rule, field", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_file_defect_is_rejected(options, edit, rule, field, settings, landing):
    uscc = landing.source("lender_portfolio").parent.name
    options = {k: v.format(uscc=uscc) for k, v in options.items()}
    result = intake_file(landing.put("lender_portfolio", edit, **options), settings)
    assert result.status == lifecycle.REJECTED
    assert [(f["rule_id"], f["field"]) for f in result.report.findings] == [(rule, field)]
    assert not list(settings.raw_dir.glob("lender_portfolio/**/*.parquet"))
    assert len(list(settings.quarantine_dir.iterdir())) == 1


def test_file_over_the_size_limit_is_rejected(settings, landing):
    small = dataclasses.replace(settings, max_file_bytes=1000)
    path = landing.put("lender_portfolio")
    size = path.stat().st_size
    result = intake_file(path, small)
    assert [(f["rule_id"], f["value"]) for f in result.report.findings] == [("S008", str(size))]
    assert not list(settings.raw_dir.glob("lender_portfolio/**/*.parquet"))


# --- who may submit what (S010, V013, V019) -----------------------------------------------


def _rename_submitter(column: str, uscc: str):
    def edit(rows, fieldnames):
        for row in rows:
            row[column] = uscc
        return rows, fieldnames

    return edit


def _assert_refused(result, settings, uscc, submission_type):
    assert result.status == lifecycle.REJECTED
    assert [f["rule_id"] for f in result.report.findings] == ["S010"]
    message = result.report.findings[0]["value"]
    assert uscc in message and submission_type in message
    assert any("\u4e00" <= char <= "\u9fff" for char in message)  # bilingual
    assert not list(settings.raw_dir.glob(f"{submission_type}/*/submitter={uscc}/*.parquet"))


def test_unknown_institution_may_not_submit(settings, landing):
    name = f"lender_portfolio__{UNREGISTERED_USCC}__{PERIOD}.csv"
    edit = _rename_submitter("lender_uscc", UNREGISTERED_USCC)
    result = landing.intake("lender_portfolio", edit, name=name, folder=UNREGISTERED_USCC)
    _assert_refused(result, settings, UNREGISTERED_USCC, "lender_portfolio")


def test_lender_may_not_submit_an_agency_type(settings, landing):
    lender = landing.source("lender_portfolio").parent.name
    name = f"contact_events__{lender}__{PERIOD}.csv"
    edit = _rename_submitter("agency_uscc", lender)
    result = landing.intake("contact_events", edit, name=name, folder=lender)
    _assert_refused(result, settings, lender, "contact_events")


def test_only_the_regulator_submits_the_registry(settings, landing):
    lender = landing.source("lender_portfolio").parent.name
    name = f"institution_registry__{lender}__{PERIOD}.csv"
    result = landing.intake(
        "institution_registry", submitter=settings.regulator_uscc, name=name, folder=lender
    )
    _assert_refused(result, settings, lender, "institution_registry")


def _set_registry(agency: str, **values):
    def change(rows, fieldnames):
        for row in rows:
            if row["uscc"] == agency:
                row.update(values)
        return rows, fieldnames

    return change


def test_institution_revoked_before_the_period_may_not_submit(settings, landing):
    agency = landing.source("contact_events").parent.name
    revoke = _set_registry(agency, status="revoked", valid_to="2026-09-30")
    registry = landing.intake("institution_registry", revoke, submitter=settings.regulator_uscc)
    assert registry.status == lifecycle.ACCEPTED and registry.submission_id.endswith("-002")
    _assert_refused(landing.intake("contact_events"), settings, agency, "contact_events")


@pytest.mark.parametrize(("status", "valid_to"), [("suspended", ""), ("revoked", f"{PERIOD}-15")])
def test_suspended_or_revoked_within_the_period_still_reports(status, valid_to, settings, landing):
    """A suspended institution keeps its book; a licence revoked mid-month still covers the
    month: both must report it, and it is not refused."""
    agency = landing.source("contact_events").parent.name
    change = _set_registry(agency, status=status, valid_to=valid_to)
    registry = landing.intake("institution_registry", change, submitter=settings.regulator_uscc)
    assert registry.status == lifecycle.ACCEPTED
    result = landing.intake("contact_events")
    assert "S010" not in result.report.rule_counts, result.report.findings
    assert result.status != lifecycle.REJECTED


def test_a_copy_of_another_institutions_accepted_file_is_not_answered_with_its_submission(
    settings, landing
):
    """A byte-identical resubmission is a no-op only for the submitter's own file: the same
    bytes under another institution's name in a third folder get S003, never the owner's
    submission id, status or report."""
    owner = landing.intake("agency_caseload")
    assert owner.status == lifecycle.ACCEPTED
    copied = landing.intake("agency_caseload", folder=UNREGISTERED_USCC)
    assert not copied.duplicate_of_previous
    assert copied.submission_id != owner.submission_id
    assert copied.status == lifecycle.REJECTED
    assert "S003" in copied.report.rule_counts
    assert current_ids(settings) >= {owner.submission_id}


def test_rows_naming_another_institution_as_submitter(settings, landing):
    rows, _ = read_rows(landing.source("agency_caseload"))
    other_agency = next(
        p.parent.name
        for p in landing.month.files
        if p.name.startswith("contact_events__") and p.parent.name != rows[0]["agency_uscc"]
    )
    result = landing.intake("contact_events", set_cell(4, "agency_uscc", other_agency))
    assert result.status == lifecycle.REJECTED
    found = [f for f in result.report.findings if f["rule_id"] == "V013"]
    assert [(f["row"], f["field"], f["value"]) for f in found] == [(6, "agency_uscc", other_agency)]
    assert not list(settings.raw_dir.glob("contact_events/**/*.parquet"))


def test_lender_may_not_file_hotline_complaints(settings, landing):
    lender = landing.source("lender_portfolio").parent.name
    result = landing.intake("complaints", set_cell(0, "source", "hotline"), submitter=lender)
    assert result.status == lifecycle.REJECTED
    assert set(result.report.rule_counts) == {"V019"}
    finding = result.report.findings[0]
    assert (finding["row"], finding["field"]) == (2, "source")
    assert finding["value"].startswith("hotline")
    assert not list(settings.raw_dir.glob("complaints/**/*.parquet"))


def test_before_any_registry_files_are_taken_and_flagged(tmp_path, month):
    fresh = Settings.from_env().with_data_dir(tmp_path / "fresh")
    result = Landing(fresh, month).intake("lender_portfolio")
    assert result.status == lifecycle.ACCEPTED
    assert result.report.rule_counts == {"M003": 1}
    # but even then nobody but the regulator submits the registry
    lender = result.report.submitter_uscc
    refused = Landing(fresh, month).intake(
        "institution_registry",
        submitter=fresh.regulator_uscc,
        name=f"institution_registry__{lender}__{PERIOD}.csv",
        folder=lender,
    )
    assert [f["rule_id"] for f in refused.report.findings] == ["S010"]


def test_late_submission_is_accepted_and_flagged(settings, landing):
    late = ON_TIME + 30 * 86400  # 5 December
    result = landing.intake("contact_events", received=late)
    assert result.status == lifecycle.ACCEPTED
    assert result.report.rule_counts == {"M002": 1}
    assert "2026-11-15T23:59:59+08:00" in result.report.findings[0]["value"]
    assert result.submission_id in current_ids(settings)
