{{ config(contract={'enforced': true}) }}

-- outsourcing_by_region for the public scope: national and province rows only, every
-- measure of a suppressed cell emptied and flagged (macro public_cells).
with

{{ public_cells('outsourcing_by_region') }}

select
    period,
    level,
    region_code,
    region_name_zh,
    region_name_en,
    parent_region_code,
    {{ suppressed_measure('reporting_lenders') }} as reporting_lenders,
    {{ suppressed_measure('active_agencies') }} as active_agencies,
    {{ suppressed_measure('overdue_accounts') }} as overdue_accounts,
    {{ suppressed_measure('overdue_balance') }} as overdue_balance,
    {{ suppressed_measure('outsourced_accounts') }} as outsourced_accounts,
    {{ suppressed_measure('outsourced_balance') }} as outsourced_balance,
    {{ suppressed_measure('outsourcing_share') }} as outsourcing_share,
    {{ suppressed_measure('agency_amount_recovered') }} as agency_amount_recovered,
    {{ suppressed_measure('commission_paid') }} as commission_paid,
    {{ suppressed_measure('average_commission_rate') }} as average_commission_rate,
    {{ disclosure_flag() }} as disclosure_flag,
    release_status

from joined
