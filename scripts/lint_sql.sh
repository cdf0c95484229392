cd "$(dirname "$0")/.." && exec .venv/bin/sqlfluff lint dbt_project
