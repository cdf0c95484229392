{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='period',
        on_schema_change='fail',
    )
}}

-- Conduct counts per period, agency, lender and prefecture: the small table every conduct
-- mart aggregates from, so the big event table is read once per rebuilt period.
with

flagged as (

    select * from {{ ref('int_contact_events_flagged') }}
    {{ rebuilt_periods_filter() }}

)

select
    period,
    agency_uscc,
    lender_uscc,
    province_code,
    prefecture_code,
    {{ conduct_counts() }}

from flagged
group by 1, 2, 3, 4, 5
