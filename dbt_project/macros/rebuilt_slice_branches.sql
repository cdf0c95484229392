{#
    rebuilt_slice() as disjoint conditions, each a conjunction (no `or` of two columns): in
    a partial build, the periods rebuilt whole; the other periods' changed submitters. Read
    as one `union all` branch each (macro rebuilt_slice_rows), every branch's period and
    submitter reach DuckDB's scan as filters of their own: a period the build only slices
    is skipped by its zone maps but for the changed submitters' rows. (One condition with an
    `or` across period and submitter is evaluated above the scan, on every row of every run
    period: on a national night with a new month and one agency's late correction of the
    published month, the reads of the events' slice took 13 s more of the 210 s build,
    bench/README.md 2026-12-07.)

    A file of its own: it returns a list (dbt's return()), which sqlfluff's jinja templater
    hands back only to a macro of another file.
#}
{% macro rebuilt_slice_branches(submission_type, submitter_column, file_column=none, tested=false) -%}
    {%- set changed = run_var('changed_submitters') -%}
    {%- if changed is not mapping -%}
        {{ return([rebuilt_periods(tested=tested) | trim]) }}
    {%- endif -%}
    {%- set periods = run_var('periods') or [] -%}
    {%- if periods | length == 0 -%}
        {{ exceptions.raise_compiler_error("a partial build needs var 'periods'") }}
    {%- endif -%}
    {%- set whole_periods = run_var('whole_periods') or [] -%}
    {%- set whole = periods | select('in', whole_periods) | list -%}
    {%- set sliced = periods | reject('in', whole_periods) | list -%}
    {%- set submitters = changed.get(submission_type, []) -%}
    {%- set branches = [] -%}
    {%- if whole -%}
        {%- set conditions = [in_list('period', whole)] -%}
        {%- do conditions.append(in_raw_folders(file_column, 'period', whole)) if file_column -%}
        {%- do branches.append(all_of(conditions)) -%}
    {%- endif -%}
    {%- if sliced and submitters -%}
        {%- set conditions = [in_list('period', sliced), in_list(submitter_column, submitters)] -%}
        {%- do conditions.append(in_raw_folders(file_column, 'submitter', submitters)) if file_column -%}
        {%- do branches.append(all_of(conditions)) -%}
    {%- endif -%}
    {{ return(branches or ['false']) }}
{%- endmacro %}
