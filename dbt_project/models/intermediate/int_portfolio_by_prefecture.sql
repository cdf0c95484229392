-- A table: four marts, the expected regions and two disclosure models read it.
{{ config(materialized='table') }}

-- Lender portfolio rows with their province and prefecture-equivalent.
{{ placed_in_regions(ref('stg_lender_portfolio')) }}
