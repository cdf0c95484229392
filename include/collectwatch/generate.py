"""Synthetic monthly submissions: all six types, realistic and deterministic.

Everything is generated as set-based SQL in an in-memory DuckDB: random draws come from
``hash(seed, entity, salt)``, so the same seed gives the same bytes whatever the thread
count, and a national month (tens of millions of contact events) needs no Python loop.

Known facts are planted on top of the baseline (an agency calling out of hours in one
prefecture, a debtor called 20 times in an hour, a prefecture served by one lender, an
agency with a complaint spike, a lender whose outsourcing share jumps in even months) and
described in ``planted-<period>.json``, with the institutions nothing was planted on, so
tests can assert the pipeline finds the facts and flags no one else.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from collectwatch.config import CHINA_TZ, Settings
from collectwatch.contracts import SUBMISSION_TYPES, file_name, shift_period
from collectwatch.uscc import sql_check_character


@dataclass(frozen=True)
class Scale:
    lenders: int
    agencies: int
    prefectures: int
    # Average prefectures a lender operates in.
    lender_footprint: int
    # Total accounts of a lender in one prefecture (median).
    accounts_per_region: int
    # Contact events per outsourced case in the month.
    events_per_case: float
    # Outsourced cases per complaint (before the planted spike and the hotline's copies).
    cases_per_complaint: float = 400.0


SCALES = {
    "small": Scale(
        lenders=12,
        agencies=10,
        prefectures=24,
        lender_footprint=8,
        accounts_per_region=20_000,
        events_per_case=0.25,
    ),
    "national": Scale(
        lenders=3000,
        agencies=2500,
        prefectures=340,
        lender_footprint=40,
        accounts_per_region=6_000,
        # ~14M outsourced cases: ~56M contact events and ~500k complaints a month.
        events_per_case=4.0,
        cases_per_complaint=37.0,
    ),
}

# How overdue debt ages across buckets, what share is outsourced, recovered in the month,
# written off and sold: recovery falls and outsourcing rises with days past due.
BUCKET_PROFILE_SQL = """
select * from (values
    (0, 'M0',    0.000, 0.00, 0.000, 0.000, 0.000, 0.00),
    (1, 'M1',    0.380, 0.10, 0.350, 0.000, 0.000, 0.15),
    (2, 'M2',    0.180, 0.30, 0.200, 0.000, 0.000, 0.20),
    (3, 'M3',    0.120, 0.45, 0.120, 0.000, 0.000, 0.25),
    (4, 'M4_6',  0.140, 0.55, 0.060, 0.005, 0.010, 0.30),
    (5, 'M7_12', 0.100, 0.60, 0.030, 0.020, 0.040, 0.33),
    (6, 'M12P',  0.080, 0.50, 0.010, 0.050, 0.080, 0.38)
) as profile(
    bucket_no, bucket, overdue_weight, outsourced_share, recovery_rate,
    write_off_rate, sale_rate, commission_rate
)
"""

LENDER_KINDS = (
    "bank_card_centre",
    "consumer_finance",
    "online_small_loan",
    "small_loan",
    "lending_platform",
)
AGENCY_KINDS = ("collection_agency", "collection_agency", "law_firm", "amc")

# Share of each overdue bucket the planted lender outsources on top of its usual share in
# the months it jumps (capped at the whole bucket).
OUTSOURCING_JUMP = 0.4


# Submission file formats the generator writes, with their DuckDB COPY options.
FILE_FORMATS = {
    "csv": "(format csv, header true)",
    "parquet": "(format parquet, compression zstd)",
}


@dataclass(frozen=True)
class GeneratedMonth:
    period: str
    out_dir: Path
    files: list[Path]
    planted_path: Path
    row_counts: dict[str, int]
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


class _Generator:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        period: str,
        scale: Scale,
        seed: int,
        due_day: int = 15,
        file_format: str = "csv",
    ):
        self.con = con
        self.file_format = file_format
        self.due_day = due_day
        self.period = period
        self.scale = scale
        self.seed = seed

    def run(self, settings: Settings) -> None:
        con = self.con
        # u(a, b, c): a deterministic uniform draw in [0, 1) for entity (a, b) and purpose c.
        con.execute(
            f"create macro u(a, b, c) as "
            f"(hash({self.seed}, a::varchar, b::varchar, c) % 1000003) / 1000003.0"
        )
        con.execute(f"create macro month_start() as timestamptz '{self.period}-01 00:00:00+08'")
        con.execute(
            "create macro days_in_month() as "
            "datediff('day', month_start(), month_start() + interval 1 month)"
        )
        self._regions(settings.region_seed)
        self._institutions(settings.regulator_uscc)
        self._plant_outsourcing_jump()
        self._portfolio()
        self._plant_small_province()
        self._assignments()
        self._caseload()
        self._contact_events()
        self._complaints(settings.regulator_uscc)
        self._registry()
        self._plant_registry_statuses()

    def _regions(self, seed_path: Path) -> None:
        self.con.execute(
            f"""
            create table regions as
            select * from read_csv('{seed_path}', all_varchar = true, header = true);
            create table prefectures as
            select
                region_code as prefecture_code,
                province_code,
                row_number() over (order by u(region_code, 'pref', 'pick')) as pick
            from regions where level = 'prefecture'
            qualify pick <= {self.scale.prefectures};
            -- A county inside each prefecture (or the prefecture itself when it has none):
            -- submitters report at whichever level they hold, intake rolls counties up.
            create table prefecture_county as
            select
                p.prefecture_code,
                coalesce(min_by(c.region_code, u(c.region_code, 'county', 'pick')),
                         p.prefecture_code) as county_code
            from prefectures as p
            left join regions as c
                on c.prefecture_code = p.prefecture_code and c.level = 'county'
            group by p.prefecture_code;
            """
        )

    def _institutions(self, regulator_uscc: str) -> None:
        body = "substr('0123456789ABCDEFGHJKLMNPQRTUWXY', (hash({seed}, role, i, {k}) % 31)::int + 1, 1)"
        random_body = " || ".join(body.format(seed=self.seed, k=k) for k in range(7))
        self.con.execute(
            f"""
            create table institutions as
            with numbered as (
                select 'lender' as role, i, {_sql_list(LENDER_KINDS)} as kinds
                from range({self.scale.lenders}) as t(i)
                union all
                select 'agency' as role, i, {_sql_list(AGENCY_KINDS)} as kinds
                from range({self.scale.agencies}) as t(i)
            ),
            placed as (
                select
                    n.*,
                    p.prefecture_code as hq_prefecture,
                    -- 91 = enterprise; region of registration; MA = new-style body.
                    '91' || p.prefecture_code || 'MA' || {random_body} as first17
                from numbered as n
                join prefectures as p
                    on p.pick = 1 + (hash({self.seed}, n.role, n.i, 'hq')
                                     % {self.scale.prefectures})
            )
            select
                role,
                i,
                first17 || {sql_check_character("first17")} as uscc,
                hq_prefecture,
                kinds[1 + (hash({self.seed}, role, i, 'kind') % len(kinds))::int] as kind
            from placed
            where first17 || {sql_check_character("first17")} <> '{regulator_uscc}'
            """
        )

    @property
    def jumps_this_month(self) -> bool:
        """The planted lender outsources much more in even months than in odd ones, so a
        month after an odd base month (e.g. 2026-09 -> 2026-10) shows the jump."""
        return int(self.period[5:7]) % 2 == 0

    def _plant_outsourcing_jump(self) -> None:
        # Plant 4: one lender (chosen by the seed alone, so the same in every month) hands
        # 40 points more of every overdue bucket to its agencies in even months. Every other
        # draw is the same from month to month, so no other lender's share moves.
        self.con.execute(
            f"""
            create table outsourcing_jump as
            select arg_min(uscc, u(uscc, 'outsourcing', 'jump')) as lender_uscc,
                   {OUTSOURCING_JUMP} as added_fraction
            from institutions
            where role = 'lender' and {str(self.jumps_this_month).lower()}
            having count(*) > 0
            """
        )

    def _portfolio(self) -> None:
        footprint = self.scale.lender_footprint / self.scale.prefectures
        self.con.execute(
            f"""
            create table bucket_profile as {BUCKET_PROFILE_SQL};
            create table lender_regions as
            select l.uscc as lender_uscc, l.kind, p.prefecture_code, pc.county_code,
                   -- half the rows are reported at county level, half at prefecture level
                   case when u(l.uscc, p.prefecture_code, 'county') < 0.5
                        then pc.county_code else p.prefecture_code end as region_code
            from institutions as l
            cross join prefectures as p
            join prefecture_county as pc using (prefecture_code)
            where l.role = 'lender'
              and (p.prefecture_code = l.hq_prefecture
                   or u(l.uscc, p.prefecture_code, 'serves') < {footprint});
            create table lender_portfolio as
            with sized as (
                select r.*,
                       ({self.scale.accounts_per_region}
                        * exp(1.2 * (u(lender_uscc, region_code, 'size') - 0.5) * 2))::bigint
                           as total_accounts,
                       case when kind in ('online_small_loan', 'lending_platform')
                            then 0.05 + 0.05 * u(lender_uscc, region_code, 'overdue')
                            else 0.02 + 0.02 * u(lender_uscc, region_code, 'overdue')
                       end as overdue_share,
                       8000 + 22000 * u(lender_uscc, region_code, 'avg_balance')
                           as average_balance
                from lender_regions as r
            ),
            by_bucket as (
                select s.*, b.*,
                       case when b.bucket = 'M0'
                            then round(s.total_accounts * (1 - s.overdue_share))
                            else round(s.total_accounts * s.overdue_share * b.overdue_weight
                                       * (0.8 + 0.4 * u(s.lender_uscc, s.region_code || b.bucket, 'ageing')))
                       end::bigint as accounts,
                       least(1.0, b.outsourced_share
                             * (0.7 + 0.6 * u(s.lender_uscc, s.region_code || b.bucket, 'outsourcing'))
                             + coalesce(j.added_fraction, 0) * (b.bucket <> 'M0')::int)
                           as outsourced_fraction
                from sized as s cross join bucket_profile as b
                left join outsourcing_jump as j using (lender_uscc)
            ),
            measured as (
                select *,
                       round(accounts * average_balance
                             * (0.9 + 0.2 * u(lender_uscc, region_code || bucket, 'balance')), 2)
                           as balance_amount,
                       round(accounts * outsourced_fraction)::bigint as outsourced_accounts
                from by_bucket
            )
            select
                '{self.period}' as period,
                lender_uscc,
                region_code,
                bucket,
                accounts,
                balance_amount::decimal(18, 2) as balance,
                outsourced_accounts as accounts_outsourced,
                round(balance_amount * outsourced_accounts / greatest(accounts, 1), 2)
                    ::decimal(18, 2) as balance_outsourced,
                round((balance_amount - balance_amount * outsourced_accounts
                       / greatest(accounts, 1)) * recovery_rate
                      * (0.8 + 0.4 * u(lender_uscc, region_code || bucket, 'rec_in')), 2)
                    ::decimal(18, 2) as recovered_inhouse,
                round(balance_amount * outsourced_accounts / greatest(accounts, 1)
                      * recovery_rate * 0.8
                      * (0.8 + 0.4 * u(lender_uscc, region_code || bucket, 'rec_out')), 2)
                    ::decimal(18, 2) as recovered_outsourced,
                round(balance_amount * write_off_rate, 2)::decimal(18, 2) as written_off,
                round(balance_amount * sale_rate, 2)::decimal(18, 2) as sold_balance,
                case when bucket_no >= 4
                     then round(accounts * 0.05 * u(lender_uscc, region_code || bucket, 'court'))
                     else 0 end::bigint as litigated_accounts
            from measured
            """
        )

    def _assignments(self) -> None:
        # Each lender keeps a panel of 2-4 agencies; every outsourced bucket is split
        # across its panel so that the assignments add up to the outsourced balance.
        # Plant: in the small province (_plant_small_province) the lender outsources to one
        # agency of its panel only, so the public conduct cell there has one contributor.
        self.con.execute(
            f"""
            create table lender_panel as
            select l.uscc as lender_uscc, a.uscc as agency_uscc
            from institutions as l
            cross join institutions as a
            where l.role = 'lender' and a.role = 'agency'
            qualify row_number() over (partition by l.uscc order by u(l.uscc, a.uscc, 'panel'))
                    <= 2 + (hash({self.seed}, l.uscc, 'panel_size') % 3);
            create table planted_small_cell_agency as
            select s.prefecture_code, min(lp.agency_uscc) as agency_uscc
            from planted_small_cell as s
            join lender_panel as lp using (lender_uscc)
            group by all;
            create table agency_assignment as
            with weighted as (
                select p.*, lp.agency_uscc,
                       0.2 + u(p.lender_uscc, lp.agency_uscc || p.region_code || p.bucket, 'w')
                           as weight,
                       b.commission_rate as base_commission
                from lender_portfolio as p
                join bucket_profile as b using (bucket)
                join lender_panel as lp using (lender_uscc)
                left join planted_small_cell_agency as small
                    on p.region_code = small.prefecture_code
                where p.accounts_outsourced > 0
                  and (small.agency_uscc is null or lp.agency_uscc = small.agency_uscc)
            ),
            shared as (
                select *,
                       weight / sum(weight) over lender_row as share,
                       row_number() over (lender_row order by agency_uscc desc) as is_last
                from weighted
                window lender_row as (partition by lender_uscc, region_code, bucket)
            ),
            split as (
                select *,
                       floor(accounts_outsourced * share)::bigint as cases_part,
                       round(balance_outsourced * share, 2)::decimal(18, 2) as balance_part,
                       round(recovered_outsourced * share, 2)::decimal(18, 2) as recovered_part
                from shared
            ),
            -- the last agency takes the rounding remainder so the parts add up exactly
            balanced as (
                select *,
                       case when is_last = 1
                            then accounts_outsourced - sum(cases_part) over lender_row + cases_part
                            else cases_part end as cases_assigned,
                       case when is_last = 1
                            then balance_outsourced - sum(balance_part) over lender_row
                                 + balance_part
                            else balance_part end as balance_assigned,
                       case when is_last = 1
                            then recovered_outsourced - sum(recovered_part) over lender_row
                                 + recovered_part
                            else recovered_part end as amount_recovered,
                       round(base_commission
                             * (0.8 + 0.4 * u(agency_uscc, lender_uscc || bucket, 'fee')), 4)
                           as commission_rate
                from split
                window lender_row as (partition by lender_uscc, region_code, bucket)
            )
            select
                period, lender_uscc, agency_uscc, region_code, bucket,
                cases_assigned::bigint as cases_assigned,
                balance_assigned::decimal(18, 2) as balance_assigned,
                amount_recovered::decimal(18, 2) as amount_recovered,
                round(amount_recovered * commission_rate, 2)::decimal(18, 2) as commission_paid,
                commission_rate
            from balanced
            """
        )

    def _caseload(self) -> None:
        # Agencies report what they received; a few disagree slightly with the lender
        # (the reconciliation the regulator watches).
        self.con.execute(
            """
            create table agency_caseload as
            select
                period, agency_uscc, lender_uscc, region_code,
                sum(cases_assigned)::bigint as cases_received,
                round(sum(balance_assigned)
                      * case when u(agency_uscc, lender_uscc || region_code, 'gap') < 0.05
                             then 0.9 else 1 end, 2)::decimal(18, 2) as balance_received,
                sum(amount_recovered)::decimal(18, 2) as amount_recovered,
                sum(commission_paid)::decimal(18, 2) as commission_received,
                greatest(1, ceil(sum(cases_assigned) / 150.0))::bigint as collectors
            from agency_assignment
            group by period, agency_uscc, lender_uscc, region_code
            """
        )

    def _contact_events(self) -> None:
        # Views, not tables: a national month is ~56M events, too big to hold in memory.
        # Each agency's file is written by its own query (filtered on agency_uscc, which
        # DuckDB pushes through the window partitioned by it), so nothing larger than one
        # agency's month is ever materialised.
        scale = self.scale
        self._plant_conduct()
        self.con.execute(
            f"""
            create view contact_events_base as
            with slots as (
                -- unnest in the select list, not a lateral range(): a lateral join is
                -- decorrelated over every caseload row, before the agency filter applies
                select c.*,
                       unnest(range(greatest(1, (c.cases_received * {scale.events_per_case})
                                                ::bigint))) as event_no
                from agency_caseload as c
                where c.cases_received > 0
            ),
            work as (
                select *,
                       (hash({self.seed}, agency_uscc, lender_uscc, region_code, event_no, 'case')
                        % greatest(cases_received, 1)) as case_no
                from slots
            ),
            drawn as (
                select *,
                       agency_uscc || lender_uscc || region_code || event_no as event_key,
                       u(agency_uscc, lender_uscc || region_code || event_no, 'channel') as r_channel,
                       u(agency_uscc, lender_uscc || region_code || event_no, 'target') as r_target,
                       u(agency_uscc, lender_uscc || region_code || event_no, 'hour') as r_hour
                from work
            )
            select
                period,
                agency_uscc,
                lender_uscc,
                region_code,
                sha256('case:' || lender_uscc || ':' || region_code || ':' || case_no) as case_ref,
                sha256('debtor:' || lender_uscc || ':' || region_code || ':' || case_no)
                    as debtor_ref,
                month_start()
                    + to_days(floor(u(event_key, '', 'day') * days_in_month())::int)
                    -- 99% of contacts within 08:00-21:00, the rest at night
                    + case when r_hour < 0.99
                           then to_seconds((8 * 3600 + (r_hour / 0.99) * 13 * 3600)::bigint)
                           else to_seconds((21 * 3600 + ((r_hour - 0.99) / 0.01) * 11 * 3600)::bigint
                                           % 86400) end as contact_at,
                case when r_channel < 0.45 then 'call'
                     when r_channel < 0.75 then 'sms'
                     when r_channel < 0.85 then 'ai_voice'
                     when r_channel < 0.90 then 'letter'
                     when r_channel < 0.94 then 'visit'
                     when r_channel < 0.999 then 'app_push'
                     else 'postcard' end as channel,
                case when r_target < 0.90 then 'debtor'
                     when r_target < 0.93 then 'guarantor'
                     when r_target < 0.97 then 'emergency_contact'
                     when r_target < 0.99 then 'family'
                     else 'third_party' end as target,
                u(event_key, '', 'number') as r_number,
                u(event_key, '', 'outcome') as r_outcome,
                u(event_key, '', 'location') as r_location,
                u(event_key, '', 'duration') as r_duration,
                event_no
            from drawn
            union all
            select * from planted_contacts
            """
        )
        self.con.execute(
            """
            create view contact_events as
            select
                period,
                agency_uscc,
                'E' || lpad((row_number() over (partition by agency_uscc
                              order by contact_at, case_ref, event_no, channel))::varchar, 9, '0')
                    as event_id,
                lender_uscc,
                case_ref,
                debtor_ref,
                strftime(contact_at at time zone 'Asia/Shanghai', '%Y-%m-%dT%H:%M:%S') || '+08:00'
                    as contact_at,
                channel,
                target,
                case when channel not in ('call', 'sms', 'ai_voice') then 'none'
                     when r_number < 0.97 then 'registered' else 'virtual' end as number_type,
                region_code,
                case when channel in ('call', 'ai_voice') and r_outcome >= 0.3
                     then (10 + r_duration * 290)::bigint end as duration_s,
                case when r_outcome < 0.3 then 'no_answer'
                     when r_outcome < 0.6 then 'contacted'
                     when r_outcome < 0.75 then 'promise_to_pay'
                     when r_outcome < 0.85 then 'paid'
                     when r_outcome < 0.97 then 'refused'
                     else 'wrong_party' end as outcome,
                case when channel <> 'visit' then 'none'
                     when r_location < 0.6 then 'home'
                     when r_location < 0.9 then 'workplace'
                     when r_location < 0.995 then 'other'
                     else 'campus' end as location_type
            from contact_events_base
            """
        )

    def _plant_conduct(self) -> None:
        # Plant 1: one agency calls out of hours a lot in one prefecture (300 calls at night).
        # Plant 2: one debtor of another agency is called 20 times within one hour.
        self.con.execute(
            f"""
            create table planted_agencies as
            select agency_uscc, region_code, lender_uscc,
                   row_number() over (order by u(agency_uscc, region_code, 'plant')) as plant_no
            from agency_caseload
            where cases_received > 0
            qualify plant_no <= 2;
            create table planted_contacts (
                period varchar, agency_uscc varchar, lender_uscc varchar, region_code varchar,
                case_ref varchar, debtor_ref varchar, contact_at timestamptz, channel varchar,
                target varchar, r_number double, r_outcome double, r_location double,
                r_duration double, event_no bigint
            );
            insert into planted_contacts
            select
                '{self.period}', p.agency_uscc, p.lender_uscc, p.region_code,
                sha256('case:planted-night:' || n.i % 40),
                sha256('debtor:planted-night:' || n.i % 40),
                month_start() + to_days((n.i % days_in_month())::int)
                    + to_seconds(22 * 3600 + (n.i * 37) % 5400),
                'call', 'debtor', 0.5, 0.5, 0.5, 0.5, 1000000 + n.i
            from planted_agencies as p, range(300) as n(i)
            where p.plant_no = 1;
            insert into planted_contacts
            select
                '{self.period}', p.agency_uscc, p.lender_uscc, p.region_code,
                sha256('case:planted-bombing'), sha256('debtor:planted-bombing'),
                month_start() + interval 9 day + interval 14 hour + to_seconds(n.i * 150),
                'call', 'debtor', 0.5, 0.1, 0.5, 0.5, 2000000 + n.i
            from planted_agencies as p, range(20) as n(i)
            where p.plant_no = 2;
            """
        )

    def _complaints(self, regulator_uscc: str) -> None:
        # One complaint per `cases_per_complaint` outsourced cases; the planted agency gets
        # ten times more. The hotline forwards a third of complaints; its copy carries regulator_ref
        # and the lender reports the same complaint again with that reference.
        self.con.execute(
            f"""
            create table complaint_base as
            with rates as (
                select c.*,
                       case when c.agency_uscc = (select agency_uscc from planted_agencies
                                                  where plant_no = 2)
                            then 10.0 else 1.0 end as spike
                from agency_caseload as c
            )
            select r.period, r.agency_uscc, r.lender_uscc, r.region_code, n.i as complaint_no,
                   r.agency_uscc || r.lender_uscc || r.region_code || n.i as complaint_key
            from rates as r,
                 range((r.cases_received / {self.scale.cases_per_complaint} * r.spike
                        * (0.5 + u(r.agency_uscc, r.lender_uscc || r.region_code, 'cmp')))::bigint)
                     as n(i);
            create table complaints as
            with described as (
                select *,
                       u(complaint_key, '', 'source') as r_source,
                       u(complaint_key, '', 'category') as r_category,
                       u(complaint_key, '', 'received') as r_received,
                       u(complaint_key, '', 'resolved') as r_resolved,
                       -- hex cut into short runs: 11 random digits in a row would read as
                       -- a mobile number (V015) about once in a few thousand identifiers
                       'RR' || '{self.period.replace("-", "")}' || '-'
                           || substr(sha256(complaint_key), 1, 10) as hotline_ref
                from complaint_base
            ),
            filed as (
                -- who files: the agency, the lender, or the hotline (then the lender again)
                select *, case when r_source < 0.3 then 'agency'
                               when r_source < 0.67 then 'lender'
                               else 'hotline' end as first_source
                from described
            ),
            copies as (
                select *, first_source as source from filed
                union all
                select *, 'lender' as source from filed where first_source = 'hotline'
            )
            select
                period,
                source,
                case source when 'agency' then agency_uscc
                            when 'lender' then lender_uscc
                            else '{regulator_uscc}' end as submitter_uscc,
                'C' || substr(sha256(source || complaint_key), 1, 6) || '-'
                    || substr(sha256(source || complaint_key), 7, 6) as complaint_id,
                case when first_source = 'hotline' then hotline_ref end as regulator_ref,
                lender_uscc as respondent_lender_uscc,
                agency_uscc as respondent_agency_uscc,
                region_code,
                ['harassment', 'harassment', 'third_party_contact', 'out_of_hours',
                 'threat_violence', 'virtual_number', 'privacy_breach', 'excessive_fees',
                 'impersonation', 'campus', 'other'][1 + (r_category * 11)::int % 11]
                    as category,
                ['phone', 'web', 'letter', 'in_person'][1 + (r_resolved * 4)::int % 4] as channel,
                strftime((month_start() + to_seconds((r_received * 20 * 86400)::bigint))
                         at time zone 'Asia/Shanghai', '%Y-%m-%dT%H:%M:%S') || '+08:00'
                    as received_at,
                case when r_resolved < 0.8 then
                    strftime((month_start() + to_seconds((r_received * 20 * 86400
                              + 3600 + r_resolved * 25 * 86400)::bigint))
                             at time zone 'Asia/Shanghai', '%Y-%m-%dT%H:%M:%S') || '+08:00'
                end as resolved_at,
                case when r_resolved < 0.8 then 'resolved'
                     when r_resolved < 0.9 then 'open'
                     when r_resolved < 0.97 then 'escalated'
                     else 'withdrawn' end as status
            from copies
            """
        )

    def _registry(self) -> None:
        self.con.execute(
            f"""
            create table institution_registry as
            select
                '{self.period}' as period,
                i.uscc,
                r.name_zh || case i.role when 'lender' then '合成信贷' else '合成清收' end
                    || lpad((i.i + 1)::varchar, 4, '0') || '有限公司' as name_zh,
                'Synthetic ' || case i.role when 'lender' then 'Lender ' else 'Recovery ' end
                    || lpad((i.i + 1)::varchar, 4, '0') || ' Co., Ltd.' as name_en,
                i.kind,
                i.role,
                i.hq_prefecture as region_code,
                case i.role when 'lender' then 'L-' else 'A-' end
                    || substr(i.uscc, 3, 6) || '-' || lpad((i.i + 1)::varchar, 5, '0')
                    as licence_no,
                'active' as status,
                date '2019-01-01' + to_days((hash({self.seed}, i.uscc, 'since') % 1500)::int)
                    as valid_from,
                null::date as valid_to
            from institutions as i
            join regions as r on r.region_code = i.hq_prefecture
            """
        )

    def _plant_small_province(self) -> None:
        # Plant: one lender alone in a province no other lender serves (it copies the book
        # of one of its regions there): a public cell under the frequency rule, which must
        # be suppressed together with a complement.
        self.con.execute(
            """
            create table planted_small_cell as
            with lender as (
                select uscc as lender_uscc from institutions where role = 'lender'
                order by u(uscc, '', 'small_cell') limit 1
            )
            select
                r.region_code as prefecture_code,
                r.province_code,
                l.lender_uscc,
                (select min(region_code) from lender_regions as lr
                 where lr.lender_uscc = l.lender_uscc) as source_region
            from regions as r, lender as l
            where r.level = 'prefecture'
              and r.province_code not in (select province_code from prefectures)
            order by u(r.region_code, '', 'small_cell')
            limit 1;
            insert into lender_regions by name
            select s.lender_uscc, l.kind, s.prefecture_code, s.prefecture_code as county_code,
                   s.prefecture_code as region_code
            from planted_small_cell as s
            join institutions as l on l.uscc = s.lender_uscc;
            insert into lender_portfolio by name
            select p.* exclude (region_code), s.prefecture_code as region_code
            from lender_portfolio as p
            join planted_small_cell as s
                on p.lender_uscc = s.lender_uscc and p.region_code = s.source_region;
            """
        )

    def _plant_registry_statuses(self) -> None:
        # Plant: a suspended lender and an agency whose licence was revoked mid-month. They
        # still file their run-off book, but the registry no longer expects them to.
        self.con.execute(
            """
            create table planted_registry as
            select uscc, role,
                   case role when 'lender' then 'suspended' else 'revoked' end as status
            from institutions
            where uscc not in (select lender_uscc from planted_small_cell)
              and uscc not in (select agency_uscc from planted_agencies)
            qualify row_number() over (partition by role order by u(uscc, '', 'status')) = 1;
            update institution_registry as r
            set status = p.status,
                valid_to = case p.status when 'revoked'
                                then (month_start() + interval 14 day)::date end
            from planted_registry as p
            where r.uscc = p.uscc;
            """
        )

    def planted_coverage(self, out_dir: Path, expected_types_seed: Path) -> dict:
        """Plant a missing and a rejected agency_caseload and a late lender_portfolio among
        the active institutions, date every file (its mtime is the receipt time intake
        records), and describe the coverage the registry expects."""
        picks = self.con.execute(
            """
            select role, uscc from institution_registry
            where status = 'active'
              and uscc not in (select agency_uscc from planted_agencies)
              and uscc not in (select lender_uscc from planted_small_cell)
              and (role = 'lender' or uscc in (select agency_uscc from agency_caseload))
            qualify row_number() over (partition by role order by u(uscc, '', 'coverage')) <= 2
            order by role, u(uscc, '', 'coverage')
            """
        ).fetchall()
        agencies = [uscc for role, uscc in picks if role == "agency"]
        lenders = [uscc for role, uscc in picks if role == "lender"]
        missing, rejected, late = agencies[0], agencies[1], lenders[0]
        caseload = SUBMISSION_TYPES["agency_caseload"]
        extension = self.file_format
        (out_dir / missing / file_name("agency_caseload", missing, self.period, extension)).unlink()
        rejected_path = (
            out_dir / rejected / file_name("agency_caseload", rejected, self.period, extension)
        )
        # Negative case counts: a validity edit, so the file is rejected as a whole.
        self.con.execute(
            f"""
            copy (
                select * replace (-cases_received as cases_received)
                from agency_caseload where agency_uscc = '{rejected}'
                order by {", ".join(caseload.key)}
            ) to '{rejected_path}' {FILE_FORMATS[extension]}
            """
        )
        _date_files(out_dir, self.period, late, self.due_day, extension)
        return self._coverage_outcomes(out_dir, expected_types_seed, missing, rejected, late)

    def _coverage_outcomes(self, out_dir, seed, missing, rejected, late) -> dict:
        outcomes = self.con.execute(
            f"""
            with submitted as (
                select
                    regexp_extract(file, '/([a-z_]+)__', 1) as submission_type,
                    regexp_extract(file, '__([0-9A-Z]{{18}})__', 1) as uscc
                from glob('{out_dir}/*/*.{self.file_format}')
            )
            select
                r.uscc,
                t.submission_type,
                case when r.uscc = '{rejected}' and t.submission_type = 'agency_caseload'
                          then 'rejected'
                     when s.uscc is null then 'missing'
                     when r.uscc = '{late}' and t.submission_type = 'lender_portfolio'
                          then 'late'
                     else 'on_time' end as outcome
            from institution_registry as r
            join read_csv('{seed}', all_varchar = true) as t on r.role = t.role
            left join submitted as s
                on s.uscc = r.uscc and s.submission_type = t.submission_type
            where r.status = 'active'
            order by r.uscc, t.submission_type
            """
        ).fetchall()
        counts = {kind: 0 for kind in ("on_time", "late", "missing", "rejected")}
        listed: dict[str, list] = {kind: [] for kind in counts}
        for uscc, submission_type, outcome in outcomes:
            counts[outcome] += 1
            if outcome != "on_time":
                listed[outcome].append({"uscc": uscc, "submission_type": submission_type})
        incomplete = {uscc for uscc, _, outcome in outcomes if outcome in ("missing", "rejected")}
        expected_institutions = len({uscc for uscc, _, _ in outcomes})
        return {
            "expected_institutions": expected_institutions,
            "reporting_institutions": expected_institutions - len(incomplete),
            "expected_submissions": len(outcomes),
            **counts,
            "planted": {"missing": missing, "rejected": rejected, "late": late},
            **{f"{kind}_submissions": listed[kind] for kind in ("late", "missing", "rejected")},
        }

    def planted_disclosure(self) -> dict:
        small = self.con.execute(
            "select province_code, s.prefecture_code, lender_uscc, agency_uscc "
            "from planted_small_cell as s join planted_small_cell_agency using (prefecture_code)"
        ).fetchone()
        statuses = self.con.execute(
            "select uscc, role, status from planted_registry order by role"
        ).fetchall()
        # A month whose prefectures cover every province (national scale: 340 of 370) has
        # no province left for the plant.
        return {
            "small_cell": small
            and {
                "province_code": small[0],
                "prefecture_code": small[1],
                "lender_uscc": small[2],
                "agency_uscc": small[3],
            },
            "registry_statuses": [
                {"uscc": uscc, "role": role, "status": status} for uscc, role, status in statuses
            ],
        }

    def planted(self, regulator_uscc: str) -> dict:
        con = self.con
        night_agency = con.execute(
            "select agency_uscc from planted_agencies where plant_no = 1"
        ).fetchone()[0]
        # A literal agency, so the filter reaches the contact_events view's window partition.
        night = con.execute(
            f"""
            select p.agency_uscc, pc.prefecture_code, count(*) as out_of_hours_contacts
            from planted_agencies as p
            join (select * from contact_events where agency_uscc = '{night_agency}') as e
                using (agency_uscc)
            join prefecture_county as pc
                on e.region_code in (pc.prefecture_code, pc.county_code)
            where p.plant_no = 1
              and pc.prefecture_code = (
                  select prefecture_code from prefecture_county
                  where p.region_code in (prefecture_code, county_code))
              and (substr(e.contact_at, 12, 2)::int < 8 or substr(e.contact_at, 12, 2)::int >= 21)
            group by all
            """
        ).fetchone()
        bombing = con.execute(
            "select agency_uscc, sha256('debtor:planted-bombing') from planted_agencies "
            "where plant_no = 2"
        ).fetchone()
        single_lender = con.execute(
            """
            select prefecture_code, min(lender_uscc)
            from lender_regions group by prefecture_code
            having count(distinct lender_uscc) = 1 order by prefecture_code
            """
        ).fetchall()
        jump = con.execute(
            "select arg_min(uscc, u(uscc, 'outsourcing', 'jump')) from institutions "
            "where role = 'lender'"
        ).fetchone()[0]
        planted_agencies = {night[0], bombing[0]}
        agencies = [
            row[0]
            for row in con.execute(
                "select distinct agency_uscc from agency_caseload order by 1"
            ).fetchall()
        ]
        lenders = [
            row[0]
            for row in con.execute(
                "select distinct lender_uscc from lender_portfolio order by 1"
            ).fetchall()
        ]
        return {
            "period": self.period,
            "outsourcing_share_jump": {
                "lender_uscc": jump,
                "jumps_in_this_period": self.jumps_this_month,
                "base_period": shift_period(self.period, -1),
                "added_outsourced_fraction": OUTSOURCING_JUMP,
            },
            "clean_agencies": [a for a in agencies if a not in planted_agencies],
            "clean_lenders": [lender for lender in lenders if lender != jump],
            "regulator_uscc": regulator_uscc,
            "out_of_hours_agency": {
                "agency_uscc": night[0],
                "prefecture_code": night[1],
                "out_of_hours_contacts": night[2],
            },
            "call_bombing": {
                "agency_uscc": bombing[0],
                "debtor_ref": bombing[1],
                "calls_within_60_minutes": 20,
            },
            "complaint_spike_agency": {"agency_uscc": bombing[0], "factor": 10},
            "single_lender_prefectures": [
                {"prefecture_code": code, "lender_uscc": lender} for code, lender in single_lender
            ],
        }


def _date_files(out_dir: Path, period: str, late_lender: str, due_day: int, extension: str) -> None:
    """Set each file's mtime (intake's receipt time): the 5th of the next month, 10:00
    +08:00, except the late lender's portfolio: two days after the due date."""
    year, month = (int(part) for part in period.split("-"))
    next_month = datetime(year + month // 12, month % 12 + 1, 1, 10, tzinfo=CHINA_TZ)
    on_time = (next_month + timedelta(days=4)).timestamp()
    late = (next_month + timedelta(days=due_day + 1)).timestamp()
    late_file = (
        out_dir / late_lender / file_name("lender_portfolio", late_lender, period, extension)
    )
    for path in out_dir.glob(f"*/*.{extension}"):
        stamp = late if path == late_file else on_time
        os.utime(path, (stamp, stamp))


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path, file_format: str) -> int:
    """Write ``query`` to ``path`` on a cursor of its own; the rows written."""
    cursor = con.cursor()
    try:
        return cursor.execute(f"copy ({query}) to '{path}' {FILE_FORMATS[file_format]}").fetchone()[
            0
        ]
    finally:
        cursor.close()


def _write_submissions(
    con: duckdb.DuckDBPyConnection,
    period: str,
    out_dir: Path,
    regulator_uscc: str,
    file_format: str,
    workers: int,
) -> tuple[list[Path], dict[str, int]]:
    """One file per submitter and type, each written by its own query filtered on the
    submitter (contact events are a view: only one agency's month is computed at a time),
    ``workers`` files at once — one agency's query is too small to use every thread.
    Row counts are what the copies wrote."""
    jobs: list[tuple[str, Path, str]] = []
    for submission_type in SUBMISSION_TYPES.values():
        submitter = submission_type.submitter_column
        columns = ", ".join(submission_type.column_names)
        order = ", ".join(submission_type.key)
        submitters = (
            [regulator_uscc]
            if submitter is None
            else [
                row[0]
                for row in con.execute(
                    f"select distinct {submitter} from {submission_type.name} order by 1"
                ).fetchall()
            ]
        )
        for uscc in submitters:
            folder = out_dir / uscc
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / file_name(submission_type.name, uscc, period, file_format)
            where = "" if submitter is None else f"where {submitter} = '{uscc}'"
            query = f"select {columns} from {submission_type.name} {where} order by {order}"
            jobs.append((submission_type.name, path, query))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        written = list(pool.map(lambda job: _copy(con, job[2], job[1], file_format), jobs))
    row_counts = {name: 0 for name in SUBMISSION_TYPES}
    for (name, _, _), rows in zip(jobs, written, strict=True):
        row_counts[name] += rows
    return [path for _, path, _ in jobs], row_counts


def generate_month(
    settings: Settings,
    period: str,
    out_dir: Path,
    scale: str = "small",
    seed: int = 1,
    file_format: str = "csv",
) -> GeneratedMonth:
    """Write one synthetic month into ``out_dir/<USCC>/<type>__<USCC>__<period>.<csv|parquet>``
    (the landing layout) plus ``out_dir/planted-<period>.json``."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = settings.duckdb()
    generator = _Generator(
        con, period, SCALES[scale], seed, settings.due_day_of_next_month, file_format
    )
    generator.run(settings)
    files, row_counts = _write_submissions(
        con, period, out_dir, settings.regulator_uscc, file_format, settings.duckdb_threads
    )
    coverage = generator.planted_coverage(out_dir, settings.expected_submission_types_seed)
    files = [path for path in files if path.exists()]  # the planted missing file is gone
    planted = generator.planted(settings.regulator_uscc) | {
        "coverage": coverage,
        **generator.planted_disclosure(),
        "scale": asdict(SCALES[scale]),
        "seed": seed,
    }
    planted_path = out_dir / f"planted-{period}.json"
    planted_path.write_text(json.dumps(planted, indent=2, sort_keys=True) + "\n")
    con.close()
    seconds = round(time.perf_counter() - started, 2)
    return GeneratedMonth(period, out_dir, sorted(files), planted_path, row_counts, seconds)
