{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='period',
        on_schema_change='fail',
    )
}}

-- Every contact event with its conduct-rule flags, judged in local time (UTC+08:00).
-- Incremental by period: a night rebuilds only the periods it was asked to, so the big
-- table is not rescanned month after month. Windows stay within (agency, period): a
-- debtor-day or a call-bombing episode crossing a month boundary is judged per month.
with

events as (

    select * from {{ ref('stg_contact_events') }}
    {{ rebuilt_periods_filter() }}

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

-- The windows sort only the rows and columns they need (calls, SMS and AI calls: keys and
-- times), not whole events: at national scale (~58M events) sorting the wide rows spilled
-- ~11 GB and took four minutes. Their results are joined back to every event.
telephony as (

    select
        localised.period,
        localised.agency_uscc,
        localised.event_id,
        localised.debtor_ref,
        localised.contact_at,
        localised.channel,
        localised.counts_toward_frequency,
        localised.contact_at_local::date as contact_day

    from localised
    where localised.counts_toward_frequency or localised.channel = 'call'

),

sequenced as (

    select
        telephony.period,
        telephony.agency_uscc,
        telephony.event_id,
        telephony.debtor_ref,
        telephony.contact_at,
        telephony.channel,
        -- the n-th call/SMS/AI call of this agency to this debtor on this local day
        case
            when telephony.counts_toward_frequency
                then row_number() over (
                    partition by
                        telephony.period,
                        telephony.agency_uscc,
                        telephony.debtor_ref,
                        telephony.counts_toward_frequency,
                        telephony.contact_day
                    order by telephony.contact_at, telephony.event_id
                )
        end as contact_of_debtor_day,
        -- the agency's calls to this debtor in the window up to and including this one
        case
            when telephony.channel = 'call'
                then count(*) over (
                    partition by
                        telephony.period,
                        telephony.agency_uscc,
                        telephony.debtor_ref,
                        telephony.channel
                    order by telephony.contact_at
                    range between rules.call_bombing_window preceding
                    and current row
                )
        end as calls_in_window

    from telephony
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

),

windowed as (

    select
        episodes.period,
        episodes.agency_uscc,
        episodes.event_id,
        episodes.contact_of_debtor_day,
        episodes.is_call_bombing,
        episodes.starts_call_bombing_episode,
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

)

select
    localised.period,
    localised.agency_uscc,
    localised.event_id,
    localised.lender_uscc,
    localised.debtor_ref,
    localised.province_code,
    localised.prefecture_code,
    localised.contact_at_local,
    localised.channel,
    localised.target,
    localised.is_telephony,
    localised.is_third_party,
    coalesce(windowed.starts_call_bombing_episode, false) as starts_call_bombing_episode,
    localised.channel = 'call' as is_call,
    localised.channel = 'visit' as is_visit,
    coalesce(windowed.contact_of_debtor_day = 1, false) as opens_contacted_debtor_day,
    localised.contact_at_local::time < rules.contact_window_start
    or localised.contact_at_local::time >= rules.contact_window_end as is_out_of_hours,
    coalesce(windowed.contact_of_debtor_day > rules.max_contacts_per_debtor_day, false)
        as is_over_frequency,
    -- the contact that takes a debtor-day over the limit: one per offending debtor-day
    coalesce(windowed.contact_of_debtor_day = rules.max_contacts_per_debtor_day + 1, false)
        as opens_over_frequency_debtor_day,
    localised.is_telephony and localised.number_type = 'virtual' as is_virtual_number,
    localised.channel = 'postcard' as is_postcard,
    localised.channel = 'visit' and localised.location_type = 'campus' as is_campus_visit,
    coalesce(windowed.is_call_bombing, false) as is_call_bombing,
    coalesce(windowed.starts_first_call_bombing_episode, false)
        as starts_first_call_bombing_episode

from localised
left join windowed
    on
        localised.period = windowed.period
        and localised.agency_uscc = windowed.agency_uscc
        and localised.event_id = windowed.event_id
cross join rules
