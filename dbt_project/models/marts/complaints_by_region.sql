{{ config(contract={'enforced': true}) }}

-- Complaints by category, region and level: deduplicated counts, per 10,000 overdue
-- accounts, month-on-month and year-on-year, attribution and timely resolution.
with

complaints as (

    -- this month, the month before and the year before: for MoM and YoY
    select * from {{ ref('int_complaints_deduplicated') }}
    {{ rebuilt_periods_filter(previous_months=[1, 12]) }}

),

-- a period whose complaints were submitted at all; otherwise MoM/YoY stay empty
complaint_periods as (

    -- A current complaints submission has rows, all of its own period: intake rejects an
    -- empty file (S004) and a row of another period (V007). So the list of current
    -- submissions says it without reading stg_complaints, whose ~5,400 files a national
    -- month took ~1.6 s of every build to open for their periods.
    select distinct period from {{ source('raw', 'current_submissions') }}
    where submission_type = 'complaints'

),

portfolio as (

    select * from {{ ref('int_portfolio_by_prefecture') }}
    {{ rebuilt_periods_filter() }}

),

categories as (

    select * from {{ ref('complaint_categories') }}

),

counted as (

    select
        period,
        category,
        {{ region_level_columns() }},
        count(*) as complaints,
        count(*) filter (where respondent_lender_uscc is not null) as attributed_to_lender,
        count(*) filter (where respondent_agency_uscc is not null) as attributed_to_agency,
        count(*) filter (
            where respondent_lender_uscc is not null and respondent_agency_uscc is not null
        ) as attributed_to_both,
        count(*) filter (where status <> 'withdrawn') as complaints_not_withdrawn,
        count(*) filter (
            where is_resolved_in_time and status <> 'withdrawn'
        ) as resolved_in_time,
        count(distinct respondent_agency_uscc) as respondent_agencies,
        count(distinct respondent_lender_uscc) as respondent_lenders

    from complaints
    group by {{ region_grouping_sets(['period', 'category']) }}  -- see .sqlfluff -- noqa: PRS

),

overdue as (

    select
        period,
        {{ region_level_columns() }},
        sum(accounts) as overdue_accounts

    from portfolio
    where bucket <> 'M0'
    group by {{ region_grouping_sets() }}  -- see .sqlfluff -- noqa: PRS

),

-- every expected region gets every category, zero when nothing was complained about
cells as (

    {{ expected_regions() }}

),

grid as (

    select
        cells.period,
        cells.level,
        cells.region_code,
        categories.category,
        categories.category_order,
        categories.name_zh as category_name_zh,
        categories.name_en as category_name_en

    from cells
    cross join categories

),

compared as (

    select
        grid.*,
        coalesce(current_month.complaints, 0) as complaints,
        coalesce(current_month.attributed_to_lender, 0) as attributed_to_lender,
        coalesce(current_month.attributed_to_agency, 0) as attributed_to_agency,
        coalesce(current_month.attributed_to_both, 0) as attributed_to_both,
        coalesce(current_month.complaints_not_withdrawn, 0) as complaints_not_withdrawn,
        coalesce(current_month.resolved_in_time, 0) as resolved_in_time,
        coalesce(current_month.respondent_agencies, 0) as respondent_agencies,
        coalesce(current_month.respondent_lenders, 0) as respondent_lenders,
        coalesce(overdue.overdue_accounts, 0) as overdue_accounts,
        case
            when month_before.period is not null then coalesce(previous_month.complaints, 0)
        end as complaints_previous_month,
        case
            when year_before.period is not null then coalesce(previous_year.complaints, 0)
        end as complaints_previous_year

    from grid
    left join counted as current_month
        on
            grid.period = current_month.period
            and grid.level = current_month.level
            and grid.region_code = current_month.region_code
            and grid.category = current_month.category
    left join overdue
        on
            grid.period = overdue.period
            and grid.level = overdue.level
            and grid.region_code = overdue.region_code
    left join complaint_periods as month_before
        on {{ period_before('grid.period', 1) }} = month_before.period
    left join complaint_periods as year_before
        on {{ period_before('grid.period', 12) }} = year_before.period
    left join counted as previous_month
        on
            month_before.period = previous_month.period
            and grid.level = previous_month.level
            and grid.region_code = previous_month.region_code
            and grid.category = previous_month.category
    left join counted as previous_year
        on
            year_before.period = previous_year.period
            and grid.level = previous_year.level
            and grid.region_code = previous_year.region_code
            and grid.category = previous_year.category

),

regions as (

    select * from {{ ref('int_published_regions') }}

)

select
    {{ published_region_columns('compared') }},
    compared.category,
    compared.category_name_zh,
    compared.category_name_en,
    compared.complaints::bigint as complaints,
    compared.attributed_to_lender::bigint as attributed_to_lender,
    compared.attributed_to_agency::bigint as attributed_to_agency,
    compared.attributed_to_both::bigint as attributed_to_both,
    compared.respondent_lenders::integer as respondent_lenders,
    compared.respondent_agencies::integer as respondent_agencies,
    compared.overdue_accounts::bigint as overdue_accounts,
    round(compared.complaints * 10000.0 / nullif(compared.overdue_accounts, 0), 6)::double
        as complaints_per_10k_overdue_accounts,
    compared.complaints_previous_month::bigint as complaints_previous_month,
    round(
        (compared.complaints - compared.complaints_previous_month)
        / nullif(compared.complaints_previous_month, 0), 6
    )::double as complaints_mom_change,
    compared.complaints_previous_year::bigint as complaints_previous_year,
    round(
        (compared.complaints - compared.complaints_previous_year)
        / nullif(compared.complaints_previous_year, 0), 6
    )::double as complaints_yoy_change,
    compared.complaints_not_withdrawn::bigint as complaints_not_withdrawn,
    compared.resolved_in_time::bigint as resolved_in_time,
    round(compared.resolved_in_time / nullif(compared.complaints_not_withdrawn, 0), 6)::double
        as timely_resolution_share,
    {{ release_status('compared.period') }} as release_status

from compared
inner join regions
    on compared.region_code = regions.region_code
