-- Fails on any group of public cells with exactly one suppressed cell: that cell would
-- equal the group's total minus its published cells. Also catches suppression that did
-- not reach a fixed point within var('suppression_max_rounds').
with

portfolio_cells as (

    select * from {{ ref('int_portfolio_suppression') }}

),

activity_cells as (

    select * from {{ ref('int_activity_suppression') }}

),

groups as (

    select
        'nation and provinces, per bucket' as equation,
        period,
        bucket as group_member,
        count(*) filter (where suppressed) as suppressed_cells
    from portfolio_cells
    group by all

    union all

    select
        'buckets and total, per region' as equation,
        period,
        level || ':' || region_code as group_member,
        count(*) filter (where suppressed) as suppressed_cells
    from portfolio_cells
    where in_overdue_total
    group by all

    union all

    select
        'nation and provinces, per table and category' as equation,
        period,
        table_name || ':' || category as group_member,
        count(*) filter (where suppressed) as suppressed_cells
    from activity_cells
    group by all

)

select
    equation,
    period,
    group_member
from groups
where suppressed_cells = 1
