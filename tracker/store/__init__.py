"""The SQL store: all SQL lives in this package. Callers pass a Session; use cases commit."""


def chunks(ids: list, size: int = 500):
    """`ids` in slices of `size`: an IN list stays under every backend's limit on bound
    parameters (65,535 on PostgreSQL; 32,766 in some SQLite builds)."""
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def insert_rows(session, table, rows: list[dict]) -> None:
    """INSERT many rows of one Core table, each dict with the same keys (Python-side column
    defaults are not applied). On SQLite the rows go to the driver's executemany through
    the columns' own bind processors: SQLAlchemy's general per-row parameter handling costs
    more than SQLite's insert itself (bench/ingest, three inserts per ingested paper).
    Errors and events still go through SQLAlchemy. Elsewhere, the usual Core executemany."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite":
        from sqlalchemy import insert

        session.execute(insert(table), rows)
        return
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    processors = [(i, process) for i, column in enumerate(columns)
                  if (process := column.type.dialect_impl(dialect).bind_processor(dialect))]
    values = [[row[name] for name in names] for row in rows]
    for i, process in processors:
        for row in values:
            row[i] = process(row[i])
    sql = (f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) "
           f"VALUES ({', '.join('?' * len(columns))})")
    connection.exec_driver_sql(sql, [tuple(row) for row in values])
