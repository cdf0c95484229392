-- Lender portfolio rows placed in the region hierarchy: county codes roll up to their
-- prefecture-equivalent, so every row has a province and a prefecture.
with

portfolio as (

    select * from {{ ref('stg_lender_portfolio') }}

),

regions as (

    select * from {{ ref('regions') }}

)

select
    portfolio.*,
    regions.province_code,
    coalesce(regions.prefecture_code, portfolio.region_code) as prefecture_code

from portfolio
inner join regions
    on portfolio.region_code = regions.region_code
