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

    select * from {{ ref('int_published_regions') }}

)

select
    {{ published_region_columns('by_level') }},
    by_level.bucket,
    by_level.reporting_lenders::integer as reporting_lenders,
    by_level.accounts::bigint as accounts,
    by_level.balance::decimal(18, 2) as balance,
    by_level.balance_outsourced::decimal(18, 2) as balance_outsourced,
    by_level.recovered_inhouse::decimal(18, 2) as recovered_inhouse,
    by_level.recovered_outsourced::decimal(18, 2) as recovered_outsourced,
    by_level.written_off::decimal(18, 2) as written_off,
    by_level.sold_balance::decimal(18, 2) as sold_balance,
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
    {{ release_status('by_level.period') }} as release_status

from with_flow_source as by_level
inner join regions
    on by_level.region_code = regions.region_code
