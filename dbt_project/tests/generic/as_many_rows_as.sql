{#
    The model has as many rows as `compared_model` under the same `where` (the rebuilt slice,
    macro get_where_subquery). For a model that selects from `compared_model`, whose key is
    tested unique there, and joins only seeds on their unique keys (a join that can drop a
    row but not double one), equal counts mean one row for each of its rows: none lost,
    none doubled, the key still unique. Two counts instead of grouping every key again
    (int_contact_events_flagged: tens of millions of events a month). `compared_file_column`:
    the compared model's raw file column, if it has one (macro rebuilt_slice).
#}
{% test as_many_rows_as(model, compared_model, compared_file_column=none) %}
select here.row_count, there.row_count as compared_row_count
from (select count(*) as row_count from {{ model }}) as here
cross join
    (select count(*) as row_count from {{ get_where_subquery(compared_model, compared_file_column) }}) as there
where here.row_count <> there.row_count
{% endtest %}
