"""The upsert statement of one row shape: INSERT ... ON CONFLICT DO UPDATE, what sqlite-utils'
upsert does, in one statement built once per shape (the library rebuilds it and re-reads the
schema on every call). Every write of a record goes through it (storage/write_gate.py).

    sql = upsert_statement("kv", ("key", "value", "updated_at"), ("key",))
    sql, params = steady_update_statement("positions", columns, ("symbol", "key"),
                                          ("state", "closed_at"))
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


# (table, columns, primary key, steady columns) -> (its UPDATE, the columns of its parameters)
_steady_sql: dict[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]],
                  tuple[str, tuple[str, ...]] | None] = {}


def steady_update_statement(table: str, columns: tuple[str, ...], pk: tuple[str, ...],
                            steady: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    """UPDATE of the row's other columns WHERE its primary key and its `steady` columns hold
    the row's values (`IS`: NULL included), and the columns whose values are its parameters,
    in order; None when the row lacks a steady column. It changes one row, or none (a new
    row, or a steady column changed: the upsert writes it then).

    Why: SQLite rewrites an index's entry for every column an UPDATE sets, changed or not,
    so an upsert dirties a page of each index on them; a position saved with its state
    unchanged (most saves) dirties 1 page instead of 3 and its commit writes 2 WAL frames
    less."""
    key = (table, columns, pk, steady)
    if key in _steady_sql:
        return _steady_sql[key]
    statement: tuple[str, tuple[str, ...]] | None = None
    if all(column in columns for column in steady):
        written = tuple(c for c in columns if c not in pk and c not in steady)
        sets = ", ".join(f"[{c}] = ?" for c in written)
        where = " AND ".join([f"[{c}] = ?" for c in pk] + [f"[{c}] IS ?" for c in steady])
        statement = (f"UPDATE [{table}] SET {sets} WHERE {where}", written + pk + steady)
    _steady_sql[key] = statement
    return statement
