-- A table: the deduplication window runs over every period's complaints, and the regional,
-- supervision and disclosure models read the result.
{{ config(materialized='table') }}

-- One row per complaint (DESIGN Decision 13): copies of a complaint forwarded by the
-- regulator's hotline share its regulator_ref; the hotline's record is kept, the others
-- dropped. Without a regulator_ref a record is its own complaint: source || complaint_id,
-- qualified by submitter and period because ids are unique only within a submission.
-- A respondent missing from the kept record is taken from another copy, so a complaint
-- stays attributed to both the lender and the agency when any copy names them.
with

complaints as (

    select * from {{ ref('stg_complaints') }}

),

keyed as (

    select
        complaints.*,
        {{ complaint_key('complaints') }} as complaint_key,
        row_number() over (
            partition by {{ complaint_key('complaints') }}
            order by
                complaints.source = 'hotline' desc,
                complaints.period asc,
                complaints.submitter_uscc asc,
                complaints.complaint_id asc
        ) as preference

    from complaints

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
        count(*) as copies

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
