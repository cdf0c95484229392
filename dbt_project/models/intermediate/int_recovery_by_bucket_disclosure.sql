-- recovery_by_bucket's cells: contributing lenders and the largest lender's share of the
-- bucket's balance, with the primary suppression rules applied.
with

overdue as (

    select * from {{ ref('int_portfolio_by_prefecture') }}
    where bucket <> 'M0'

),

contributions as (

    {{ disclosure_contributions('overdue', 'lender_uscc', 'balance', ['period', 'bucket']) }}

),

regions as (

    select * from {{ ref('int_expected_regions') }}

),

buckets as (

    select * from {{ ref('buckets') }}

),

grid as (

    select
        regions.*,
        buckets.bucket
    from regions
    cross join buckets
    where buckets.bucket <> 'M0'

),

-- every expected region's cell; one nothing was reported in has no contributor (empty)
cells as (

    select
        grid.period,
        grid.bucket,
        grid.level,
        grid.region_code,
        contributions.largest_contributor_share,
        coalesce(contributions.contributors, 0) as contributors,
        coalesce(contributions.cell_total, 0) as cell_total

    from grid
    left join contributions
        on {{ same_region_cell('grid', 'contributions', ['bucket']) }}

)

select
    *,
    {{ primary_suppressed() }} as primary_suppressed
from cells
