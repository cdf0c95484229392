{{ config(contract={'enforced': true}) }}

-- recovery_by_bucket for the public scope: national and province rows only, every
-- measure of a suppressed cell emptied and flagged (int_portfolio_suppression).
{%- set measures = [
    'reporting_lenders', 'accounts', 'balance', 'balance_outsourced', 'recovered_inhouse',
    'recovered_outsourced', 'written_off', 'sold_balance', 'outsourced_share',
    'recovery_rate_inhouse', 'recovery_rate_outsourced', 'write_off_rate', 'sale_rate',
] %}
with

rebuilt as (

    select * from {{ ref('recovery_by_bucket') }}
    {{ rebuilt_periods_filter() }}

),

suppression as (

    select * from {{ ref('int_portfolio_suppression') }}
    where table_name = 'recovery_by_bucket'

)

select
    rebuilt.period,
    rebuilt.level,
    rebuilt.region_code,
    rebuilt.region_name_zh,
    rebuilt.region_name_en,
    rebuilt.parent_region_code,
    rebuilt.bucket,
    {%- for measure in measures %}
    {{ suppressed_measure('rebuilt.' ~ measure, 'suppression.suppressed') }} as {{ measure }},
    {%- endfor %}
    {{ disclosure_flag('suppression.suppressed') }} as disclosure_flag,
    rebuilt.release_status

from rebuilt
left join suppression
    on
        rebuilt.period = suppression.period
        and rebuilt.level = suppression.level
        and rebuilt.region_code = suppression.region_code
        and rebuilt.bucket = suppression.bucket
where rebuilt.level in ('national', 'province')
