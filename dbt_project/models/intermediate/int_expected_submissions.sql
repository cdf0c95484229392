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
    group by period, submitter_uscc, submission_type

),

expected as (

    select
        registry.period,
        registry.uscc,
        registry.role,
        registry.region_code,
        expected_types.submission_type

    from registry
    inner join expected_types
        on registry.role = expected_types.role

)

select
    expected.period,
    expected.uscc,
    expected.role,
    expected.region_code,
    expected.submission_type,
    received.first_received_at,
    {{ period_due_at('expected.period') }} as due_at,
    case
        when received.has_accepted
            and received.first_received_at <= {{ period_due_at('expected.period') }}
            then 'on_time'
        when received.has_accepted then 'late'
        when received.awaits_verification then 'awaiting_verification'
        when received.has_rejected then 'rejected'
        else 'missing'
    end as outcome

from expected
left join received
    on
        expected.period = received.period
        and expected.uscc = received.submitter_uscc
        and expected.submission_type = received.submission_type
