-- The regions a published table can have a row for, with names and the parent a level's
-- totals roll up into: the nation ('000000'), provinces and prefecture-equivalents.
with

regions as (

    select * from {{ ref('regions') }}

)

select
    '000000' as region_code,
    'national' as level,
    '全国' as region_name_zh,
    'National' as region_name_en,
    null as parent_region_code

union all

select
    region_code,
    level,
    name_zh as region_name_zh,
    name_en as region_name_en,
    case level when 'province' then '000000' else province_code end as parent_region_code

from regions
where level in ('province', 'prefecture')
