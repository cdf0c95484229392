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

    {{ expected_regions() }}

)

-- every expected region, zero where no contact was reported
select
    {{ published_region_columns('regions') }},
    coalesce(by_level.reporting_agencies, 0)::integer as reporting_agencies,
    coalesce(by_level.lenders_served, 0)::integer as lenders_served,
    {{ coalesced_conduct_counts('by_level') }},
    {{ conduct_shares('by_level') }},
    {{ release_status('regions.period') }} as release_status

from regions
left join by_level
    on {{ same_region_cell('regions', 'by_level') }}
