-- Fails on any group of public cells with exactly one suppressed cell: that cell would
-- equal the group's total minus its published cells. Also catches suppression that did
-- not reach a fixed point within var('suppression_max_rounds').
with

cells as (

    select * from {{ ref('int_portfolio_suppression') }}

),

parents_and_children as (

    select
        period,
        bucket as group_member,
        count(*) filter (where suppressed) as suppressed_cells
    from cells
    group by all

),

breakdowns as (

    select
        period,
        level || ':' || region_code as group_member,
        count(*) filter (where suppressed) as suppressed_cells
    from cells
    group by all

)

select
    'nation and provinces, per bucket' as equation,
    period,
    group_member
from parents_and_children
where suppressed_cells = 1

union all

select
    'buckets and total, per region' as equation,
    period,
    group_member
from breakdowns
where suppressed_cells = 1
