-- A table: every regional mart, the disclosure models and their tests read it.
{{ config(materialized='table') }}

-- The regions every complete regional table must have a row for in a period (the gate's
-- rule regions_as_expected checks the published files against this list):
--   * the nation and every province-level unit of the region seed, always;
--   * every prefecture-equivalent where an expected reporter is registered (an active
--     institution of the period's registry: int_expected_submissions), whether or not it
--     submitted — a silent prefecture shows as zeros, not as a missing row;
--   * every prefecture-equivalent where the period's accepted submissions place rows
--     (debtors live where no institution is registered), so no data is dropped.
-- Periods: those with a registry or with data. Region names and parents come from
-- int_published_regions.
with

reporters as (

    select distinct
        period,
        region_code
    from {{ ref('int_expected_submissions') }}

),

registered as (

    {{ placed_in_regions('reporters') }}

),

prefectures_with_data as (

    select
        period,
        prefecture_code
    from registered
    union
    select
        period,
        prefecture_code
    from {{ ref('int_portfolio_by_prefecture') }}
    union
    select
        period,
        prefecture_code
    from {{ ref('int_assignments_by_prefecture') }}
    union
    select
        period,
        prefecture_code
    from {{ ref('int_conduct_by_agency_lender_prefecture') }}
    union
    select
        period,
        prefecture_code
    from {{ ref('int_complaints_deduplicated') }}

),

periods as (

    select distinct period from prefectures_with_data

),

regions as (

    select * from {{ ref('int_published_regions') }}

),

expected as (

    select
        periods.period,
        regions.region_code
    from periods
    cross join regions
    where regions.level in ('national', 'province')

    union

    select
        period,
        prefecture_code as region_code
    from prefectures_with_data

)

select
    expected.period,
    regions.level,
    expected.region_code,
    regions.region_name_zh,
    regions.region_name_en,
    regions.parent_region_code

from expected
inner join regions
    on expected.region_code = regions.region_code
