"""Topic → sensor name: a template such as ``plant/{area}/{sensor}``, a mapping file, or as is.

The key mapped is the MQTT topic for JSON and plain-number payloads, and
``group/node[/device]/metric`` for Sparkplug B metrics. A key that the template does not match,
or that the mapping file does not list, has no sensor: its message goes to dead letters. A
mapping file may give each sensor its unit, which the sensors the connector creates carry.
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
        units: dict[str, str] | None = None,
    ) -> None:
        if template is not None and names is not None:
            raise InputError("give a topic template or a mapping file, not both")
        self.template = template
        self._names = names
        self._units = dict(units or {})  # sensor name → unit
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
        names, units = load_mapping_file(path)
        return cls(names=names, units=units)

    def unit(self, name: str) -> str | None:
        """The unit the mapping gives sensor ``name``, or None (the connector's --unit)."""
        return self._units.get(name)

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
    """The topic → sensor names of a mapping file (see ``load_mapping_file``)."""
    return load_mapping_file(path)[0]


_JSON_SHAPE = 'expected an object {"topic": "sensor" or {"sensor": "…", "unit": "…"}, …}'


def load_mapping_file(path: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """A mapping file: ``(topic → sensor, sensor → unit)``. JSON ``{"topic": "sensor", …}``,
    where a value may also be ``{"sensor": "p1", "unit": "bar"}``; or CSV with the columns
    ``topic,sensor`` or ``topic,sensor,unit``. One sensor given two units is an error."""
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
        if not isinstance(data, dict):
            raise InputError(_JSON_SHAPE, file=str(path))
        entries = [(topic, *_json_entry(path, topic, v)) for topic, v in data.items()]
        return _collect(path, [(e, None) for e in entries])
    rows = []
    for line, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not row or row[0].startswith("#") or (line == 1 and cells[:2] == ["topic", "sensor"]):
            continue
        if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
            raise InputError(
                "expected the columns topic,sensor or topic,sensor,unit", file=str(path), line=line
            )
        rows.append(((cells[0], cells[1], cells[2] if len(cells) == 3 else ""), line))
    return _collect(path, rows)


def _json_entry(path: Path, topic, value) -> tuple[str, str]:
    if isinstance(topic, str) and isinstance(value, str) and value:
        return value, ""
    if isinstance(topic, str) and isinstance(value, dict):
        sensor, unit = value.get("sensor"), value.get("unit", "")
        if (
            isinstance(sensor, str)
            and sensor
            and isinstance(unit, str)
            and set(value)
            <= {
                "sensor",
                "unit",
            }
        ):
            return sensor, unit.strip()
    raise InputError(f"{_JSON_SHAPE}; not for {topic!r}", file=str(path))


def _collect(path: Path, entries) -> tuple[dict[str, str], dict[str, str]]:
    names: dict[str, str] = {}
    units: dict[str, str] = {}
    for (topic, sensor, unit), line in entries:
        names[topic] = sensor
        if not unit:
            continue
        if units.setdefault(sensor, unit) != unit:
            raise InputError(
                f"sensor {sensor!r} is given two units: {units[sensor]!r} and {unit!r}",
                file=str(path),
                line=line,
            )
    return names, units
