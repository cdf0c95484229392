-- Per lender and month: overdue and outsourced balance, the outsourcing share against the
-- previous month (flagged when it jumps by the supervision threshold), the conduct of the
-- agencies collecting for it and the complaints naming it. Internal: for analysts.
with

portfolio as (

    -- this month and the month before: the outsourcing share's change compares the two
    select * from {{ ref('int_portfolio_by_prefecture') }}
    {{ rebuilt_periods_filter(previous_months=[1]) }}

),

conduct as (

    select * from {{ ref('int_conduct_by_agency_lender_prefecture') }}
    {{ rebuilt_periods_filter() }}

),

complaints as (

    select * from {{ ref('int_complaints_deduplicated') }}
    {{ rebuilt_periods_filter() }}

),

registry as (

    select * from {{ ref('stg_institution_registry') }}
    {{ rebuilt_periods_filter() }}

),

outsourcing as (

    select
        period,
        lender_uscc,
        sum(balance) as overdue_balance,
        sum(balance_outsourced) as outsourced_balance,
        round(sum(balance_outsourced) / nullif(sum(balance), 0), 6) as outsourcing_share

    from portfolio
    where bucket <> 'M0'
    group by 1, 2

),

conduct_by_lender as (

    select
        period,
        lender_uscc,
        count(distinct agency_uscc) as agencies_contacting,
        {{ conduct_counts(rows_are_counts=true) }}

    from conduct
    group by 1, 2

),

complaints_by_lender as (

    select
        period,
        respondent_lender_uscc as lender_uscc,
        count(*) as complaints,
        count(*) filter (where respondent_agency_uscc is not null) as complaints_naming_an_agency

    from complaints
    where respondent_lender_uscc is not null
    group by 1, 2

),

current_month as (

    select * from outsourcing
    where {{ rebuilt_periods('period') }}

),

combined as (

    select
        current_month.period,
        current_month.lender_uscc,
        registry.name_zh as lender_name_zh,
        registry.name_en as lender_name_en,
        current_month.overdue_balance::decimal(18, 2) as overdue_balance,
        current_month.outsourced_balance::decimal(18, 2) as outsourced_balance,
        current_month.outsourcing_share::double as outsourcing_share,
        previous_month.outsourcing_share::double as outsourcing_share_previous_month,
        round(current_month.outsourcing_share - previous_month.outsourcing_share, 6)::double
            as outsourcing_share_change,
        coalesce(
            current_month.outsourcing_share - previous_month.outsourcing_share
            >= {{ supervision_threshold('outsourcing_share_jump') }},
            false
        ) as outsourcing_share_jumped,
        coalesce(conduct_by_lender.agencies_contacting, 0)::integer as agencies_contacting,
        {{ coalesced_conduct_counts('conduct_by_lender') }},
        coalesce(complaints_by_lender.complaints, 0)::bigint as complaints,
        coalesce(complaints_by_lender.complaints_naming_an_agency, 0)::bigint
            as complaints_naming_an_agency

    from current_month
    left join outsourcing as previous_month
        on
            {{ period_before('current_month.period', 1) }} = previous_month.period
            and current_month.lender_uscc = previous_month.lender_uscc
    left join conduct_by_lender
        on
            current_month.period = conduct_by_lender.period
            and current_month.lender_uscc = conduct_by_lender.lender_uscc
    left join complaints_by_lender
        on
            current_month.period = complaints_by_lender.period
            and current_month.lender_uscc = complaints_by_lender.lender_uscc
    left join registry
        on
            current_month.period = registry.period
            and current_month.lender_uscc = registry.uscc

)

select
    combined.*,
    {{ conduct_shares('combined') }}

from combined
