"""The event log and its projections on a PostgreSQL server (the extra ``postgresql``).

Nothing here is imported unless the database location is a PostgreSQL URL.
"""
