{#
    The current accepted version of every submission of one type, as a relation.

    raw/_current.parquet (written by intake after each decision) lists exactly the files
    that count; reading that list at run time keeps superseded and unverified versions
    out of the warehouse. When a type has no current submission, the empty typed file in
    raw/_schemas/ stands in, so every model still builds with the right columns.
#}
{% macro current_submissions(submission_type) %}
    {%- set raw_dir = env_var('COLLECTWATCH_RAW_DIR') -%}
    {%- set paths = [] -%}
    {%- if execute -%}
        {%- set listing -%}
            select raw_path
            from {{ source('raw', 'current_submissions') }}
            where submission_type = '{{ submission_type }}'
            order by raw_path
        {%- endset -%}
        {%- set paths = run_query(listing).columns[0].values() -%}
    {%- endif -%}
    {%- if paths | length > 0 -%}
        read_parquet([
            {%- for path in paths %}
            '{{ raw_dir }}/{{ path }}'{{ "," if not loop.last }}
            {%- endfor %}
        ], union_by_name = true, filename = true)
    {%- else -%}
        read_parquet('{{ raw_dir }}/_schemas/{{ submission_type }}.parquet', filename = true)
    {%- endif -%}
{% endmacro %}
