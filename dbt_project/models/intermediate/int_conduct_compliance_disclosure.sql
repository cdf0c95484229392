-- conduct_compliance's public cells (national and province, zeros too): the agencies whose
-- contact events make each cell and the largest agency's share of its contacts, with the
-- primary suppression rules.
with

conduct as (

    select * from {{ ref('int_conduct_by_agency_lender_prefecture') }}

),

contributions as (

    {{ disclosure_contributions('conduct', 'agency_uscc', 'contacts') }}

)

{{ public_cell_grid('contributions') }}
