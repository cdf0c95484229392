-- recovery_by_bucket's cells: contributing lenders and the largest lender's share of the
-- bucket's balance, with the primary suppression rules applied.
with

overdue as (

    select * from {{ ref('int_portfolio_by_prefecture') }}
    where bucket <> 'M0'

),

cells as (

    {{ disclosure_contributions('overdue', 'lender_uscc', 'balance', ['period', 'bucket']) }}

)

select
    *,
    {{ primary_suppressed() }} as primary_suppressed
from cells
