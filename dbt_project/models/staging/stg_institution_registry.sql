with

source as (

    select * from {{ current_submissions('institution_registry') }}

),

renamed as (

    select
        -- keys
        period,
        uscc,
        -- identity
        name_zh,
        name_en,
        kind,
        role,
        region_code,
        licence_no,
        -- licence
        status,
        valid_from,
        valid_to,
        -- lineage: the raw-zone file this row came from
        filename as raw_file

    from source

)

select * from renamed
