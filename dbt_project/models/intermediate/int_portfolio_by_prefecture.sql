-- Lender portfolio rows with their province and prefecture-equivalent.
{{ placed_in_regions(ref('stg_lender_portfolio')) }}
