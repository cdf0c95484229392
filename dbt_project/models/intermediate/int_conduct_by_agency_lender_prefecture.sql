{%- set slice = {'submission_type': 'contact_events', 'submitter_column': 'agency_uscc'} -%}
{{
    config(
        materialized='replace_slice',
        meta={'rebuilt_slice': slice},
    )
}}

-- Conduct counts per period, agency, lender and prefecture: the small table every conduct
-- mart aggregates from, so the big event table is read once per rebuilt period (and, in a
-- partial build, only the changed agencies' rows of it: macro rebuilt_slice).
with

flagged as (

    {{ rebuilt_slice_rows(ref('int_contact_events_flagged'), slice) }}

),

-- The start of the agency's first call-bombing episode with each debtor in the month, which
-- counts the debtor once. Ordered over the few episode starts only: the event table's one
-- window pass cannot number its own episode starts. The table is read again rather than
-- through the CTE above: DuckDB materialises a CTE that is read twice (the month's events).
first_episodes as (

    select
        period,
        agency_uscc,
        event_id

    from (
        {{ rebuilt_slice_rows(ref('int_contact_events_flagged'), slice) }}
    ) as rebuilt
    where starts_call_bombing_episode
    qualify row_number() over (
        partition by period, agency_uscc, debtor_ref
        order by contact_at_local, event_id
    ) = 1

),

counted as (

    select
        flagged.*,
        first_episodes.event_id is not null as starts_first_call_bombing_episode

    from flagged
    left join first_episodes
        on
            flagged.period = first_episodes.period
            and flagged.agency_uscc = first_episodes.agency_uscc
            and flagged.event_id = first_episodes.event_id

)

select
    period,
    agency_uscc,
    lender_uscc,
    province_code,
    prefecture_code,
    {{ conduct_counts() }}

from counted
group by 1, 2, 3, 4, 5
