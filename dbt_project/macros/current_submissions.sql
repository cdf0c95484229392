{#
    The current accepted version of every submission of one type, as a relation.

    raw/_current.parquet (written by intake after each decision) lists exactly the files
    that count; reading that list at run time keeps superseded and unverified versions
    out of the warehouse. When a type has no current submission, the empty typed file in
    raw/_schemas/ stands in, so every model still builds with the right columns.

    hive_partitioning = false: `period` is each file's own column (intake checked it equals
    the period in its path), not the folder name. With DuckDB's hive partitioning a filter
    on the period was estimated from the first listed file: about one row for every later
    period, so a month's rows became the hash table of their join to a small dimension and
    the second national month's build ran out of memory (int_contact_events_flagged, 58M
    events, at 4 and at 8 GB). DuckDB still skips the other periods' row groups by their
    statistics.
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
        {%- set files -%}
        [
            {%- for path in paths %}
            '{{ raw_dir }}/{{ path }}'{{ "," if not loop.last }}
            {%- endfor %}
        ]
        {%- endset -%}
        read_parquet({{ files }}, union_by_name = {{ 'false' if same_columns(files) else 'true' }},
            hive_partitioning = false, filename = true)
    {%- else -%}
        read_parquet(
            '{{ raw_dir }}/_schemas/{{ submission_type }}.parquet',
            hive_partitioning = false, filename = true
        )
    {%- endif -%}
{% endmacro %}

{#
    Whether every file of the list has the same columns (names and types, in order). Then
    union_by_name, which reads every file's schema each time a query binds the relation
    (~0.13 s for 2,400 contact logs, paid by every model and test that reads a staging
    view), is not needed: the files are read as the first one's columns. A file of an older
    contract (a column added since) turns it back on. One look at the schemas per build.
#}
{% macro same_columns(files) %}
    {%- set query -%}
        select count(distinct columns) <= 1
        from (
            select string_agg(name || ' ' || duckdb_type, ', ' order by column_id) as columns
            from parquet_schema({{ files }})
            where column_id > 0
            group by file_name
        )
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{% endmacro %}
