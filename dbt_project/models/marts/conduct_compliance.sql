{{ config(contract={'enforced': true}) }}

-- Collection contacts and each conduct rule's count and share, by region and level.
with

conduct as (

    select * from {{ ref('int_conduct_by_agency_lender_prefecture') }}
    {{ rebuilt_periods_filter() }}

),

by_level as (

    select
        period,
        {{ region_level_columns() }},
        count(distinct agency_uscc) as reporting_agencies,
        count(distinct lender_uscc) as lenders_served,
        {{ conduct_counts(rows_are_counts=true) }}

    from conduct
    group by {{ region_grouping_sets() }}  -- see .sqlfluff -- noqa: PRS

),

regions as (

    select * from {{ ref('int_published_regions') }}

)

select
    {{ published_region_columns() }},
    by_level.reporting_agencies::integer as reporting_agencies,
    by_level.lenders_served::integer as lenders_served,
    {{ conduct_count_list('by_level') }},
    {{ conduct_shares('by_level') }},
    {{ release_status('by_level.period') }} as release_status

from by_level
inner join regions
    on by_level.region_code = regions.region_code
