{#
    A one-row relation of the conduct-rule thresholds (seed conduct_rules), one column per
    threshold, to cross join where a rule is applied: no threshold is a literal in SQL.
#}
{% macro conduct_thresholds() %}
select
    max(window_start) filter (where rule_id = 'out_of_hours') as contact_window_start,
    max(window_end) filter (where rule_id = 'out_of_hours') as contact_window_end,
    max(limit_count) filter (where rule_id = 'over_frequency') as max_contacts_per_debtor_day,
    max(limit_count) filter (where rule_id = 'call_bombing') as call_bombing_calls,
    to_minutes(max(window_minutes) filter (where rule_id = 'call_bombing')) as call_bombing_window
from {{ ref('conduct_rules') }}
{% endmacro %}

{# The value of one threshold of the supervision_thresholds seed, as a scalar subquery. #}
{% macro supervision_threshold(threshold_id) %}
(select threshold from {{ ref('supervision_thresholds') }} where threshold_id = '{{ threshold_id }}')
{% endmacro %}

{# The deduplication key of a complaint record (DESIGN Decision 13). #}
{% macro complaint_key(relation) %}
coalesce(
    {{ relation }}.regulator_ref,
    concat_ws(
        ':',
        {{ relation }}.period,
        {{ relation }}.source,
        {{ relation }}.submitter_uscc,
        {{ relation }}.complaint_id
    )
)
{% endmacro %}
