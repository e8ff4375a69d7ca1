"""Where a key sits in a TOML text: the line of ``connectors.mqtt[0].broker``.

``tomllib`` keeps no positions, so the text is scanned once: table headers (``[a.b]``,
``[[a.b]]``, counted per array) and ``key = …`` lines under them. Good enough to point a reader
at the line of a config error; a key it cannot place falls back to its table's header.
"""

from __future__ import annotations

import re

__all__ = ["KeyLines", "format_path"]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*|\"[^\"]+\")\s*=")

Path = tuple[str | int, ...]


def _split(dotted: str) -> list[str]:
    return [part.strip().strip('"') for part in dotted.split(".")]


class KeyLines:
    """The 1-based line of every table and key path written in ``text``."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        arrays: dict[tuple[str, ...], int] = {}
        table: Path = ()
        depth = 0  # inside a multi-line array or inline table: no keys of the table there
        for number, line in enumerate(text.splitlines(), 1):
            if depth > 0:
                depth += _nesting(line)
                continue
            header = _HEADER.match(line)
            if header:
                names = tuple(_split(header.group(2)))
                if header.group(1) == "[[":
                    index = arrays.get(names, -1) + 1
                    arrays[names] = index
                    table = (*names, index)
                else:
                    table = names
                for end in range(1, len(names)):  # [a.b] also places a, where it is first met
                    self.lines.setdefault(names[:end], number)
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                path = (*table, *_split(key.group(1)))
                self.lines.setdefault(path, number)
                depth = _nesting(line[key.end() :])

    def line_of(self, path: Path) -> int | None:
        """The line of ``path`` or of the nearest enclosing table or key written in the text."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None


def _nesting(text: str) -> int:
    """How many brackets and braces ``text`` opens minus closes (strings and comments aside)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'[^\']*\'', "", text)
    text = text.split("#", 1)[0]
    return text.count("[") + text.count("{") - text.count("]") - text.count("}")


def format_path(path: Path) -> str:
    """``('connectors', 'mqtt', 0, 'broker')`` → ``connectors.mqtt[0].broker``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
