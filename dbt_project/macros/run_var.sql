{#
    A value of this run: periods, as_of, changed_submitters, whole_periods.

    The pipeline passes them in env var COLLECTWATCH_DBT_RUN (JSON), not as --vars: dbt
    parses the whole project again whenever --vars differ from its last parse (~5 s of
    every build, and they differ every run). The env var is read only when SQL is run,
    not while parsing (`execute`), so no file is parsed again because it changed. A name
    the env var does not hold is var(name): `dbt build --vars '{periods: [...]}'` by
    hand works as before.
#}
{% macro run_var(name) -%}
    {%- set run = fromjson(env_var('COLLECTWATCH_DBT_RUN', '{}')) if execute else {} -%}
    {{ return(run[name] if name in run else var(name)) }}
{%- endmacro %}
