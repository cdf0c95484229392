-- A table: the expected regions and the coverage mart read it.
{{ config(materialized='table') }}

-- Every submission the registry says is due for a period: each active institution of the
-- period's own registry × the types its role files monthly, with how it turned out.
-- on_time / late: an accepted version exists and the first version that passed the reject
-- edits arrived by / after the due date; rejected: only rejected versions; awaiting
-- verification: held by quality edits and never accepted; missing: nothing received.
with

registry as (

    select * from {{ ref('stg_institution_registry') }}
    where status = 'active'

),

expected_types as (

    select * from {{ ref('expected_submission_types') }}

),

submissions as (

    select * from {{ ref('stg_submissions') }}

),

received as (

    select
        period,
        submitter_uscc,
        submission_type,
        bool_or(status = 'accepted') as has_accepted,
        bool_or(status = 'rejected') as has_rejected,
        bool_or(status = 'needs_verification') as awaits_verification,
        min(received_at) filter (where passed_edits) as first_received_at

    from submissions
    group by all

),

expected as (

    select
        registry.period,
        registry.uscc,
        registry.role,
        registry.region_code,
        expected_types.submission_type,
        {{ period_due_at('registry.period') }} as due_at

    from registry
    inner join expected_types
        on registry.role = expected_types.role

),

judged as (

    select
        expected.*,
        received.first_received_at,
        coalesce(received.has_accepted, false) as has_accepted,
        coalesce(received.has_rejected, false) as has_rejected,
        coalesce(received.awaits_verification, false) as awaits_verification,
        received.first_received_at <= expected.due_at as received_by_due_date

    from expected
    left join received
        on
            expected.period = received.period
            and expected.uscc = received.submitter_uscc
            and expected.submission_type = received.submission_type

)

select
    period,
    uscc,
    role,
    region_code,
    submission_type,
    first_received_at,
    due_at,
    case
        when has_accepted and received_by_due_date then 'on_time'
        when has_accepted then 'late'
        when awaits_verification then 'awaiting_verification'
        when has_rejected then 'rejected'
        else 'missing'
    end as outcome

from judged
