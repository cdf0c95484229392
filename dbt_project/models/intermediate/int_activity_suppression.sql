-- A table, not a view: the complementary suppression iterates, and five public marts, the
-- disclosure audit and their tests read it; as a view each of them ran it again (~60 s of
-- a national partial build). Rebuilt on every build, for every period, like the view was.
{{ config(materialized='table') }}

-- One suppression pattern for the public complaints and conduct tables (national and
-- province cells; conduct's cell stands in the category 'all'). Neither is tied to the
-- portfolio tables by an additive equation (complaints' per-10,000 rate is published only
-- where outsourcing_by_region publishes the overdue accounts it divides by), so one group
-- family each: (table, period, category), the nation and its provinces.
with

cells as (

    select
        'complaints_by_region' as table_name,
        period,
        category,
        level,
        region_code,
        contributors,
        largest_contributor_share,
        cell_total,
        primary_suppressed
    from {{ ref('int_complaints_by_region_disclosure') }}

    union all

    select
        'conduct_compliance' as table_name,
        period,
        'all' as category,
        level,
        region_code,
        contributors,
        largest_contributor_share,
        cell_total,
        primary_suppressed
    from {{ ref('int_conduct_compliance_disclosure') }}

),

{{ complementary_suppression(
    'cells',
    [['table_name', 'period', 'category']],
    'cell_total',
    ['level', 'region_code']
) }}

select * from suppression_result
