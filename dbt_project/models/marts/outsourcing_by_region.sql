{{ config(contract={'enforced': true}) }}

-- How much overdue debt is outsourced to collection agencies, by region and level.
with

portfolio as (

    select * from {{ ref('int_portfolio_by_prefecture') }}
    {{ rebuilt_periods_filter() }}

),

assignments as (

    select * from {{ ref('int_assignments_by_prefecture') }}
    {{ rebuilt_periods_filter() }}

),

overdue_by_level as (

    select
        period,
        {{ region_level_columns() }},
        sum(accounts) as overdue_accounts,
        sum(balance) as overdue_balance,
        sum(accounts_outsourced) as outsourced_accounts,
        sum(balance_outsourced) as outsourced_balance,
        count(distinct lender_uscc) as reporting_lenders

    from portfolio
    where bucket <> 'M0'
    group by {{ region_grouping_sets() }}  -- see .sqlfluff -- noqa: PRS

),

agencies_by_level as (

    select
        period,
        {{ region_level_columns() }},
        count(distinct agency_uscc) filter (where cases_assigned > 0) as active_agencies,
        sum(amount_recovered) as agency_amount_recovered,
        sum(commission_paid) as commission_paid

    from assignments
    group by {{ region_grouping_sets() }}  -- see .sqlfluff -- noqa: PRS

),

regions as (

    select * from {{ ref('int_published_regions') }}

)

select
    {{ published_region_columns('overdue') }},
    overdue.reporting_lenders::integer as reporting_lenders,
    coalesce(agencies.active_agencies, 0)::integer as active_agencies,
    overdue.overdue_accounts::bigint as overdue_accounts,
    overdue.overdue_balance::decimal(18, 2) as overdue_balance,
    overdue.outsourced_accounts::bigint as outsourced_accounts,
    overdue.outsourced_balance::decimal(18, 2) as outsourced_balance,
    round(overdue.outsourced_balance / nullif(overdue.overdue_balance, 0), 6)::double
        as outsourcing_share,
    coalesce(agencies.agency_amount_recovered, 0)::decimal(18, 2) as agency_amount_recovered,
    coalesce(agencies.commission_paid, 0)::decimal(18, 2) as commission_paid,
    round(agencies.commission_paid / nullif(agencies.agency_amount_recovered, 0), 6)::double
        as average_commission_rate,
    {{ release_status('overdue.period') }} as release_status

from overdue_by_level as overdue
left join agencies_by_level as agencies
    on
        overdue.period = agencies.period
        and overdue.level = agencies.level
        and overdue.region_code = agencies.region_code
inner join regions
    on overdue.region_code = regions.region_code
