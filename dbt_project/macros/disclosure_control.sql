{#
    Disclosure control for the public tables (DESIGN "Published regional tables"; the
    frequency and dominance rules of τ-Argus / sdcTable), generic over a table's cells,
    measure and contributor key so every public mart uses the same three steps:

    1. disclosure_contributions(relation, contributor, measure, keys): per cell (keys,
       level, region_code) at the three levels, how many institutions contribute and the
       largest one's share of the measure.
    2. primary_suppressed(): the frequency rule (fewer than min_contributors) or the
       dominance rule (largest share over max_largest_share), thresholds from the
       disclosure_thresholds seed.
    3. complementary_suppression(cells, groups, size_column, order_columns): secondary
       suppression. A group is a set of published cells tied by one additive equation
       (a parent and its children, or the parts of a breakdown and their total); if exactly
       one cell of a group is suppressed it equals the group's other cells subtracted from
       the total, so the smallest unsuppressed cell of that group is suppressed too. Rounds
       repeat (a new suppression can leave another group with exactly one) up to
       var('suppression_max_rounds'); the public marts' tests fail if a group still has
       exactly one suppressed cell.

    Heuristic, documented limits: it defeats recovery by subtraction within any single
    equation. A chain of equations can in theory still pin a cell (a suppressed cell that is
    a "bridge" between two otherwise separate patterns); a full audit needs linear
    programming (τ-Argus' audit), which this project does not run.
#}
{% macro disclosure_contributions(relation, contributor, measure, keys=['period']) %}
    with

    contributions as (

        select
            {{ keys | join(', ') }},
            {{ region_level_columns() }},
            {{ contributor }} as contributor,
            sum({{ measure }}) as contribution

        from {{ relation }}
        group by {{ region_grouping_sets(keys + [contributor]) }}  -- noqa: PRS

    )

    select
        {{ keys | join(', ') }},
        level,
        region_code,
        count(*)::integer as contributors,
        sum(contribution) as cell_total,
        round(max(contribution) / nullif(sum(contribution), 0), 6)::double
            as largest_contributor_share

    from contributions
    group by {{ keys | join(', ') }}, level, region_code
{% endmacro %}

{% macro disclosure_threshold(rule) -%}
    (select threshold from {{ ref('disclosure_thresholds') }} where rule = '{{ rule }}')
{%- endmacro %}

{#
    An empty cell (no contributor: an expected region where nothing was reported) is not
    sensitive — it describes no institution — so it is published as zeros, like τ-Argus'
    empty cells. It is also the last resort as a complement (see complementary_suppression):
    hiding a known nothing protects nobody.
#}
{% macro primary_suppressed(contributors='contributors', share='largest_contributor_share') %}
    (
        {{ contributors }} between 1 and {{ disclosure_threshold('min_contributors') }} - 1
        or coalesce({{ share }} > {{ disclosure_threshold('max_largest_share') }}, false)
    )
{% endmacro %}

{#
    The public cells (national and province) of every expected region (int_expected_regions),
    and of every `breakdown` value of the seed `breakdown_seed` when given, with the
    contributions of `contributions` (columns of disclosure_contributions) and the primary
    decision. A cell without contributions is empty: contributors 0, not sensitive, so a
    table that publishes zero rows (every category, every region) has a decision for each.
#}
{% macro public_cell_grid(contributions, breakdown=none, breakdown_seed=none) %}
    select
        regions.period,
        {%- if breakdown %}
        breakdowns.{{ breakdown }},
        {%- endif %}
        regions.level,
        regions.region_code,
        coalesce(contributed.contributors, 0)::integer as contributors,
        coalesce(contributed.cell_total, 0)::double as cell_total,
        contributed.largest_contributor_share,
        {{ primary_suppressed(
            'coalesce(contributed.contributors, 0)', 'contributed.largest_contributor_share'
        ) }} as primary_suppressed

    from {{ ref('int_expected_regions') }} as regions
    {%- if breakdown %}
    cross join {{ ref(breakdown_seed) }} as breakdowns
    {%- endif %}
    left join {{ contributions }} as contributed
        on
            {{ same_region_cell('regions', 'contributed') }}
            {%- if breakdown %}
            and breakdowns.{{ breakdown }} = contributed.{{ breakdown }}
            {%- endif %}
    where regions.level in ('national', 'province')
{% endmacro %}

{#
    Emits CTEs round_0 … round_N and suppression_result (the cells with `suppressed` and
    `secondary_suppressed`); call it inside a `with` after the CTE named by `cells`, which
    needs primary_suppressed, contributors, the size column and the group and order columns.
    The complement is the group's smallest unsuppressed cell with contributors; an empty
    cell only when the group has nothing else.
#}
{% macro complementary_suppression(cells, groups, size_column, order_columns) %}
    {%- set rounds = var('suppression_max_rounds', 10) | int -%}
    round_0 as (

        select
            *,
            primary_suppressed as suppressed
        from {{ cells }}

    ),
    {%- for round in range(1, rounds + 1) %}

    counted_{{ round }} as (

        select
            *,
            {%- for group in groups %}
            count(*) filter (where suppressed) over (
                partition by {{ group | join(', ') }}
            ) as suppressed_in_group_{{ loop.index }},
            row_number() over (
                partition by {{ group | join(', ') }}
                order by
                    suppressed,
                    coalesce(contributors, 0) = 0,
                    coalesce({{ size_column }}, 0),
                    {{ order_columns | join(', ') }}
            ) as smallest_in_group_{{ loop.index }}{{ "," if not loop.last }}
            {%- endfor %}
        from round_{{ round - 1 }}

    ),

    round_{{ round }} as (

        select
            * exclude (
                suppressed,
                {%- for group in groups %}
                suppressed_in_group_{{ loop.index }},
                smallest_in_group_{{ loop.index }}{{ "," if not loop.last }}
                {%- endfor %}
            ),
            suppressed
            {%- for group in groups %}
            or (suppressed_in_group_{{ loop.index }} = 1 and smallest_in_group_{{ loop.index }} = 1)
            {%- endfor %} as suppressed
        from counted_{{ round }}

    ),
    {%- endfor %}

    suppression_result as (

        select
            *,
            suppressed and not primary_suppressed as secondary_suppressed
        from round_{{ rounds }}

    )
{% endmacro %}

{# A published measure of a possibly suppressed cell: empty when suppressed. #}
{% macro suppressed_measure(measure, suppressed='suppressed') -%}
    case when {{ suppressed }} then null else {{ measure }} end
{%- endmacro %}

{#
    One symbol for primary and secondary suppression alike, so readers cannot tell which
    cells are the small ones.
#}
{% macro disclosure_flag(suppressed='suppressed') -%}
    case when {{ suppressed }} then 'x 保密 / suppressed' end
{%- endmacro %}

-- The public cells of an internal mart with their suppression decision, as CTE `joined`
-- (the mart's columns plus `suppressed`): the rebuilt periods' national and province rows,
-- each joined to the suppression pattern (int_portfolio_suppression unless `suppression`
-- names another with the same columns) on its cell key. A cell without a decision was
-- never checked, so it is withheld (fail closed).
{% macro public_cells(table_name, breakdown=[], suppression='int_portfolio_suppression') %}
rebuilt as (

    select * from {{ ref(table_name) }}
    {{ rebuilt_periods_filter() }}

),

suppression as (

    select * from {{ ref(suppression) }}
    where table_name = '{{ table_name }}'

),

joined as (

    select
        rebuilt.*,
        coalesce(suppression.suppressed, true) as suppressed

    from rebuilt
    left join suppression
        on
            rebuilt.period = suppression.period
            and rebuilt.level = suppression.level
            and rebuilt.region_code = suppression.region_code
            {%- for column in breakdown %}
            and rebuilt.{{ column }} = suppression.{{ column }}
            {%- endfor %}
    where rebuilt.level in ('national', 'province')

)
{% endmacro %}
