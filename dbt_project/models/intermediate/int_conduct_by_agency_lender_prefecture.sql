{%- set slice = {'submission_type': 'contact_events', 'submitter_column': 'agency_uscc'} -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_slice',
        meta={'rebuilt_slice': slice},
        on_schema_change='fail',
    )
}}

-- Conduct counts per period, agency, lender and prefecture: the small table every conduct
-- mart aggregates from, so the big event table is read once per rebuilt period (and, in a
-- partial build, only the changed agencies' rows of it: macro rebuilt_slice).
with

flagged as (

    select * from {{ ref('int_contact_events_flagged') }}
    {{ rebuilt_slice_filter(slice) }}

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
