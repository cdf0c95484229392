{{ config(contract={'enforced': true}) }}

-- recovery_by_bucket for the public scope: national and province rows only, every
-- measure of a suppressed cell emptied and flagged (macro public_cells). The flow rate
-- divides by last month's balance of the bucket it flows from, which it would give away:
-- it is published only where that cell passed disclosure control in its month too (M0,
-- never published itself, is checked alongside the public cells in int_portfolio_suppression).
with

{{ public_cells('recovery_by_bucket', breakdown=['bucket']) }},

buckets as (

    select * from {{ ref('buckets') }}

),

bucket_cells as (

    select * from {{ ref('int_portfolio_suppression') }}
    where table_name = 'recovery_by_bucket'

),

with_flow_source as (

    select
        joined.*,
        joined.suppressed or coalesce(flowed_from.suppressed, true) as flow_suppressed

    from joined
    left join buckets on joined.bucket = buckets.bucket
    left join bucket_cells as flowed_from
        on
            {{ period_before('joined.period', 1) }} = flowed_from.period
            and buckets.flows_from_bucket = flowed_from.bucket
            and joined.level = flowed_from.level
            and joined.region_code = flowed_from.region_code

)

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
    {{ suppressed_measure('flow_rate', 'flow_suppressed') }} as flow_rate,
    {{ disclosure_flag() }} as disclosure_flag,
    release_status

from with_flow_source
