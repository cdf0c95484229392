"""The synthetic month: deterministic, valid against its own contracts, plausible, and
carrying the planted facts it claims (checked from the files, not from the generator)."""

from __future__ import annotations

import json

import duckdb
import pytest

from collectwatch.config import Settings
from collectwatch.contracts import SUBMISSION_TYPES
from collectwatch.generate import generate_month
from collectwatch.uscc import is_valid

PERIOD = "2026-10"


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    return generate_month(Settings.from_env(), PERIOD, tmp_path_factory.mktemp("gen"), seed=11)


def _csv(month, submission_type: str) -> str:
    return f"read_csv('{month.out_dir}/*/{submission_type}__*.csv', all_varchar = true)"


def test_same_seed_same_bytes(month, tmp_path):
    again = generate_month(Settings.from_env(), PERIOD, tmp_path, seed=11)
    assert [p.relative_to(again.out_dir) for p in again.files] == [
        p.relative_to(month.out_dir) for p in month.files
    ]
    for first, second in zip(month.files, again.files, strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_other_seed_other_data(month, tmp_path):
    other = generate_month(Settings.from_env(), PERIOD, tmp_path, seed=12)
    assert {p.name for p in other.files} != {p.name for p in month.files}


def test_every_type_is_present_with_contract_columns(month):
    for name, contract in SUBMISSION_TYPES.items():
        files = [p for p in month.files if p.name.startswith(name + "__")]
        assert files, name
        header = files[0].read_text().splitlines()[0].split(",")
        assert tuple(header) == contract.column_names


def test_institutions_have_valid_uscc(month):
    codes = {p.parent.name for p in month.files}
    assert codes and all(is_valid(code) for code in codes)


def test_distributions_are_plausible(month):
    con = duckdb.connect()
    share, overdue = con.execute(
        f"""
        select sum(balance_outsourced::decimal(18,2)) filter (where bucket <> 'M0')
                 / sum(balance::decimal(18,2)) filter (where bucket <> 'M0'),
               sum(accounts::bigint) filter (where bucket <> 'M0') / sum(accounts::bigint)
        from {_csv(month, "lender_portfolio")}
        """
    ).fetchone()
    assert 0.2 < share < 0.45
    assert 0.02 < overdue < 0.10
    commission = con.execute(
        f"select avg(commission_rate::double) from {_csv(month, 'agency_assignment')}"
    ).fetchone()[0]
    assert 0.15 < commission < 0.35
    recovery = con.execute(
        f"""
        select bucket,
               sum(recovered_inhouse::double)
               / sum(balance::double - balance_outsourced::double)
        from {_csv(month, "lender_portfolio")} where bucket <> 'M0' group by bucket
        """
    ).fetchall()
    rate = dict(recovery)
    assert rate["M1"] > rate["M3"] > rate["M7_12"] > rate["M12P"]


def test_planted_facts_are_in_the_files(month):
    planted = json.loads(month.planted_path.read_text())
    con = duckdb.connect()
    seed = Settings.from_env().region_seed
    con.execute(f"create table regions as select * from read_csv('{seed}', all_varchar = true)")
    night = planted["out_of_hours_agency"]
    counted = con.execute(
        f"""
        select count(*) from {_csv(month, "contact_events")} as e
        join regions as r on r.region_code = e.region_code
        where e.agency_uscc = ? and coalesce(r.prefecture_code, r.region_code) = ?
          and (substr(contact_at, 12, 2)::int < 8 or substr(contact_at, 12, 2)::int >= 21)
        """,
        [night["agency_uscc"], night["prefecture_code"]],
    ).fetchone()[0]
    assert counted == night["out_of_hours_contacts"] >= 300
    bombing = planted["call_bombing"]
    calls = con.execute(
        f"""
        select count(*) from {_csv(month, "contact_events")}
        where agency_uscc = ? and debtor_ref = ? and channel = 'call'
        """,
        [bombing["agency_uscc"], bombing["debtor_ref"]],
    ).fetchone()[0]
    assert calls >= 20
    for cell in planted["single_lender_prefectures"]:
        lenders = con.execute(
            f"""
            select count(distinct lender_uscc) from {_csv(month, "lender_portfolio")} as p
            join regions as r on r.region_code = p.region_code
            where coalesce(r.prefecture_code, r.region_code) = ?
            """,
            [cell["prefecture_code"]],
        ).fetchone()[0]
        assert lenders == 1


def _outsourcing_shares(month) -> dict[str, float]:
    rows = (
        duckdb.connect()
        .execute(
            f"""
        select lender_uscc,
               sum(balance_outsourced::decimal(18,2)) / sum(balance::decimal(18,2))
        from {_csv(month, "lender_portfolio")} where bucket <> 'M0' group by 1
        """
        )
        .fetchall()
    )
    return {lender: float(share) for lender, share in rows}


def test_planted_outsourcing_jump_shows_after_the_base_month(month, tmp_path):
    base = generate_month(Settings.from_env(), "2026-09", tmp_path, seed=11)
    planted = json.loads(month.planted_path.read_text())
    jump = planted["outsourcing_share_jump"]
    assert jump["jumps_in_this_period"] and jump["base_period"] == "2026-09"
    assert not json.loads(base.planted_path.read_text())["outsourcing_share_jump"][
        "jumps_in_this_period"
    ]
    before, after = _outsourcing_shares(base), _outsourcing_shares(month)
    changes = {lender: after[lender] - before[lender] for lender in after}
    assert changes.pop(jump["lender_uscc"]) > 0.3
    assert max(abs(change) for change in changes.values()) < 1e-9
    # Every other lender is listed as clean, and every agency but the two planted ones.
    assert sorted(planted["clean_lenders"]) == sorted(changes)
    planted_agencies = {
        planted["out_of_hours_agency"]["agency_uscc"],
        planted["call_bombing"]["agency_uscc"],
    }
    agencies = (
        duckdb.connect()
        .execute(f"select distinct agency_uscc from {_csv(month, 'agency_caseload')}")
        .fetchall()
    )
    # The planted missing caseload's agency is clean for conduct, but has no caseload file.
    missing = planted["coverage"]["planted"]["missing"]
    assert sorted(planted["clean_agencies"]) == sorted(
        ({agency for (agency,) in agencies} | {missing}) - planted_agencies
    )


def test_identifiers_never_hold_a_digit_run_that_reads_as_personal_data(month):
    # Hex identifiers with 11+ digits in a row look like a mobile or ID number (V015): at
    # national scale (500k complaints) some hundreds did, and their files were rejected.
    con = duckdb.connect()
    longest = con.execute(
        f"""
        select max(len(run)) from (
            select unnest(regexp_extract_all(complaint_id || ' ' || coalesce(regulator_ref, ''),
                                             '[0-9]+')) as run
            from {_csv(month, "complaints")}
            union all
            select unnest(regexp_extract_all(event_id, '[0-9]+'))
            from {_csv(month, "contact_events")}
        )
        """
    ).fetchone()[0]
    assert 6 <= longest < 11  # the period and zero-padded event numbers; never 11


def test_parquet_submissions_carry_the_same_rows_as_csv(month, tmp_path):
    parquet = generate_month(Settings.from_env(), PERIOD, tmp_path, seed=11, file_format="parquet")
    assert [p.name for p in parquet.files] == [
        p.name.removesuffix(".csv") + ".parquet" for p in month.files
    ]
    assert parquet.row_counts == month.row_counts
    con = duckdb.connect()
    for csv_path, parquet_path in zip(month.files, parquet.files, strict=True):
        different = con.execute(
            f"""
            select count(*) from (
                (select * from read_csv('{csv_path}', all_varchar = true)
                 except all
                 select * from read_parquet('{parquet_path}'))
            )
            """
        ).fetchone()[0]
        assert different == 0, csv_path.name
