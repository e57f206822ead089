"""The SQL store: all SQL lives in this package. Callers pass a Session; use cases commit."""


def chunks(ids: list, size: int = 500):
    """`ids` in slices of `size`: an IN list stays under every backend's limit on bound
    parameters (65,535 on PostgreSQL; 32,766 in some SQLite builds)."""
    for i in range(0, len(ids), size):
        yield ids[i:i + size]
