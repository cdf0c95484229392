-- A table, not a view: the complementary suppression iterates, and five public marts, the
-- disclosure audit and their tests read it; as a view each of them ran it again (~60 s of
-- a national partial build). Rebuilt on every build, for every period, like the view was.
{{ config(materialized='table') }}

-- One suppression pattern for the two public tables built from lender portfolios, because
-- their cells are tied by equations across tables: outsourcing_by_region's overdue balance
-- of a region is the sum of recovery_by_bucket's balances over its buckets. Cells are the
-- public levels only (national, province); outsourcing's cell stands in the bucket 'all'.
-- The current bucket (M0) is never published, but its balance is the denominator of the
-- next month's M1 flow rate, which public_recovery_by_bucket publishes only where the M0 cell
-- passes here: so M0 cells take part, outside the overdue total.
-- Groups (each one additive equation family):
--   (period, bucket): the nation and its provinces, per bucket (M0 included) and for 'all';
--   (period, level, region_code, in_overdue_total): a region's overdue buckets and its total
--   in outsourcing (M0 alone in its own group: it is not part of that total).
with

cells as (

    select
        'outsourcing_by_region' as table_name,
        period,
        'all' as bucket,
        level,
        region_code,
        contributors,
        largest_contributor_share,
        cell_total,
        primary_suppressed,
        true as in_overdue_total
    from {{ ref('int_outsourcing_by_region_disclosure') }}
    where level in ('national', 'province')

    union all

    select
        'recovery_by_bucket' as table_name,
        period,
        bucket,
        level,
        region_code,
        contributors,
        largest_contributor_share,
        cell_total,
        primary_suppressed,
        bucket <> 'M0' as in_overdue_total
    from {{ ref('int_recovery_by_bucket_disclosure') }}
    where level in ('national', 'province')

),

{{ complementary_suppression(
    'cells',
    [['period', 'bucket'], ['period', 'level', 'region_code', 'in_overdue_total']],
    'cell_total',
    ['table_name', 'bucket', 'region_code']
) }}

select * from suppression_result
