"""The SQL store: all SQL lives in this package. Callers pass a Session; use cases commit."""
