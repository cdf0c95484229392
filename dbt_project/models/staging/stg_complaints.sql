with

source as (

    select * from {{ current_submissions('complaints') }}

),

renamed as (

    select
        -- keys
        period,
        source,
        submitter_uscc,
        complaint_id,
        -- attribution
        regulator_ref,
        respondent_lender_uscc,
        respondent_agency_uscc,
        region_code,
        -- the complaint
        category,
        channel,
        received_at,
        resolved_at,
        status,
        -- lineage: the raw-zone file this row came from
        filename as raw_file

    from source

)

select * from renamed
