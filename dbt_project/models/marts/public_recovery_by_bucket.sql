{{ config(contract={'enforced': true}) }}

-- recovery_by_bucket for the public scope: national and province rows only, every
-- measure of a suppressed cell emptied and flagged (macro public_cells).
with

{{ public_cells('recovery_by_bucket', breakdown=['bucket']) }}

select
    period,
    level,
    region_code,
    region_name_zh,
    region_name_en,
    parent_region_code,
    bucket,
    {{ suppressed_measure('reporting_lenders') }} as reporting_lenders,
    {{ suppressed_measure('accounts') }} as accounts,
    {{ suppressed_measure('balance') }} as balance,
    {{ suppressed_measure('balance_outsourced') }} as balance_outsourced,
    {{ suppressed_measure('recovered_inhouse') }} as recovered_inhouse,
    {{ suppressed_measure('recovered_outsourced') }} as recovered_outsourced,
    {{ suppressed_measure('written_off') }} as written_off,
    {{ suppressed_measure('sold_balance') }} as sold_balance,
    {{ suppressed_measure('outsourced_share') }} as outsourced_share,
    {{ suppressed_measure('recovery_rate_inhouse') }} as recovery_rate_inhouse,
    {{ suppressed_measure('recovery_rate_outsourced') }} as recovery_rate_outsourced,
    {{ suppressed_measure('write_off_rate') }} as write_off_rate,
    {{ suppressed_measure('sale_rate') }} as sale_rate,
    {{ disclosure_flag() }} as disclosure_flag,
    release_status

from joined
