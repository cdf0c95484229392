-- A table: the expected regions and outsourcing_by_region read it.
{{ config(materialized='table') }}

-- Lenders' assignments to agencies with their province and prefecture-equivalent.
{{ placed_in_regions(ref('stg_agency_assignment')) }}
