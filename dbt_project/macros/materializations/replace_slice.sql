{#
    Materialization replace_slice: an incremental model that rebuilds a slice of its rows in
    place. Its meta names the slice, one of:
    - rebuilt_slice: {'submission_type': ..., 'submitter_column': ...} — per submitter (macro
      rebuilt_slice): the run's periods and, in a partial build, the changed submitters'
      rows of them. The model's query gives the slice's rows.
    - replaced_keys: {'key_column': ..., 'periods_column': ...} — per key, for a model whose
      row gathers rows of several periods (int_complaints_deduplicated: a complaint's copies).
      The model's query gives the rows of every key it rebuilds, reading the table as it was
      before; a row is replaced when its key is rebuilt or when its periods_column (a list:
      the periods its row was built from) holds one of the run's periods — a key none of
      whose rows are left loses its row.

    Built incrementally (is_incremental()), it deletes the model's slice and inserts the
    model's query into it, in one transaction. Unlike delete+insert on a unique key, a
    submitter whose rows are gone (a withdrawn log) loses them too. dbt-duckdb's incremental
    materialization would first write the query into a temporary table and copy it from
    there: for the national month's 58M flagged events that made the model 134 s against the
    first night's 107 s (bench/README.md, 2026-12-06). Per key, the query's rows are written
    to a temporary table first (its keys are the ones to delete, and it reads the rows it
    replaces): in memory, not in the warehouse file, 0.2–1 s less for a national month's
    500k complaints.

    The query's columns must be the table's, by name, order and type (what
    on_schema_change='fail' checks for an incremental model): a model whose columns changed
    fails, naming them, until it is rebuilt with --full-refresh. First build or
    --full-refresh: the whole table is built under a new name and swapped in, as a table
    model is.
#}
{% materialization replace_slice, adapter='duckdb' %}
    {%- set meta = config.get('meta') or {} -%}
    {%- set slice = meta.get('rebuilt_slice') -%}
    {%- set keys = meta.get('replaced_keys') -%}
    {%- if not (slice or keys) -%}
        {{ exceptions.raise_compiler_error(
            "a replace_slice model needs meta.rebuilt_slice (submission_type, submitter_column)"
            ~ " or meta.replaced_keys (key_column, periods_column)") }}
    {%- endif -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set backup_relation = make_backup_relation(
        target_relation, 'table' if existing_relation is none else existing_relation.type
    ) -%}
    {%- set incremental = is_incremental() -%}

    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    -- `BEGIN` happens here:
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% if incremental %}
        {%- set columns = replace_slice_columns(target_relation, compiled_code) -%}
        {% if slice %}
            {% call statement('main') -%}
                delete from {{ target_relation }}
                where {{ rebuilt_slice(slice['submission_type'], slice['submitter_column']) }};

                insert into {{ target_relation }} ({{ columns | join(', ') }})
                select {{ columns | join(', ') }} from (
                    {{ compiled_code }}
                ) as rebuilt_slice
            {%- endcall %}
        {% else %}
            {%- set key = adapter.quote(keys['key_column']) -%}
            {%- set rebuilt = adapter.quote(intermediate_relation.identifier) -%}
            {% call statement('main') -%}
                create temporary table {{ rebuilt }} as (
                    {{ compiled_code }}
                );

                delete from {{ target_relation }}
                where {{ key }} in (select {{ key }} from {{ rebuilt }})
                    or {{ rebuilt_periods_overlap(adapter.quote(keys['periods_column'])) }};

                insert into {{ target_relation }} ({{ columns | join(', ') }})
                select {{ columns | join(', ') }} from {{ rebuilt }};

                drop table {{ rebuilt }}
            {%- endcall %}
        {% endif %}
    {% else %}
        {% call statement('main') -%}
            {{ create_table_as(False, intermediate_relation, compiled_code) }}
        {%- endcall %}
        {% if existing_relation is not none %}
            {{ adapter.rename_relation(existing_relation, backup_relation) }}
        {% endif %}
        {{ adapter.rename_relation(intermediate_relation, target_relation) }}
    {% endif %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do persist_docs(target_relation, model) %}
    -- `COMMIT` happens here
    {{ adapter.commit() }}
    {{ drop_relation_if_exists(backup_relation) }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{#
    The table's columns, quoted, once the model's query is known to give the same names,
    order and types (DESCRIBE binds the query without running it).
#}
{% macro replace_slice_columns(relation, sql) %}
    {%- set table_columns = run_query('describe ' ~ relation) -%}
    {%- set table = described_columns(table_columns) -%}
    {%- set query = described_columns(
        run_query('describe select * from (' ~ sql ~ '\n) as model_query')
    ) -%}
    {%- if table != query -%}
        {{ exceptions.raise_compiler_error(
            relation ~ ": the model's columns are not the table's (only in the model: "
            ~ (query | reject('in', table) | join(', ') or 'none')
            ~ "; only in the table: " ~ (table | reject('in', query) | join(', ') or 'none')
            ~ "; or in another order): rebuild it with --full-refresh") }}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for row in table_columns.rows -%}
        {%- do quoted.append(adapter.quote(row['column_name'])) -%}
    {%- endfor -%}
    {{ return(quoted) }}
{% endmacro %}

{# "<name> <type>" of each column a DESCRIBE listed, in order. #}
{% macro described_columns(described) %}
    {%- set columns = [] -%}
    {%- for row in described.rows -%}
        {%- do columns.append(row['column_name'] ~ ' ' ~ row['column_type']) -%}
    {%- endfor -%}
    {{ return(columns) }}
{% endmacro %}
