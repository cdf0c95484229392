{{ config(contract={'enforced': true}) }}

-- What each lender reported assigning to an agency (agency_assignment) against what the
-- agency reported receiving from that lender (agency_caseload), per region and level.
-- Gaps are agency minus lender; a pair is flagged when a gap exceeds the threshold share of
-- the lender's figure, or only one side reported.
{%- set measures = [
    ('cases', 'cases_assigned', 'cases_received'),
    ('balance', 'balance_assigned', 'balance_received'),
    ('recovered', 'amount_recovered', 'amount_recovered'),
    ('commission', 'commission_paid', 'commission_received'),
] %}
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
    group by period, lender_uscc, agency_uscc, region_code

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
    group by period, lender_uscc, agency_uscc, region_code

),

paired as (

    select
        coalesce(assigned.period, received.period) as period,
        coalesce(assigned.lender_uscc, received.lender_uscc) as lender_uscc,
        coalesce(assigned.agency_uscc, received.agency_uscc) as agency_uscc,
        coalesce(assigned.region_code, received.region_code) as region_code,
        assigned.lender_uscc is not null as lender_reported,
        received.agency_uscc is not null as agency_reported,
        {%- for name, lender_column, agency_column in measures %}
        coalesce(assigned.{{ lender_column }}, 0) as lender_{{ name }},
        coalesce(received.{{ agency_column }}, 0) as agency_{{ name }}{{ "," if not loop.last }}
        {%- endfor %}

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
        {%- for name, _, _ in measures %}
        sum(lender_{{ name }}) as lender_{{ name }},
        sum(agency_{{ name }}) as agency_{{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from placed
    group by {{ region_grouping_sets(['period', 'lender_uscc', 'agency_uscc']) }}  -- see .sqlfluff -- noqa: PRS

),

gaps as (

    select
        *,
        {%- for name, _, _ in measures %}
        agency_{{ name }} - lender_{{ name }} as {{ name }}_gap,
        round((agency_{{ name }} - lender_{{ name }}) / nullif(lender_{{ name }}, 0), 6)
            as {{ name }}_relative_gap{{ "," if not loop.last }}
        {%- endfor %}

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
        {%- for name, _, _ in measures %}
        or coalesce(abs(gaps.{{ name }}_relative_gap) > {{ threshold }}, gaps.{{ name }}_gap <> 0)
        {%- endfor %}
    ) as gap_flagged,
    {{ release_status('gaps.period') }} as release_status

from gaps
inner join regions
    on gaps.region_code = regions.region_code
