-- Never published: per public cell, the contributor count and largest contributor's share
-- behind its suppression, for the quality gate to check the public files against.
with

suppression as (

    select * from {{ ref('int_portfolio_suppression') }}
    {{ rebuilt_periods_filter() }}

)

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
    nullif(bucket, 'all') as bucket

from suppression
