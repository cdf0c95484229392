{{ config(contract={'enforced': true}) }}

-- conduct_compliance for the public scope: national and province rows only, every
-- measure of a suppressed cell emptied and flagged (macro public_cells).
with

{{ public_cells('conduct_compliance', suppression='int_activity_suppression') }}

select
    period,
    level,
    region_code,
    region_name_zh,
    region_name_en,
    parent_region_code,
    {{ suppressed_measure('reporting_agencies') }} as reporting_agencies,
    {{ suppressed_measure('lenders_served') }} as lenders_served,
    {{ suppressed_conduct_measures('joined') }},
    {{ disclosure_flag() }} as disclosure_flag,
    release_status

from joined
