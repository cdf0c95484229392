{%- set slice = {
    'submission_type': 'agency_assignment',
    'submitter_column': 'lender_uscc',
    'source_file_column': 'raw_file',
} -%}
-- A table: the expected regions and outsourcing_by_region read it.
-- Incremental by period and lender (materialization replace_slice), as
-- int_portfolio_by_prefecture.
{{ config(materialized='replace_slice', meta={'rebuilt_slice': slice}) }}

-- Lenders' assignments to agencies with their province and prefecture-equivalent.
with

assignments as (

    {{ rebuilt_slice_rows(ref('stg_agency_assignment'), slice) }}

)

{{ placed_in_regions('assignments') }}
