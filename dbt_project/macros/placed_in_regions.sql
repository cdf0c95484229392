{#
    Rows of a submission placed in the region hierarchy: county codes roll up to their
    prefecture-equivalent (DESIGN Decision 8), so every row has a province and a
    prefecture. Intake has already rejected unknown codes, so the inner join drops nothing.
#}
{% macro placed_in_regions(submitted_relation) %}
select
    submitted.*,
    regions.province_code,
    coalesce(regions.prefecture_code, submitted.region_code) as prefecture_code
from {{ submitted_relation }} as submitted
inner join {{ ref('regions') }} as regions
    on submitted.region_code = regions.region_code
{% endmacro %}
