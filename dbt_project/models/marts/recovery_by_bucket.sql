{{ config(contract={'enforced': true}) }}

-- What is recovered, written off and sold, by days-past-due bucket, region and level,
-- and how much of last month's balance rolled into the next bucket (flow rate).
with

portfolio as (

    -- this month and the month before: flow rates compare the two
    select * from {{ ref('int_portfolio_by_prefecture') }}
    {{ rebuilt_periods_filter(previous_months=[1]) }}

),

buckets as (

    select * from {{ ref('buckets') }}

),

by_level as (

    select
        period,
        bucket,
        {{ region_level_columns() }},
        sum(accounts) as accounts,
        sum(balance) as balance,
        sum(balance_outsourced) as balance_outsourced,
        sum(recovered_inhouse) as recovered_inhouse,
        sum(recovered_outsourced) as recovered_outsourced,
        sum(written_off) as written_off,
        sum(sold_balance) as sold_balance,
        count(distinct lender_uscc) as reporting_lenders

    from portfolio
    group by {{ region_grouping_sets(['period', 'bucket']) }}  -- see .sqlfluff -- noqa: PRS

),

-- the balance a month ago of the bucket this one flows from (M1 from M0, M2 from M1, M3
-- from M2); empty when that month was not submitted or the bucket has no flow rate
with_flow_source as (

    select
        by_level.*,
        buckets.bucket_order,
        previous.balance as balance_flowed_from

    from by_level
    inner join buckets on by_level.bucket = buckets.bucket
    left join by_level as previous
        on
            {{ period_before('by_level.period', 1) }} = previous.period
            and buckets.flows_from_bucket = previous.bucket
            and by_level.level = previous.level
            and by_level.region_code = previous.region_code
    where
        by_level.bucket <> 'M0'
        and {{ rebuilt_periods('by_level.period') }}

),

regions as (

    {{ expected_regions() }}

),

-- every expected region with every overdue bucket
cells as (

    select
        regions.*,
        buckets.bucket
    from regions
    cross join buckets
    where buckets.bucket <> 'M0'

)

-- zero where nothing was reported in the cell
select
    {{ published_region_columns('cells', 'cells') }},
    cells.bucket,
    coalesce(by_level.reporting_lenders, 0)::integer as reporting_lenders,
    coalesce(by_level.accounts, 0)::bigint as accounts,
    coalesce(by_level.balance, 0)::decimal(18, 2) as balance,
    coalesce(by_level.balance_outsourced, 0)::decimal(18, 2) as balance_outsourced,
    coalesce(by_level.recovered_inhouse, 0)::decimal(18, 2) as recovered_inhouse,
    coalesce(by_level.recovered_outsourced, 0)::decimal(18, 2) as recovered_outsourced,
    coalesce(by_level.written_off, 0)::decimal(18, 2) as written_off,
    coalesce(by_level.sold_balance, 0)::decimal(18, 2) as sold_balance,
    round(by_level.balance_outsourced / nullif(by_level.balance, 0), 6)::double
        as outsourced_share,
    -- in-house recovery is measured against the balance the lender kept
    round(
        by_level.recovered_inhouse
        / nullif(by_level.balance - by_level.balance_outsourced, 0), 6
    )::double as recovery_rate_inhouse,
    round(by_level.recovered_outsourced / nullif(by_level.balance_outsourced, 0), 6)::double
        as recovery_rate_outsourced,
    round(by_level.written_off / nullif(by_level.balance, 0), 6)::double as write_off_rate,
    round(by_level.sold_balance / nullif(by_level.balance, 0), 6)::double as sale_rate,
    by_level.balance_flowed_from::decimal(18, 2) as previous_month_source_balance,
    round(by_level.balance / nullif(by_level.balance_flowed_from, 0), 6)::double as flow_rate,
    {{ release_status('cells.period') }} as release_status

from cells
left join with_flow_source as by_level
    on {{ same_region_cell('cells', 'by_level', ['bucket']) }}
