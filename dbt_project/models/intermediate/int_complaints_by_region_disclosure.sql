-- complaints_by_region's public cells (national and province, every category, zeros too):
-- the respondent institutions behind each count and the largest one's share, with the
-- primary suppression rules. A complaint's contributor is the institution it is about: its
-- respondent lender (every complaint about outsourced collection is attributable to one,
-- and lenders are the contributors of the portfolio tables too), else its respondent agency,
-- else its submitter.
with

complaints as (

    select
        *,
        coalesce(respondent_lender_uscc, respondent_agency_uscc, submitter_uscc) as respondent
    from {{ ref('int_complaints_deduplicated') }}

),

contributions as (

    {{ disclosure_contributions('complaints', 'respondent', '1', ['period', 'category']) }}

)

{{ public_cell_grid('contributions', 'category', 'complaint_categories') }}
