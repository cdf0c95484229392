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

{#
    Only the periods this run rebuilds, when the model is built incrementally; with
    previous_months=[1, 12] also the month before and the year before each of them (for
    month-on-month and year-on-year comparisons computed from the source).
    rebuilt_periods() is the condition (true when not incremental), for use after `and`.
    tested=true: for a data test, which is never incremental, the run's periods whenever the
    run names some (a night always does): the other periods' rows were tested when they
    were built and cannot have changed since (a period whose submissions change is rebuilt),
    so a night's tests do not grow with the history the warehouse keeps.
    Over a staging model the period is a constant of each period's read (macro
    current_submissions): DuckDB opens only the run's periods' files.
#}
{% macro rebuilt_periods(column='period', previous_months=[], tested=false) %}
    {%- set listed = rebuilt_period_list(tested) | trim -%}
    {%- if not listed -%}
        true
    {%- elif previous_months | length == 0 -%}
        {{ column }} in ({{ listed }})
    {%- else -%}
        {{ column }} in (
            select {{ period_before('rebuilt.period', 'lags.months') }}
            from (select unnest([{{ listed }}]) as period) as rebuilt
            cross join (select unnest([0, {{ previous_months | join(', ') }}]) as months) as lags
        )
    {%- endif -%}
{% endmacro %}

{#
    rebuilt_periods() for a list column (a row built from several periods' rows, e.g.
    int_complaints_deduplicated.copy_periods): the row holds one of the run's periods.
#}
{% macro rebuilt_periods_overlap(list_column, tested=false) %}
    {%- set listed = rebuilt_period_list(tested) | trim -%}
    {%- if not listed -%}
        true
    {%- else -%}
        list_has_any({{ list_column }}, [{{ listed }}])
    {%- endif -%}
{% endmacro %}

{#
    The run's periods as SQL literals ('2026-09', '2026-10') when rows are filtered to them
    (see rebuilt_periods), else nothing. Rendered, not returned: sqlfluff's templater does
    not carry a nested macro's return() value back to its caller.
#}
{% macro rebuilt_period_list(tested=false) %}
    {%- set periods = run_var('periods') -%}
    {%- if is_incremental() or (tested and periods | length > 0) -%}
        {%- if periods | length == 0 -%}
            {{ exceptions.raise_compiler_error("an incremental run needs var 'periods'") }}
        {%- endif -%}
        {% for p in periods %}'{{ p }}'{{ ", " if not loop.last }}{% endfor %}
    {%- endif -%}
{% endmacro %}

{% macro rebuilt_periods_filter(column='period', previous_months=[]) %}
    {%- if is_incremental() -%}
        where {{ rebuilt_periods(column, previous_months) }}
    {%- endif -%}
{% endmacro %}

{# The period `months` months before a YYYY-MM period column, as YYYY-MM. #}
{% macro period_before(period_column, months) %}
    strftime(strptime({{ period_column }} || '-01', '%Y-%m-%d') - to_months({{ months }}), '%Y-%m')
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
    preliminary until the due date has passed at run_var('as_of'), final after it. 'revised'
    is set by publication, which knows whether a final version was published before.
#}
{% macro release_status(period_column='period') %}
    case
        when timestamptz '{{ run_var("as_of") }}' > {{ period_due_at(period_column) }}
            then 'final'
        else 'preliminary'
    end
{% endmacro %}
