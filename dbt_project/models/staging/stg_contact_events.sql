with

source as (

    select * from {{ current_submissions('contact_events') }}

),

renamed as (

    select
        -- keys
        period,
        agency_uscc,
        event_id,
        -- who (pseudonymised)
        lender_uscc,
        case_ref,
        debtor_ref,
        region_code,
        -- the contact
        contact_at,
        channel,
        target,
        number_type,
        duration_s,
        outcome,
        location_type,
        -- lineage: the raw-zone file this row came from
        filename as raw_file

    from source

)

select * from renamed
