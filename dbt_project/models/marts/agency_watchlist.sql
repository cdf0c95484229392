{{ config(contract={'enforced': true}) }}

-- Agencies at or above any agency threshold of the supervision_thresholds seed, with the
-- thresholds they breach. Internal: published in internal/ only (DESIGN Decision 6).
with

agencies as (

    select * from {{ ref('agency_supervision') }}
    {{ rebuilt_periods_filter() }}

),

thresholds as (

    select * from {{ ref('supervision_thresholds') }}
    where applies_to = 'agency'

),

-- one row per agency and metric a threshold can apply to (the threshold_id names it)
metrics as (

    {{ metrics_long('agencies', 'agency_uscc', [
        'complaints_per_10k_cases',
        'out_of_hours_share',
        'over_frequency_share',
        'third_party_share',
        'virtual_number_share',
        'postcard_share',
        'campus_visit_share',
        'call_bombing_episodes',
    ]) }}

),

breaches as (

    select
        metrics.period,
        metrics.agency_uscc,
        count(*) as thresholds_breached,
        string_agg(metrics.metric, ';' order by metrics.metric) as breached_thresholds

    from metrics
    inner join thresholds on metrics.metric = thresholds.threshold_id
    where metrics.metric_value >= thresholds.threshold
    group by 1, 2

)

select
    agencies.period,
    agencies.agency_uscc,
    agencies.agency_name_zh,
    agencies.agency_name_en,
    breaches.thresholds_breached::integer as thresholds_breached,
    breaches.breached_thresholds,
    agencies.cases_received,
    agencies.complaints,
    agencies.complaints_per_10k_cases,
    agencies.contacts,
    agencies.out_of_hours_contacts,
    agencies.out_of_hours_share,
    agencies.over_frequency_debtor_days,
    agencies.over_frequency_share,
    agencies.third_party_contacts,
    agencies.third_party_share,
    agencies.virtual_number_contacts,
    agencies.virtual_number_share,
    agencies.postcard_contacts,
    agencies.postcard_share,
    agencies.campus_visits,
    agencies.campus_visit_share,
    agencies.call_bombing_episodes,
    agencies.call_bombing_debtors,
    {{ release_status('agencies.period') }} as release_status

from agencies
inner join breaches
    on
        agencies.period = breaches.period
        and agencies.agency_uscc = breaches.agency_uscc
