{#
    The region columns every published regional table starts with, for an aggregate
    `by_level` (period, level, region_code) joined to int_published_regions as `regions`.
#}
{% macro published_region_columns(by_level='by_level') %}
    {{ by_level }}.period,
    {{ by_level }}.level,
    {{ by_level }}.region_code,
    regions.region_name_zh,
    regions.region_name_en,
    regions.parent_region_code
{% endmacro %}
