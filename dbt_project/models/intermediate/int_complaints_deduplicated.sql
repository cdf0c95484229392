{{
    config(
        materialized='replace_slice',
        meta={'replaced_keys': {'key_column': 'complaint_key', 'periods_column': 'copy_periods'}},
    )
}}

-- One row per complaint (DESIGN Decision 13): copies of a complaint forwarded by the
-- regulator's hotline share its regulator_ref; the hotline's record is kept, the others
-- dropped. Without a regulator_ref a record is its own complaint: source || complaint_id,
-- qualified by submitter and period because ids are unique only within a submission.
-- A respondent missing from the kept record is taken from another copy, so a complaint
-- stays attributed to both the lender and the agency when any copy names them.
--
-- Incremental by key (materialization replace_slice, meta replaced_keys): copies sharing a
-- regulator_ref may be filed in different months, so a night rebuilds every complaint with a
-- copy in its periods — now, or before (copy_periods: a copy withdrawn by a resubmission) —
-- from its copies of every month, kept in int_complaint_copies: the raw files of the months
-- it does not rebuild are not read again.
with

copies as (

    select * from {{ ref('int_complaint_copies') }}
    {% if is_incremental() -%}
        -- the complaints with a copy in the run's periods: now, or before this build
        where complaint_key in (
            select rebuilt.complaint_key from {{ ref('int_complaint_copies') }} as rebuilt
            where {{ rebuilt_periods('rebuilt.period') }}
            union
            select built.complaint_key from {{ this }} as built
            where {{ rebuilt_periods_overlap('built.copy_periods') }}
        )
    {%- endif %}

),

keyed as (

    select
        copies.*,
        row_number() over (
            partition by copies.complaint_key
            order by
                copies.source = 'hotline' desc,
                copies.period asc,
                copies.submitter_uscc asc,
                copies.complaint_id asc
        ) as preference

    from copies

),

respondents as (

    select
        complaint_key,
        min_by(respondent_lender_uscc, preference) filter (
            where respondent_lender_uscc is not null
        ) as respondent_lender_uscc,
        min_by(respondent_agency_uscc, preference) filter (
            where respondent_agency_uscc is not null
        ) as respondent_agency_uscc,
        count(*) as copies,
        list(distinct period order by period) as copy_periods

    from keyed
    group by 1

),

kept as (

    select * from keyed
    where preference = 1

),

placed as (

    {{ placed_in_regions('kept') }}

),

thresholds as (

    select {{ supervision_threshold('timely_resolution_days') }} as timely_resolution_days

)

select
    placed.period,
    placed.complaint_key,
    placed.source,
    placed.submitter_uscc,
    placed.complaint_id,
    placed.regulator_ref,
    respondents.respondent_lender_uscc,
    respondents.respondent_agency_uscc,
    respondents.copies,
    respondents.copy_periods,
    placed.province_code,
    placed.prefecture_code,
    placed.category,
    placed.received_at,
    placed.resolved_at,
    placed.status,
    coalesce(
        placed.resolved_at
        <= placed.received_at + to_days(thresholds.timely_resolution_days::integer),
        false
    ) as is_resolved_in_time

from placed
inner join respondents on placed.complaint_key = respondents.complaint_key
cross join thresholds
