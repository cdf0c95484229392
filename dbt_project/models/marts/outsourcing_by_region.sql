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

    {{ expected_regions() }}

)

-- every expected region, zero where nothing was reported
select
    {{ published_region_columns('regions') }},
    coalesce(overdue.reporting_lenders, 0)::integer as reporting_lenders,
    coalesce(agencies.active_agencies, 0)::integer as active_agencies,
    coalesce(overdue.overdue_accounts, 0)::bigint as overdue_accounts,
    coalesce(overdue.overdue_balance, 0)::decimal(18, 2) as overdue_balance,
    coalesce(overdue.outsourced_accounts, 0)::bigint as outsourced_accounts,
    coalesce(overdue.outsourced_balance, 0)::decimal(18, 2) as outsourced_balance,
    round(overdue.outsourced_balance / nullif(overdue.overdue_balance, 0), 6)::double
        as outsourcing_share,
    coalesce(agencies.agency_amount_recovered, 0)::decimal(18, 2) as agency_amount_recovered,
    coalesce(agencies.commission_paid, 0)::decimal(18, 2) as commission_paid,
    round(agencies.commission_paid / nullif(agencies.agency_amount_recovered, 0), 6)::double
        as average_commission_rate,
    {{ release_status('regions.period') }} as release_status

from regions
left join overdue_by_level as overdue
    on {{ same_region_cell('regions', 'overdue') }}
left join agencies_by_level as agencies
    on {{ same_region_cell('regions', 'agencies') }}
