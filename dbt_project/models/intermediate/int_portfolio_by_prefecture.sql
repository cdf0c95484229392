{%- set slice = {
    'submission_type': 'lender_portfolio',
    'submitter_column': 'lender_uscc',
    'source_file_column': 'raw_file',
} -%}
-- A table: four marts, the expected regions and two disclosure models read it.
-- Incremental by period and lender (materialization replace_slice): a night places its own
-- periods' rows (in a partial build, the changed lenders' rows of them), not again every
-- month the warehouse keeps (2.5 s a national month on 2026-12-06, growing with history).
{{ config(materialized='replace_slice', meta={'rebuilt_slice': slice}) }}

-- Lender portfolio rows with their province and prefecture-equivalent.
with

portfolio as (

    {{ rebuilt_slice_rows(ref('stg_lender_portfolio'), slice) }}

)

{{ placed_in_regions('portfolio') }}
