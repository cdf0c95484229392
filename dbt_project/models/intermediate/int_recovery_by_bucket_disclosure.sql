-- recovery_by_bucket's cells, and those of the current bucket (M0), whose balance a month
-- later is the denominator of M1's flow rate: contributing lenders and the largest lender's
-- share of the bucket's balance, with the primary suppression rules applied.
with

portfolio as (

    select * from {{ ref('int_portfolio_by_prefecture') }}

),

contributions as (

    {{ disclosure_contributions('portfolio', 'lender_uscc', 'balance', ['period', 'bucket']) }}

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
