{#
    The additive conduct counts, as sums of the per-event flags of int_contact_events_flagged
    (or of an aggregate of them with the same column names, when `rows_are_counts`).
    One list, so every aggregate of conduct carries the same measures in the same order.
#}
{% macro conduct_count_columns() %}
    {{ return([
        ('contacts', 'true'),
        ('calls', 'is_call'),
        ('telephony_contacts', 'is_telephony'),
        ('visits', 'is_visit'),
        ('contacted_debtor_days', 'opens_contacted_debtor_day'),
        ('out_of_hours_contacts', 'is_out_of_hours'),
        ('over_frequency_contacts', 'is_over_frequency'),
        ('over_frequency_debtor_days', 'opens_over_frequency_debtor_day'),
        ('third_party_contacts', 'is_third_party'),
        ('emergency_contact_contacts', "target = 'emergency_contact'"),
        ('family_contacts', "target = 'family'"),
        ('other_third_party_contacts', "target = 'third_party'"),
        ('virtual_number_contacts', 'is_virtual_number'),
        ('postcard_contacts', 'is_postcard'),
        ('campus_visits', 'is_campus_visit'),
        ('call_bombing_calls', 'is_call_bombing'),
        ('call_bombing_episodes', 'starts_call_bombing_episode'),
        ('call_bombing_debtors', 'starts_first_call_bombing_episode'),
    ]) }}
{% endmacro %}

{% macro conduct_counts(rows_are_counts=false) %}
    {%- for name, condition in conduct_count_columns() -%}
        {%- if rows_are_counts -%}
    sum({{ name }})::bigint as {{ name }}{{ ", " if not loop.last }}
        {%- else -%}
    count(*) filter (where {{ condition }})::bigint as {{ name }}{{ ", " if not loop.last }}
        {%- endif -%}
    {%- endfor -%}
{% endmacro %}

{# The conduct count columns of `relation`, as a select list. #}
{% macro conduct_count_list(relation) %}
    {%- for name, condition in conduct_count_columns() -%}
    {{ relation }}.{{ name }}{{ ", " if not loop.last }}
    {%- endfor -%}
{% endmacro %}

{# The conduct counts of `relation`, zero where it has no row (after an outer join). #}
{% macro coalesced_conduct_counts(relation) %}
    {%- for name, condition in conduct_count_columns() -%}
    coalesce({{ relation }}.{{ name }}, 0)::bigint as {{ name }}{{ ", " if not loop.last }}
    {%- endfor -%}
{% endmacro %}

{#
    One row per (period, key, metric) of `relation`: the metrics as doubles under their
    names, so thresholds named like the metrics can be joined to them.
#}
{% macro metrics_long(relation, key, metrics) %}
    {%- for metric in metrics -%}
    select period, {{ key }}, '{{ metric }}' as metric, {{ metric }}::double as metric_value
    from {{ relation }}
    {{ " union all " if not loop.last }}
    {%- endfor -%}
{% endmacro %}

{#
    The shares of the conduct rules over their denominators (documented in marts.yml), from
    columns named as in conduct_count_columns(), qualified by `relation`.
#}
{% macro conduct_share_columns() %}
    {{ return([
        ('out_of_hours_share', 'out_of_hours_contacts', 'contacts'),
        ('over_frequency_share', 'over_frequency_debtor_days', 'contacted_debtor_days'),
        ('third_party_share', 'third_party_contacts', 'contacts'),
        ('virtual_number_share', 'virtual_number_contacts', 'telephony_contacts'),
        ('postcard_share', 'postcard_contacts', 'contacts'),
        ('campus_visit_share', 'campus_visits', 'visits'),
        ('call_bombing_share', 'call_bombing_calls', 'calls'),
    ]) }}
{% endmacro %}

{% macro conduct_shares(relation) %}
    {%- for name, numerator, denominator in conduct_share_columns() -%}
    round({{ relation }}.{{ numerator }} / nullif({{ relation }}.{{ denominator }}, 0), 6)::double
        as {{ name }}{{ ", " if not loop.last }}
    {%- endfor -%}
{% endmacro %}

{#
    Every conduct count and share of `relation`, emptied where the cell is suppressed
    (disclosure control of the public conduct table).
#}
{% macro suppressed_conduct_measures(relation) %}
    {%- for name, condition in conduct_count_columns() -%}
    {{ suppressed_measure(relation ~ '.' ~ name, relation ~ '.suppressed') }} as {{ name }},
    {% endfor -%}
    {%- for name, numerator, denominator in conduct_share_columns() -%}
    {{ suppressed_measure(relation ~ '.' ~ name, relation ~ '.suppressed') }} as {{ name }}{{ ", " if not loop.last }}
    {% endfor -%}
{% endmacro %}
