{{ config(contract={'enforced': true}) }}

-- complaints_by_region for the public scope: national and province rows only, every
-- measure of a suppressed cell emptied and flagged (macro public_cells). Figures that
-- divide by another cell are published only where that cell is: the rate per 10,000 overdue
-- accounts where outsourcing_by_region publishes the region's overdue accounts, MoM and YoY
-- where the month (year) before published the same cell. The other cells themselves
-- (overdue accounts, previous counts) are left to their own publication.
with

{{ public_cells('complaints_by_region', ['category'], 'int_activity_suppression') }},

complaint_cells as (

    select * from {{ ref('int_activity_suppression') }}
    where table_name = 'complaints_by_region'

),

outsourcing_cells as (

    select * from {{ ref('int_portfolio_suppression') }}
    where table_name = 'outsourcing_by_region'

),

with_comparisons as (

    select
        joined.*,
        joined.suppressed or coalesce(outsourcing_cells.suppressed, true) as rate_suppressed,
        joined.suppressed or coalesce(month_before.suppressed, true) as mom_suppressed,
        joined.suppressed or coalesce(year_before.suppressed, true) as yoy_suppressed

    from joined
    left join outsourcing_cells
        on
            joined.period = outsourcing_cells.period
            and joined.level = outsourcing_cells.level
            and joined.region_code = outsourcing_cells.region_code
    left join complaint_cells as month_before
        on
            {{ period_before('joined.period', 1) }} = month_before.period
            and joined.category = month_before.category
            and joined.level = month_before.level
            and joined.region_code = month_before.region_code
    left join complaint_cells as year_before
        on
            {{ period_before('joined.period', 12) }} = year_before.period
            and joined.category = year_before.category
            and joined.level = year_before.level
            and joined.region_code = year_before.region_code

)

select
    period,
    level,
    region_code,
    region_name_zh,
    region_name_en,
    parent_region_code,
    category,
    category_name_zh,
    category_name_en,
    {{ suppressed_measure('complaints') }} as complaints,
    {{ suppressed_measure('attributed_to_lender') }} as attributed_to_lender,
    {{ suppressed_measure('attributed_to_agency') }} as attributed_to_agency,
    {{ suppressed_measure('attributed_to_both') }} as attributed_to_both,
    {{ suppressed_measure('respondent_lenders') }} as respondent_lenders,
    {{ suppressed_measure('respondent_agencies') }} as respondent_agencies,
    {{ suppressed_measure('complaints_per_10k_overdue_accounts', 'rate_suppressed') }}
        as complaints_per_10k_overdue_accounts,
    {{ suppressed_measure('complaints_mom_change', 'mom_suppressed') }} as complaints_mom_change,
    {{ suppressed_measure('complaints_yoy_change', 'yoy_suppressed') }} as complaints_yoy_change,
    {{ suppressed_measure('complaints_not_withdrawn') }} as complaints_not_withdrawn,
    {{ suppressed_measure('resolved_in_time') }} as resolved_in_time,
    {{ suppressed_measure('timely_resolution_share') }} as timely_resolution_share,
    {{ disclosure_flag() }} as disclosure_flag,
    release_status

from with_comparisons
