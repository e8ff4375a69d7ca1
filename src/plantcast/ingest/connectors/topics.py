"""Topic → sensor name: a template such as ``plant/{area}/{sensor}``, a mapping file, or as is.

The key mapped is the MQTT topic for JSON and plain-number payloads, and
``group/node[/device]/metric`` for Sparkplug B metrics. A key that the template does not match,
or that the mapping file does not list, has no sensor: its message goes to dead letters.
"""

from __future__ import annotations

import csv
import json
import re
import string
from pathlib import Path

from plantcast.core.errors import InputError


class TopicMap:
    """``name(key)``: the sensor a topic (or Sparkplug metric key) feeds, or None."""

    def __init__(
        self,
        *,
        template: str | None = None,
        names: dict[str, str] | None = None,
        name_format: str | None = None,
    ) -> None:
        if template is not None and names is not None:
            raise InputError("give a topic template or a mapping file, not both")
        self.template = template
        self._names = names
        self._regex = None
        self._format = name_format
        if template is not None:
            self._regex, fields = _compile(template)
            if self._format is None:
                self._format = (
                    "{sensor}" if "sensor" in fields else ".".join("{" + f + "}" for f in fields)
                )
            unknown = _format_fields(self._format) - set(fields)
            if unknown:
                raise InputError(
                    f"the name format uses {', '.join(sorted(unknown))}, which the template "
                    f"{template!r} does not have",
                    field="name-format",
                )
        self._cache: dict[str, str | None] = {}

    @classmethod
    def from_file(cls, path: str | Path) -> TopicMap:
        return cls(names=load_mapping(path))

    def name(self, key: str) -> str | None:
        try:
            return self._cache[key]
        except KeyError:
            pass
        if self._names is not None:
            found = self._names.get(key)
        elif self._regex is not None:
            m = self._regex.fullmatch(key)
            found = self._format.format(**m.groupdict()) if m else None
        else:
            found = key
        if len(self._cache) < 1_000_000:
            self._cache[key] = found
        return found

    def describe(self) -> str:
        if self._names is not None:
            return f"a mapping of {len(self._names):,} topic(s)"
        if self.template is not None:
            return f"template {self.template} → {self._format}"
        return "the topic as the sensor name"


def _compile(template: str) -> tuple[re.Pattern, list[str]]:
    fields: list[str] = []
    pattern = ""
    for literal, fname, spec, conv in string.Formatter().parse(template):
        pattern += re.escape(literal)
        if fname is None:
            continue
        if not fname.isidentifier() or spec or conv:
            raise InputError(f"bad placeholder {{{fname}}} in {template!r}", field="template")
        if fname in fields:
            pattern += f"(?P={fname})"
            continue
        fields.append(fname)
        pattern += f"(?P<{fname}>[^/]+)"
    if not fields:
        raise InputError(
            f"the template {template!r} has no placeholder (example: plant/{{area}}/{{sensor}})",
            field="template",
        )
    return re.compile(pattern), fields


def _format_fields(fmt: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(fmt) if f}


def load_mapping(path: str | Path) -> dict[str, str]:
    """A mapping file: JSON ``{"topic": "sensor", …}`` or CSV with columns ``topic,sensor``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the mapping file: {exc.strerror}", file=str(path)) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()
        ):
            raise InputError('expected an object {"topic": "sensor", …}', file=str(path))
        return data
    names: dict[str, str] = {}
    for line, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or row[0].startswith("#") or (line == 1 and row[:2] == ["topic", "sensor"]):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise InputError("expected two columns: topic,sensor", file=str(path), line=line)
        names[row[0].strip()] = row[1].strip()
    return names
