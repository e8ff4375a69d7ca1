"""Which database to open, read from the environment without pydantic (quick CLI start-up)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SQLITE_PATH = Path("data") / "plantcast.db"
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_SQLITE_PATH.as_posix()}"
# The variables that name it, the first set one winning (Settings.database_url reads the same).
DATABASE_URL_ENV = ("PLANTCAST_DATABASE_URL", "DATABASE_URL")


def database_url(override: str | None = None) -> str:
    """``override`` if given, else $PLANTCAST_DATABASE_URL, $DATABASE_URL, or the SQLite file
    ``data/plantcast.db``: what ``load_settings(database_url=override).database_url`` gives,
    for the commands that need no other setting."""
    if override is not None:
        return override
    for name in DATABASE_URL_ENV:
        if name in os.environ:
            return os.environ[name]
    return DEFAULT_DATABASE_URL
