-- outsourcing_by_region's cells: contributing lenders and the largest lender's share of the
-- overdue balance, with the primary suppression rules applied.
with

overdue as (

    select * from {{ ref('int_portfolio_by_prefecture') }}
    where bucket <> 'M0'

),

contributions as (

    {{ disclosure_contributions('overdue', 'lender_uscc', 'balance', ['period']) }}

),

regions as (

    select * from {{ ref('int_expected_regions') }}

),

-- every expected region's cell; one nothing was reported in has no contributor (empty)
cells as (

    select
        regions.period,
        regions.level,
        regions.region_code,
        contributions.largest_contributor_share,
        coalesce(contributions.contributors, 0) as contributors,
        coalesce(contributions.cell_total, 0) as cell_total

    from regions
    left join contributions
        on {{ same_region_cell('regions', 'contributions') }}

)

select
    *,
    {{ primary_suppressed() }} as primary_suppressed
from cells
