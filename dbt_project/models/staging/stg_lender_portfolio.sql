with

source as (

    select * from {{ current_submissions('lender_portfolio') }}

),

renamed as (

    select
        -- keys
        period,
        lender_uscc,
        region_code,
        bucket,
        -- stock at month end
        accounts,
        balance,
        accounts_outsourced,
        balance_outsourced,
        -- flows in the month
        recovered_inhouse,
        recovered_outsourced,
        written_off,
        sold_balance,
        litigated_accounts,
        -- lineage: the raw-zone file this row came from
        filename as raw_file

    from source

)

select * from renamed
