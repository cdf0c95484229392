-- Lenders' assignments to agencies placed in the region hierarchy (counties roll up).
with

assignments as (

    select * from {{ ref('stg_agency_assignment') }}

),

regions as (

    select * from {{ ref('regions') }}

)

select
    assignments.*,
    regions.province_code,
    coalesce(regions.prefecture_code, assignments.region_code) as prefecture_code

from assignments
inner join regions
    on assignments.region_code = regions.region_code
