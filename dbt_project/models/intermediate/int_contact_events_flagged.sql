{%- set slice = {
    'submission_type': 'contact_events',
    'submitter_column': 'agency_uscc',
    'source_file_column': 'raw_file',
} -%}
{{
    config(
        materialized='replace_slice',
        meta={'rebuilt_slice': slice},
    )
}}

-- Every contact event with its conduct-rule flags, judged in local time (UTC+08:00).
-- Incremental by period and agency (macro rebuilt_slice): a night rebuilds only the
-- periods it was asked to and, in a partial build, only the agencies whose contact logs
-- changed, so one resubmitted log does not re-sort the month's tens of millions of
-- events. That is exact because every window stays within (agency, period): a debtor-day
-- or a call-bombing episode crossing a month boundary is judged per month.
with

events as (

    {{ rebuilt_slice_rows(ref('stg_contact_events'), slice) }}

),

placed as (

    {{ placed_in_regions('events') }}

),

rules as (

    {{ conduct_thresholds() }}

),

channels as (

    select * from {{ ref('contact_channels') }}

),

targets as (

    select * from {{ ref('contact_targets') }}

),

localised as (

    select
        placed.period,
        placed.agency_uscc,
        placed.event_id,
        placed.lender_uscc,
        placed.debtor_ref,
        placed.province_code,
        placed.prefecture_code,
        placed.contact_at,
        placed.channel,
        placed.target,
        placed.number_type,
        placed.location_type,
        channels.counts_toward_frequency,
        channels.is_telephony,
        targets.is_third_party,
        -- Asia/Shanghai has been UTC+08:00 without daylight saving since 1991
        timezone('Asia/Shanghai', placed.contact_at) as contact_at_local,
        -- how far a frame ending just before local midnight reaches back from the contact
        timezone('Asia/Shanghai', placed.contact_at)
        - date_trunc('day', timezone('Asia/Shanghai', placed.contact_at))
        + to_microseconds(1) as since_before_local_midnight

    from placed
    inner join channels on placed.channel = channels.channel
    inner join targets on placed.target = targets.target

),

flagged as (

    -- One window operator: every window below partitions by (period, agency, debtor) and
    -- orders by local time (then event id), so the month's events are partitioned and
    -- sorted once. (Four differently partitioned windows sorted the wide rows four times:
    -- most of a national night's dbt build.) Each flag is the same as its definition in
    -- the column docs; the arithmetic below says why.
    select
        localised.*,
        -- Calls/SMS/AI calls of the debtor-day up to and including this one, in (time,
        -- event id) order: those so far in the debtor's month, less those before local
        -- midnight (a range frame ending just before the day's start).
        count(*) filter (where localised.counts_toward_frequency)
            over (
                debtor_events rows between unbounded preceding and current row
            )
        - count(*) filter (where localised.counts_toward_frequency) over (
            debtor_timeline range between unbounded preceding
            and localised.since_before_local_midnight preceding
        ) as frequency_contacts_of_day_so_far,
        -- Calls in the call-bombing window up to and including this moment (calls at the
        -- same moment included).
        count(*) filter (where localised.channel = 'call') over (
            debtor_timeline range between rules.call_bombing_window preceding and current row
        ) as calls_in_window,
        -- The previous call and the call call_bombing_calls before this one: the previous
        -- call completed a bombing window exactly when that earlier call lies within the
        -- window before it (the previous call being the last of its moment).
        lag(
            case when localised.channel = 'call' then localised.contact_at_local end,
            1 ignore nulls
        ) over debtor_events as previous_call_at,
        lag(
            case when localised.channel = 'call' then localised.contact_at_local end,
            rules.call_bombing_calls ignore nulls
        ) over debtor_events as call_before_window_at

    from localised
    cross join rules
    window
        debtor_timeline as (
            partition by localised.period, localised.agency_uscc, localised.debtor_ref
            order by localised.contact_at_local
        ),
        debtor_events as (
            partition by localised.period, localised.agency_uscc, localised.debtor_ref
            order by localised.contact_at_local, localised.event_id
        )

),

judged as (

    select
        flagged.*,
        flagged.channel = 'call'
        and flagged.calls_in_window >= rules.call_bombing_calls as is_call_bombing,
        -- the previous call, if any, was itself call bombing
        coalesce(
            flagged.previous_call_at = flagged.contact_at_local
            or flagged.call_before_window_at
            >= flagged.previous_call_at - rules.call_bombing_window,
            false
        ) as follows_call_bombing

    from flagged
    cross join rules

)

select
    judged.period,
    judged.agency_uscc,
    judged.event_id,
    judged.lender_uscc,
    judged.debtor_ref,
    judged.province_code,
    judged.prefecture_code,
    judged.contact_at_local,
    judged.channel,
    judged.target,
    judged.is_telephony,
    judged.is_third_party,
    judged.is_call_bombing,
    -- an episode starts at the first call that completes a bombing window
    judged.is_call_bombing and not judged.follows_call_bombing
        as starts_call_bombing_episode,
    judged.channel = 'call' as is_call,
    judged.channel = 'visit' as is_visit,
    judged.counts_toward_frequency
    and judged.frequency_contacts_of_day_so_far = 1 as opens_contacted_debtor_day,
    judged.contact_at_local::time < rules.contact_window_start
    or judged.contact_at_local::time >= rules.contact_window_end as is_out_of_hours,
    judged.counts_toward_frequency
    and judged.frequency_contacts_of_day_so_far > rules.max_contacts_per_debtor_day
        as is_over_frequency,
    -- the contact that takes a debtor-day over the limit: one per offending debtor-day
    judged.counts_toward_frequency
    and judged.frequency_contacts_of_day_so_far = rules.max_contacts_per_debtor_day + 1
        as opens_over_frequency_debtor_day,
    judged.is_telephony and judged.number_type = 'virtual' as is_virtual_number,
    judged.channel = 'postcard' as is_postcard,
    judged.channel = 'visit' and judged.location_type = 'campus' as is_campus_visit

from judged
cross join rules
