{#
    Aggregation at the three published levels in one pass: GROUPING SETS over
    (province, prefecture), (province) and () — national = Σ provinces = Σ prefectures
    by construction. Use as:
        select {{ region_level_columns() }}, sum(...) from ... group by {{ region_grouping_sets(extra) }}
#}
{% macro region_level_columns() %}
    case
        when grouping(province_code) = 1 then 'national'
        when grouping(prefecture_code) = 1 then 'province'
        else 'prefecture'
    end as level,
    case
        when grouping(province_code) = 1 then '000000'
        when grouping(prefecture_code) = 1 then province_code
        else prefecture_code
    end as region_code
{% endmacro %}

{% macro region_grouping_sets(keys=['period']) %}
    {%- set common = keys | join(', ') -%}
    grouping sets (
        ({{ common }}, province_code, prefecture_code),
        ({{ common }}, province_code),
        ({{ common }})
    )
{% endmacro %}

{# Only the periods this run rebuilds, when the mart is built incrementally. #}
{% macro rebuilt_periods_filter(column='period') %}
    {%- if is_incremental() -%}
        {%- set periods = var('periods') -%}
        {%- if periods | length == 0 -%}
            {{ exceptions.raise_compiler_error("an incremental run needs var 'periods'") }}
        {%- endif -%}
        where {{ column }} in ({% for p in periods %}'{{ p }}'{{ ", " if not loop.last }}{% endfor %})
    {%- endif -%}
{% endmacro %}

{#
    The moment a period's submissions are due and its release becomes final: the given day
    of the next month, 23:59:59 +08:00 (DESIGN Decision 5). Session time zone is
    Asia/Shanghai, so the naive timestamp is read in Beijing time.
#}
{% macro period_due_at(period_column='period') -%}
    (strptime({{ period_column }} || '-01', '%Y-%m-%d')::timestamp + interval 1 month + to_days({{ var("due_day_of_next_month") }} - 1) + interval '23:59:59')::timestamptz
{%- endmacro %}

{#
    preliminary until the due date has passed at var('as_of'), final after it. 'revised'
    is set by publication, which knows whether a final version was published before.
#}
{% macro release_status(period_column='period') %}
    case
        when timestamptz '{{ var("as_of") }}' > {{ period_due_at(period_column) }}
            then 'final'
        else 'preliminary'
    end
{% endmacro %}
