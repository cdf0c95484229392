-- The registry as it stands: each institution's row from the latest registry period, with
-- the receipt time of that registry version. The snapshot institution_registry_history
-- records every change of it across nights.
with

registry as (

    select * from {{ ref('stg_institution_registry') }}

),

registry_versions as (

    select
        period,
        received_at::timestamptz as registry_received_at
    from {{ source('raw', 'current_submissions') }}
    where submission_type = 'institution_registry'

)

select
    registry.uscc,
    registry.period as registry_period,
    registry.name_zh,
    registry.name_en,
    registry.kind,
    registry.role,
    registry.region_code,
    registry.licence_no,
    registry.status,
    registry.valid_from,
    registry.valid_to,
    registry_versions.registry_received_at

from registry
inner join registry_versions
    on registry.period = registry_versions.period
qualify row_number() over (partition by registry.uscc order by registry.period desc) = 1
