"""The upsert statement of one row shape: INSERT ... ON CONFLICT DO UPDATE, what sqlite-utils'
upsert does, in one statement built once per shape (the library rebuilds it and re-reads the
schema on every call). Every write of a record goes through it (storage/write_gate.py).

    sql = upsert_statement("kv", ("key", "value", "updated_at"), ("key",))
"""

# (table, columns, primary key) -> its upsert statement. No invalidation: the statement is
# a function of its key alone (it names the columns it writes; it never reads the schema),
# and the schema is fixed once the database is open (storage/db.py migrates before use).
_upsert_sql: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}


def upsert_statement(table: str, columns: tuple[str, ...], pk: tuple[str, ...]) -> str:
    """INSERT ... ON CONFLICT DO UPDATE: what sqlite-utils' upsert does, in one statement
    built once per shape (the library rebuilds it and re-reads the schema on every call)."""
    key = (table, columns, pk)
    sql = _upsert_sql.get(key)
    if sql is None:
        names = ", ".join(f"[{c}]" for c in columns)
        updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c not in pk)
        sql = (f"INSERT INTO [{table}] ({names}) VALUES ({', '.join('?' * len(columns))}) "
               f"ON CONFLICT ({', '.join(f'[{c}]' for c in pk)}) DO UPDATE SET {updates}")
        _upsert_sql[key] = sql
    return sql
