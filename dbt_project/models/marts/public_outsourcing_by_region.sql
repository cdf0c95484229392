{{ config(contract={'enforced': true}) }}

-- outsourcing_by_region for the public scope: national and province rows only, every
-- measure of a suppressed cell emptied and flagged (int_portfolio_suppression).
{%- set measures = [
    'reporting_lenders', 'active_agencies', 'overdue_accounts', 'overdue_balance',
    'outsourced_accounts', 'outsourced_balance', 'outsourcing_share',
    'agency_amount_recovered', 'commission_paid', 'average_commission_rate',
] %}
with

rebuilt as (

    select * from {{ ref('outsourcing_by_region') }}
    {{ rebuilt_periods_filter() }}

),

suppression as (

    select * from {{ ref('int_portfolio_suppression') }}
    where table_name = 'outsourcing_by_region'

)

select
    rebuilt.period,
    rebuilt.level,
    rebuilt.region_code,
    rebuilt.region_name_zh,
    rebuilt.region_name_en,
    rebuilt.parent_region_code,
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
where rebuilt.level in ('national', 'province')
