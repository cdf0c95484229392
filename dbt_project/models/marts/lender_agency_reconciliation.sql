{{ config(contract={'enforced': true}) }}

-- What each lender reported assigning to an agency (agency_assignment) against what the
-- agency reported receiving from that lender (agency_caseload), per region and level.
-- Gaps are agency minus lender; a pair is flagged when a gap exceeds the threshold share of
-- the lender's figure, is non-zero against a lender figure of zero, or one side is absent.
{%- set threshold = var('reconciliation_gap_threshold') %}
with

assigned as (

    select
        period,
        lender_uscc,
        agency_uscc,
        region_code,
        sum(cases_assigned) as cases_assigned,
        sum(balance_assigned) as balance_assigned,
        sum(amount_recovered) as amount_recovered,
        sum(commission_paid) as commission_paid

    from {{ ref('stg_agency_assignment') }}
    {{ rebuilt_periods_filter() }}
    group by all

),

received as (

    select
        period,
        lender_uscc,
        agency_uscc,
        region_code,
        sum(cases_received) as cases_received,
        sum(balance_received) as balance_received,
        sum(amount_recovered) as amount_recovered,
        sum(commission_received) as commission_received

    from {{ ref('stg_agency_caseload') }}
    {{ rebuilt_periods_filter() }}
    group by all

),

paired as (

    select
        coalesce(assigned.period, received.period) as period,
        coalesce(assigned.lender_uscc, received.lender_uscc) as lender_uscc,
        coalesce(assigned.agency_uscc, received.agency_uscc) as agency_uscc,
        coalesce(assigned.region_code, received.region_code) as region_code,
        assigned.lender_uscc is not null as lender_reported,
        received.agency_uscc is not null as agency_reported,
        coalesce(assigned.cases_assigned, 0) as lender_cases,
        coalesce(received.cases_received, 0) as agency_cases,
        coalesce(assigned.balance_assigned, 0) as lender_balance,
        coalesce(received.balance_received, 0) as agency_balance,
        coalesce(assigned.amount_recovered, 0) as lender_recovered,
        coalesce(received.amount_recovered, 0) as agency_recovered,
        coalesce(assigned.commission_paid, 0) as lender_commission,
        coalesce(received.commission_received, 0) as agency_commission

    from assigned
    full outer join received
        on
            assigned.period = received.period
            and assigned.lender_uscc = received.lender_uscc
            and assigned.agency_uscc = received.agency_uscc
            and assigned.region_code = received.region_code

),

placed as (

    {{ placed_in_regions('paired') }}

),

by_level as (

    select
        period,
        lender_uscc,
        agency_uscc,
        {{ region_level_columns() }},
        bool_or(lender_reported) as lender_reported,
        bool_or(agency_reported) as agency_reported,
        sum(lender_cases) as lender_cases,
        sum(agency_cases) as agency_cases,
        sum(lender_balance) as lender_balance,
        sum(agency_balance) as agency_balance,
        sum(lender_recovered) as lender_recovered,
        sum(agency_recovered) as agency_recovered,
        sum(lender_commission) as lender_commission,
        sum(agency_commission) as agency_commission

    from placed
    -- see .sqlfluff -- noqa: PRS
    group by {{ region_grouping_sets(['period', 'lender_uscc', 'agency_uscc']) }}  -- noqa: PRS

),

gaps as (

    select
        *,
        agency_cases - lender_cases as cases_gap,
        agency_balance - lender_balance as balance_gap,
        agency_recovered - lender_recovered as recovered_gap,
        agency_commission - lender_commission as commission_gap,
        round((agency_cases - lender_cases) / nullif(lender_cases, 0), 6)
            as cases_relative_gap,
        round((agency_balance - lender_balance) / nullif(lender_balance, 0), 6)
            as balance_relative_gap,
        round((agency_recovered - lender_recovered) / nullif(lender_recovered, 0), 6)
            as recovered_relative_gap,
        round((agency_commission - lender_commission) / nullif(lender_commission, 0), 6)
            as commission_relative_gap

    from by_level

),

regions as (

    select * from {{ ref('int_published_regions') }}

)

select
    gaps.period,
    gaps.level,
    gaps.region_code,
    regions.region_name_zh,
    regions.region_name_en,
    regions.parent_region_code,
    gaps.lender_uscc,
    gaps.agency_uscc,
    gaps.lender_reported,
    gaps.agency_reported,
    gaps.lender_cases::bigint as lender_cases,
    gaps.agency_cases::bigint as agency_cases,
    gaps.lender_balance::decimal(18, 2) as lender_balance,
    gaps.agency_balance::decimal(18, 2) as agency_balance,
    gaps.lender_recovered::decimal(18, 2) as lender_recovered,
    gaps.agency_recovered::decimal(18, 2) as agency_recovered,
    gaps.lender_commission::decimal(18, 2) as lender_commission,
    gaps.agency_commission::decimal(18, 2) as agency_commission,
    gaps.cases_gap::bigint as cases_gap,
    gaps.balance_gap::decimal(18, 2) as balance_gap,
    gaps.recovered_gap::decimal(18, 2) as recovered_gap,
    gaps.commission_gap::decimal(18, 2) as commission_gap,
    gaps.cases_relative_gap::double as cases_relative_gap,
    gaps.balance_relative_gap::double as balance_relative_gap,
    gaps.recovered_relative_gap::double as recovered_relative_gap,
    gaps.commission_relative_gap::double as commission_relative_gap,
    (
        not gaps.lender_reported
        or not gaps.agency_reported
        or coalesce(
            abs(gaps.cases_relative_gap) > {{ threshold }}, gaps.cases_gap <> 0
        )
        or coalesce(
            abs(gaps.balance_relative_gap) > {{ threshold }}, gaps.balance_gap <> 0
        )
        or coalesce(
            abs(gaps.recovered_relative_gap) > {{ threshold }}, gaps.recovered_gap <> 0
        )
        or coalesce(
            abs(gaps.commission_relative_gap) > {{ threshold }}, gaps.commission_gap <> 0
        )
    ) as gap_flagged,
    {{ release_status('gaps.period') }} as release_status

from gaps
inner join regions
    on gaps.region_code = regions.region_code
