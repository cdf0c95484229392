with

source as (

    select * from {{ current_submissions('agency_caseload') }}

),

renamed as (

    select
        -- keys
        period,
        agency_uscc,
        lender_uscc,
        region_code,
        -- received
        cases_received,
        balance_received,
        -- outcome and capacity
        amount_recovered,
        commission_received,
        collectors,
        -- lineage: the raw-zone file this row came from
        filename as raw_file

    from source

)

select * from renamed
