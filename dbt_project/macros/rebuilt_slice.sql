{#
    Per-submitter incremental models (materialization replace_slice).

    A model whose every window and group stays within one submitter's rows of one period
    (int_contact_events_flagged: an agency's calls to a debtor) need not rebuild a whole
    period when one agency resubmits. A partial build passes `changed_submitters` (macro
    run_var), one list of USCCs per submission type: the submitters with a submission of
    the run's periods received or decided since their last publication
    (collectwatch.rebuild), and `whole_periods`: the run's periods rebuilt whole beside them
    (never published before, say). Without it (a full build) every submitter's rows of the
    run's periods are rebuilt.

    rebuilt_slice() is the condition on the model's rows: the run's periods and, in a
    partial build, the changed submitters of `submission_type` or a period rebuilt whole.
    Over a staging model that reads the raw zone, `file_column` (its rows' raw file) also
    names those files (raw/<type>/period=<P>/submitter=<USCC>/v<N>.parquet): DuckDB then
    opens only those instead of every current file's footer to test the submitter column's
    statistics (~0.15 s a query over a national month's 2,400 contact logs). The
    submitter's own column stays the condition: intake rejects a row naming another
    submitter there (V013), so the file filter drops no row of the slice.
#}
{% macro rebuilt_slice(submission_type, submitter_column, file_column=none, tested=false) -%}
    {%- set branches = rebuilt_slice_branches(submission_type, submitter_column, file_column, tested) -%}
    {#- the run's periods first, a filter DuckDB's scan takes (a delete skips older months) -#}
    {%- if branches | length > 1 -%}
        {{ rebuilt_periods(tested=tested) }} and {% endif -%}
    {{ any_of(branches) }}
{%- endmacro %}

{#
    The rows of `relation` a replace_slice model rebuilds, as a query: every row when it is
    built whole; built incrementally, one `union all` branch per condition of
    rebuilt_slice_branches. slice['source_file_column']: the relation's raw file column, if
    it has one.
#}
{% macro rebuilt_slice_rows(relation, slice) -%}
    {%- if is_incremental() -%}
        {{ union_of(relation, rebuilt_slice_branches(
            slice['submission_type'], slice['submitter_column'], slice.get('source_file_column')
        )) }}
    {%- else -%}
        select * from {{ relation }}
    {%- endif -%}
{%- endmacro %}

{# The rows of `relation` meeting one of the (disjoint) conditions, a branch each. #}
{% macro union_of(relation, conditions) -%}
    {%- for condition in conditions -%}
        select * from {{ relation }} where {{ condition }}
        {{- "\n    union all\n    " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{# `column in (values)`; no value: `column in (null)`, true of no row. #}
{% macro in_list(column, values) -%}
    {{ column }} in (
        {%- for value in values -%}
            '{{ value }}'{{ ", " if not loop.last }}
        {%- else -%}
            null
        {%- endfor -%}
    )
{%- endmacro %}

{# One of the conditions: the one alone, or them or-ed in parentheses. #}
{% macro any_of(conditions) -%}
    {{ joined_conditions(conditions, 'or') }}
{%- endmacro %}

{# All of the conditions: the one alone, or them and-ed in parentheses. #}
{% macro all_of(conditions) -%}
    {{ joined_conditions(conditions, 'and') }}
{%- endmacro %}

{% macro joined_conditions(conditions, operator) -%}
    {%- if conditions | length == 1 -%}
        {{ conditions[0] }}
    {%- else -%}
        ({{ conditions | join(' ' ~ operator ~ ' ') }})
    {%- endif -%}
{%- endmacro %}

{#
    The raw files under one of the folders raw/<type>/.../<key>=<value>/ (a value of
    `values`), by their path in `file_column`: DuckDB opens only those files.
#}
{% macro in_raw_folders(file_column, key, values) -%}
    (
        {%- for value in values -%}
            contains({{ file_column }}, '/{{ key }}={{ value }}/'){{ " or " if not loop.last }}
        {%- endfor -%}
    )
{%- endmacro %}

{#
    Data tests of a per-submitter model test the rows the build rebuilt: a test whose
    `where` is "__rebuilt_slice__ <submission_type> <submitter_column> [<file_column>]"
    reads only the run's periods (macro rebuilt_periods, tested=true) and, in a partial
    build, only the changed submitters' rows of them (the others were tested when they were
    built and have not changed since); every row when the run names no periods. `file_column`
    (macro rebuilt_slice) is the relation's raw file column, if it has one; a test reading
    another relation under the same `where` passes that relation's (as_many_rows_as). Any
    other `where` is used as dbt's own get_where_subquery uses it, but for
    "__rebuilt_periods_overlap__ <list_column>": the rows of a model built from several
    periods' rows (replace_slice with replaced_keys) that hold one of the run's periods.
#}
{% macro get_where_subquery(relation, file_column=none) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and where.startswith('__rebuilt_slice__') -%}
        {%- set words = where.split()[1:] -%}
        {%- set own_file_column = words[2] if words | length > 2 else none -%}
        {%- set conditions = rebuilt_slice_branches(
            words[0], words[1], file_column or own_file_column, tested=true
        ) -%}
    {%- elif where and where.startswith('__rebuilt_periods_overlap__') -%}
        {%- set conditions = [rebuilt_periods_overlap(where.split()[1], tested=true)] -%}
    {%- elif where -%}
        {%- set conditions = [where] -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- do return('(' ~ union_of(relation, conditions) ~ ') dbt_subquery') -%}
{%- endmacro %}
