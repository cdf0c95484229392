{%- set slice = {'submission_type': 'contact_events', 'submitter_column': 'agency_uscc'} -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_slice',
        meta={'rebuilt_slice': slice},
        on_schema_change='fail',
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

    select * from {{ ref('stg_contact_events') }}
    {{ rebuilt_slice_filter(slice) }}

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
        timezone('Asia/Shanghai', placed.contact_at) as contact_at_local

    from placed
    inner join channels on placed.channel = channels.channel
    inner join targets on placed.target = targets.target

),

sequenced as (

    select
        localised.*,
        -- the n-th call/SMS/AI call of this agency to this debtor on this local day
        case
            when localised.counts_toward_frequency
                then row_number() over (
                    partition by
                        localised.period,
                        localised.agency_uscc,
                        localised.debtor_ref,
                        localised.counts_toward_frequency,
                        localised.contact_at_local::date
                    order by localised.contact_at, localised.event_id
                )
        end as contact_of_debtor_day,
        -- the agency's calls to this debtor in the window up to and including this one
        case
            when localised.channel = 'call'
                then count(*) over (
                    partition by
                        localised.period,
                        localised.agency_uscc,
                        localised.debtor_ref,
                        localised.channel
                    order by localised.contact_at
                    range between rules.call_bombing_window preceding
                    and current row
                )
        end as calls_in_window

    from localised
    cross join rules

),

flagged as (

    select
        sequenced.*,
        sequenced.calls_in_window >= rules.call_bombing_calls as is_call_bombing

    from sequenced
    cross join rules

),

episodes as (

    select
        flagged.*,
        -- an episode starts at the first call that completes a bombing window
        coalesce(
            flagged.is_call_bombing
            and not coalesce(
                lag(flagged.is_call_bombing) over debtor_calls, false
            ),
            false
        ) as starts_call_bombing_episode

    from flagged
    window debtor_calls as (
        partition by flagged.period, flagged.agency_uscc, flagged.debtor_ref, flagged.channel
        order by flagged.contact_at, flagged.event_id
    )

)

select
    episodes.period,
    episodes.agency_uscc,
    episodes.event_id,
    episodes.lender_uscc,
    episodes.debtor_ref,
    episodes.province_code,
    episodes.prefecture_code,
    episodes.contact_at_local,
    episodes.channel,
    episodes.target,
    episodes.is_telephony,
    episodes.is_third_party,
    episodes.starts_call_bombing_episode,
    episodes.channel = 'call' as is_call,
    episodes.channel = 'visit' as is_visit,
    coalesce(episodes.contact_of_debtor_day = 1, false) as opens_contacted_debtor_day,
    episodes.contact_at_local::time < rules.contact_window_start
    or episodes.contact_at_local::time >= rules.contact_window_end as is_out_of_hours,
    coalesce(episodes.contact_of_debtor_day > rules.max_contacts_per_debtor_day, false)
        as is_over_frequency,
    -- the contact that takes a debtor-day over the limit: one per offending debtor-day
    coalesce(episodes.contact_of_debtor_day = rules.max_contacts_per_debtor_day + 1, false)
        as opens_over_frequency_debtor_day,
    episodes.is_telephony and episodes.number_type = 'virtual' as is_virtual_number,
    episodes.channel = 'postcard' as is_postcard,
    episodes.channel = 'visit' and episodes.location_type = 'campus' as is_campus_visit,
    coalesce(episodes.is_call_bombing, false) as is_call_bombing,
    -- the debtor's first episode with this agency in the month: counts bombed debtors once
    coalesce(
        episodes.starts_call_bombing_episode
        and row_number() over (
            partition by
                episodes.period,
                episodes.agency_uscc,
                episodes.debtor_ref,
                episodes.starts_call_bombing_episode
            order by episodes.contact_at, episodes.event_id
        ) = 1,
        false
    ) as starts_first_call_bombing_episode

from episodes
cross join rules
