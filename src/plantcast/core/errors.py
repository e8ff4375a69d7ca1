"""Errors that surfaces turn into one-line messages instead of stack traces."""

from __future__ import annotations


class PlantcastError(Exception):
    """Base class: a problem the user can act on; its message is the whole story."""


class InputError(PlantcastError):
    """Bad input, located as precisely as we can: file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file, self.line, self.field, self.reason = file, line, field, message
        where = []
        if file is not None:
            where.append(str(file) if line is None else f"{file}:{line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class NotFound(PlantcastError):
    """A named thing (sensor, alert, event) does not exist."""


class NotEnoughData(PlantcastError):
    """A computation needs more history than the series has; ``needed``: how many readings
    it asked for, where it knows (a caller may wait until there are that many)."""

    def __init__(self, message: str, *, needed: int | None = None) -> None:
        super().__init__(message)
        self.needed = needed


class Refused(PlantcastError):
    """An operation that is not allowed on this object (e.g. injecting into imported data)."""


class Forbidden(PlantcastError):
    """The person (or API key) lacks the role the operation needs (plantcast.services.users)."""

    def __init__(self, message: str, *, role: str | None = None, needed: str | None = None):
        super().__init__(message)
        self.role, self.needed = role, needed


class StoreUnavailable(PlantcastError):
    """The database cannot be reached right now."""


class StoreError(PlantcastError):
    """The database refused an operation for a reason other than being unreachable."""
