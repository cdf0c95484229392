{{ config(contract={'enforced': true}) }}

-- What is recovered, written off and sold, by days-past-due bucket, region and level.
with

portfolio as (

    select * from {{ ref('int_portfolio_by_prefecture') }}
    {{ rebuilt_periods_filter() }}

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
    where bucket <> 'M0'
    group by {{ region_grouping_sets(['period', 'bucket']) }}  -- see .sqlfluff -- noqa: PRS

),

regions as (

    select * from {{ ref('int_published_regions') }}

)

select
    by_level.period,
    by_level.level,
    by_level.region_code,
    regions.region_name_zh,
    regions.region_name_en,
    regions.parent_region_code,
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
    {{ release_status('by_level.period') }} as release_status

from by_level
inner join regions
    on by_level.region_code = regions.region_code
