{#
    A contracted mart's column constraints (NOT NULL, CHECK: its bounds and accepted values)
    are DuckDB's own: it checks them on every insert, so a night spends no data-test node on
    them (~260 nodes, ~30 ms each). A table takes its constraints only when it is created,
    though, and a night inserts into the table the warehouse already holds: one built before
    a constraint was declared, changed or dropped would go on checking the old ones. This
    post-hook compares the table's constraints with those the contract declares (DuckDB
    normalises both: the declared ones are read back from an empty temporary table made
    with them) and fails the model, naming each difference, until a full refresh recreates
    the table (docs/operations.md, "Upgrading").
#}
{% macro assert_declared_constraints() -%}
    {%- if model.config.contract.enforced -%}
        {%- set declared = this.identifier ~ '__declared_constraints' -%}
        {%- set constraints_of -%}
            select constraint_type, constraint_text, constraint_column_names
            from duckdb_constraints()
            where constraint_type in ('NOT NULL', 'CHECK') and table_name =
        {%- endset -%}
        create or replace temporary table {{ declared }} {{ get_table_columns_and_constraints() }};
        with
        declared as (
            {{ constraints_of }} '{{ declared }}' and database_name = 'temp'
        ),
        built as (
            {{ constraints_of }} '{{ this.identifier }}'
            and database_name = '{{ this.database }}' and schema_name = '{{ this.schema }}'
        ),
        differences as (
            select 'declared but missing: ' || constraint_text
                || ' on ' || array_to_string(constraint_column_names, ', ') as difference
            from (select * from declared except all select * from built)
            union all
            select 'in the table but not declared: ' || constraint_text
                || ' on ' || array_to_string(constraint_column_names, ', ')
            from (select * from built except all select * from declared)
        )
        select error(
            '{{ this.identifier }} was created before its contract''s constraints changed ('
            || string_agg(difference, '; ' order by difference)
            || '): rebuild it with a full refresh (docs/operations.md, "Upgrading")'
        )
        from differences
        having count(*) > 0;
        drop table {{ declared }}
    {%- endif -%}
{%- endmacro %}
