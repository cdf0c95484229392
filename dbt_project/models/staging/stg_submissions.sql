with

source as (

    select * from {{ source('raw', 'submissions') }}

),

renamed as (

    select
        -- keys
        submission_id,
        submitter_uscc,
        submission_type,
        period,
        sequence,
        -- lifecycle
        status,
        received_at,
        decided_at,
        -- a version that passed every reject edit, even if later superseded
        status in ('accepted', 'superseded', 'needs_verification') as passed_edits

    from source

)

select * from renamed
