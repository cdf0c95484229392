{{ config(contract={'enforced': true}) }}

-- Submissions expected from the registry's active institutions and how many arrived on
-- time, late, were rejected or are missing, by the institution's registered region.
with

expected as (

    select * from {{ ref('int_expected_submissions') }}
    {{ rebuilt_periods_filter() }}

),

by_institution as (

    -- an institution counts as reporting when every submission due from it was accepted
    select
        period,
        uscc,
        region_code,
        count(*) as expected_submissions,
        count(*) filter (where outcome = 'on_time') as on_time,
        count(*) filter (where outcome = 'late') as late,
        count(*) filter (where outcome = 'missing') as missing,
        count(*) filter (where outcome = 'rejected') as rejected,
        count(*) filter (where outcome = 'awaiting_verification') as awaiting_verification

    from expected
    group by all

),

placed as (

    {{ placed_in_regions('by_institution') }}

),

by_level as (

    select
        period,
        {{ region_level_columns() }},
        count(*) as expected_institutions,
        count(*) filter (where on_time + late = expected_submissions) as reporting_institutions,
        sum(expected_submissions) as expected_submissions,
        sum(on_time) as on_time,
        sum(late) as late,
        sum(missing) as missing,
        sum(rejected) as rejected,
        sum(awaiting_verification) as awaiting_verification

    from placed
    group by {{ region_grouping_sets() }}  -- see .sqlfluff -- noqa: PRS

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
    by_level.expected_institutions::integer as expected_institutions,
    by_level.reporting_institutions::integer as reporting_institutions,
    by_level.expected_submissions::integer as expected_submissions,
    by_level.on_time::integer as on_time,
    by_level.late::integer as late,
    by_level.missing::integer as missing,
    by_level.rejected::integer as rejected,
    by_level.awaiting_verification::integer as awaiting_verification,
    round((by_level.on_time + by_level.late) / by_level.expected_submissions, 6)::double
        as submission_coverage_share,
    round(by_level.reporting_institutions / by_level.expected_institutions, 6)::double
        as institution_coverage_share,
    {{ release_status('by_level.period') }} as release_status

from by_level
inner join regions
    on by_level.region_code = regions.region_code
