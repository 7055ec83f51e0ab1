"""The application layer: command handlers, the write session and the queries."""
