{#
    The current accepted version of every submission of one type, as a relation.

    raw/_current.parquet (rewritten whenever the versions are listed: every build lists them
    first) lists exactly the files that count; reading that list at run time keeps
    superseded and unverified versions out of the warehouse. When a type has no current submission, the empty typed file in
    raw/_schemas/ stands in, so every model still builds with the right columns.

    One read_parquet per period, its files' `period` the constant period of the manifest
    (intake rejects a file whose rows name another period than its own), the periods
    joined by `union all by name`. A filter on the period is then a constant comparison:
    DuckDB drops the other periods' reads before it plans, so reading one month opens only
    that month's files however many months the raw zone keeps, and each read is estimated
    at its own files' rows. (A filter on the files' own `period` column opened every month's
    footers for their statistics: a staging read grew with the history. A filter on the
    file names or on hive partitions was estimated at a few rows: a month's events became
    the hash table of their join to a small dimension and the build ran out of memory.)

    union_by_name, which reads every file's schema whenever a query binds the relation
    (~0.13 s per 2,400 contact logs), only for a period whose files do not all have the
    same columns (a file of an older contract, with a column added since): intake records
    each raw file's column signature in the manifest (raw_columns); a file listed without
    one counts as different.
#}
{% macro current_submissions(submission_type) %}
    {%- set raw_dir = env_var('COLLECTWATCH_RAW_DIR') -%}
    {%- set months = {} -%}
    {%- set same_columns = {} -%}
    {%- if execute -%}
        {%- set listing -%}
            select
                period,
                raw_path,
                count(distinct coalesce(raw_columns, raw_path)) over (partition by period) = 1
            from {{ source('raw', 'current_submissions') }}
            where submission_type = '{{ submission_type }}'
            order by period, raw_path
        {%- endset -%}
        {%- for period, path, same in run_query(listing).rows -%}
            {%- do months.setdefault(period, []).append(path) -%}
            {%- do same_columns.update({period: same}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if months | length > 0 -%}
        (
        {%- for period, paths in months.items() %}
            select * replace ('{{ period }}' as period)
            from read_parquet(
                [
                    {%- for path in paths %}
                    '{{ raw_dir }}/{{ path }}'{{ "," if not loop.last }}
                    {%- endfor %}
                ],
                union_by_name = {{ 'false' if same_columns[period] else 'true' }},
                hive_partitioning = false, filename = true
            )
            {{ "union all by name" if not loop.last }}
        {%- endfor %}
        )
    {%- else -%}
        read_parquet(
            '{{ raw_dir }}/_schemas/{{ submission_type }}.parquet',
            hive_partitioning = false, filename = true
        )
    {%- endif -%}
{% endmacro %}
