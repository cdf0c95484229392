{%- set slice = {
    'submission_type': 'complaints',
    'submitter_column': 'submitter_uscc',
    'source_file_column': 'raw_file',
} -%}
{{
    config(
        materialized='replace_slice',
        meta={'rebuilt_slice': slice},
    )
}}

-- Every submitted complaint record with its deduplication key (DESIGN Decision 13), kept in
-- the warehouse so that int_complaints_deduplicated can gather a complaint's copies from
-- every month by key without opening the raw files of months the night does not rebuild.
-- Incremental by period and submitter: a night rewrites only its periods and, in a partial
-- build, the submitters with a new complaints file.
with

complaints as (

    {{ rebuilt_slice_rows(ref('stg_complaints'), slice) }}

)

select
    complaints.*,
    {{ complaint_key('complaints') }} as complaint_key

from complaints
