{#
    The region columns every published regional table starts with, for an aggregate
    `by_level` (period, level, region_code) joined to int_published_regions as `regions`.
#}
{% macro published_region_columns(by_level='by_level', names='regions') %}
    {{ by_level }}.period,
    {{ by_level }}.level,
    {{ by_level }}.region_code,
    {{ names }}.region_name_zh,
    {{ names }}.region_name_en,
    {{ names }}.parent_region_code
{% endmacro %}

{#
    The expected regions of the rebuilt periods (int_expected_regions), as the CTE body a
    complete regional mart selects from: `from regions left join by_level on
    {{ same_region_cell('regions', 'by_level') }}`, then zero-fill the measures, so a
    region with nothing reported still has its row (the gate's rule regions_as_expected).
#}
{% macro expected_regions() %}
    select * from {{ ref('int_expected_regions') }}
    {{ rebuilt_periods_filter() }}
{% endmacro %}

{% macro same_region_cell(left, right, breakdown=[]) %}
    {{ left }}.period = {{ right }}.period
    and {{ left }}.level = {{ right }}.level
    and {{ left }}.region_code = {{ right }}.region_code
    {%- for column in breakdown %}
    and {{ left }}.{{ column }} = {{ right }}.{{ column }}
    {%- endfor %}
{% endmacro %}
