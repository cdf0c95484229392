with

source as (

    select * from {{ current_submissions('agency_assignment') }}

),

renamed as (

    select
        -- keys
        period,
        lender_uscc,
        agency_uscc,
        region_code,
        bucket,
        -- assigned
        cases_assigned,
        balance_assigned,
        -- outcome and fees
        amount_recovered,
        commission_paid,
        commission_rate,
        -- lineage: the raw-zone file this row came from
        filename as raw_file

    from source

)

select * from renamed
