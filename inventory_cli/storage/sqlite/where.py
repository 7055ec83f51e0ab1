"""WHERE clauses that compose: a list of conditions joined with AND, and their parameters."""

from __future__ import annotations


class Where:
    """Conditions added one by one; a condition whose value is None is left out."""

    __slots__ = ("conditions", "params")

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.params: list[object] = []

    def add(self, condition: str, *params: object) -> Where:
        """A condition always applied, with the parameters of its placeholders."""
        self.conditions.append(condition)
        self.params.extend(params)
        return self

    def equals(self, column: str, value: object) -> Where:
        return self if value is None else self.add(f"{column} = ?", value)

    def above(self, column: str, value: object) -> Where:
        return self if value is None else self.add(f"{column} > ?", value)

    def at_most(self, column: str, value: object) -> Where:
        return self if value is None else self.add(f"{column} <= ?", value)

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def sql(self) -> str:
        """`` WHERE a AND b`` (with its leading space), or "" without conditions."""
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""
