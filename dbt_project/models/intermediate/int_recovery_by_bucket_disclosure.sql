-- recovery_by_bucket's cells, and those of the current bucket (M0), whose balance a month
-- later is the denominator of M1's flow rate: contributing lenders and the largest lender's
-- share of the bucket's balance, with the primary suppression rules applied.
with

portfolio as (

    select * from {{ ref('int_portfolio_by_prefecture') }}

),

cells as (

    {{ disclosure_contributions('portfolio', 'lender_uscc', 'balance', ['period', 'bucket']) }}

)

select
    *,
    {{ primary_suppressed() }} as primary_suppressed
from cells
