-- Never published: per public cell, the contributor count and largest contributor's share
-- behind its suppression, for the quality gate to check the public files against.
with

suppression as (

    select
        period,
        table_name,
        level,
        region_code,
        contributors,
        largest_contributor_share,
        primary_suppressed,
        secondary_suppressed,
        suppressed,
        -- outsourcing_by_region has no bucket
        nullif(bucket, 'all') as bucket,
        null::varchar as category
    from {{ ref('int_portfolio_suppression') }}

    union all

    select
        period,
        table_name,
        level,
        region_code,
        contributors,
        largest_contributor_share,
        primary_suppressed,
        secondary_suppressed,
        suppressed,
        null::varchar as bucket,
        -- conduct_compliance has no category
        nullif(category, 'all') as category
    from {{ ref('int_activity_suppression') }}

)

select * from suppression
{{ rebuilt_periods_filter() }}
