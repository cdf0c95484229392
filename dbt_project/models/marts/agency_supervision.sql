-- Per agency and month: cases received, contacts and each conduct rule's count and share,
-- complaints against it and per 10,000 cases received. Internal: for analysts and the
-- watchlist (not published).
with

conduct as (

    select * from {{ ref('int_conduct_by_agency_lender_prefecture') }}
    {{ rebuilt_periods_filter() }}

),

caseload as (

    select * from {{ ref('stg_agency_caseload') }}
    {{ rebuilt_periods_filter() }}

),

complaints as (

    select * from {{ ref('int_complaints_deduplicated') }}
    {{ rebuilt_periods_filter() }}

),

registry as (

    select * from {{ ref('stg_institution_registry') }}
    {{ rebuilt_periods_filter() }}

),

conduct_by_agency as (

    select
        period,
        agency_uscc,
        count(distinct prefecture_code) as prefectures_contacted,
        {{ conduct_counts(rows_are_counts=true) }}

    from conduct
    group by 1, 2

),

cases_by_agency as (

    select
        period,
        agency_uscc,
        sum(cases_received) as cases_received,
        count(distinct lender_uscc) as lenders_served

    from caseload
    group by 1, 2

),

complaints_by_agency as (

    select
        period,
        respondent_agency_uscc as agency_uscc,
        count(*) as complaints

    from complaints
    where respondent_agency_uscc is not null
    group by 1, 2

),

agencies as (

    select
        period,
        agency_uscc
    from conduct_by_agency
    union
    select
        period,
        agency_uscc
    from cases_by_agency
    union
    select
        period,
        agency_uscc
    from complaints_by_agency

),

combined as (

    select
        agencies.period,
        agencies.agency_uscc,
        registry.name_zh as agency_name_zh,
        registry.name_en as agency_name_en,
        coalesce(cases_by_agency.cases_received, 0)::bigint as cases_received,
        coalesce(cases_by_agency.lenders_served, 0)::integer as lenders_served,
        coalesce(conduct_by_agency.prefectures_contacted, 0)::integer as prefectures_contacted,
        {{ coalesced_conduct_counts('conduct_by_agency') }},
        coalesce(complaints_by_agency.complaints, 0)::bigint as complaints

    from agencies
    left join conduct_by_agency
        on
            agencies.period = conduct_by_agency.period
            and agencies.agency_uscc = conduct_by_agency.agency_uscc
    left join cases_by_agency
        on
            agencies.period = cases_by_agency.period
            and agencies.agency_uscc = cases_by_agency.agency_uscc
    left join complaints_by_agency
        on
            agencies.period = complaints_by_agency.period
            and agencies.agency_uscc = complaints_by_agency.agency_uscc
    left join registry
        on
            agencies.period = registry.period
            and agencies.agency_uscc = registry.uscc

)

select
    combined.*,
    round(combined.complaints * 10000.0 / nullif(combined.cases_received, 0), 6)::double
        as complaints_per_10k_cases,
    {{ conduct_shares('combined') }}

from combined
