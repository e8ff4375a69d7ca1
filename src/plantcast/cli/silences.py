"""``plantcast silence`` (add, list, end), ``plantcast annotate`` / ``annotations`` and
``plantcast limits`` (set, show, clear, check): what operators tell the tool about the plant."""

from __future__ import annotations

import click

from plantcast.cli.common import DURATION, TIMESTAMP, console, database_option, out
from plantcast.cli.group import cli
from plantcast.cli.output import emit, listing_format

SILENCE_FIELDS = (
    "id",
    "scope",
    "target",
    "starts_at",
    "ends_at",
    "recurrence",
    "reason",
    "author",
    "ended_at",
    "active",
)
ANNOTATION_FIELDS = ("id", "sensor", "starts_at", "ends_at", "text", "author", "created_at")
LIMIT_FIELDS = ("sensor", "low_low", "low", "high", "high_high", "deadband", "updated_by")


def _when(ts) -> str | None:
    return None if ts is None else f"{ts:%Y-%m-%d %H:%M}"


def _actor() -> str:
    from plantcast.services.audit import cli_actor

    return cli_actor()


# -- silences ------------------------------------------------------------------------------
@cli.group("silence")
def silence() -> None:
    """Silences (maintenance windows): alerts are still recorded, marked silenced, and no
    notification leaves. A silence covers a sensor, an asset or everything, over a range or
    weekly (--every "sat 06:00 8h", UTC)."""


@silence.command("add")
@database_option
@click.option("--sensor", default=None, help="Silence this sensor.")
@click.option("--asset", default=None, help="Silence every sensor of this asset.")
@click.option("--all", "everything", is_flag=True, help="Silence everything.")
@click.option("--reason", required=True, help="Why (shown with the silence and in the audit).")
@click.option("--start", type=TIMESTAMP, default=None, help="From (default: now).")
@click.option("--end", type=TIMESTAMP, default=None, help="Until.")
@click.option("--for", "duration", type=DURATION, default=None, help="Or for this long (8h).")
@click.option(
    "--every", default=None, help='Weekly windows instead: "sat 06:00 8h", "mon-fri 22:00 8h".'
)
def silence_add(database_url, sensor, asset, everything, reason, start, end, duration, every):
    """Add a silence."""
    from plantcast.services.context import open_store
    from plantcast.services.silences import add_silence

    with open_store(database_url, init=True) as store:
        made = add_silence(
            store,
            sensor=sensor,
            asset=asset,
            everything=everything,
            reason=reason,
            author=_actor(),
            start=start,
            end=end,
            duration=duration,
            every=every,
        )
    span = (
        f"every {made.recurrence} from {_when(made.starts_at)}"
        if made.recurrence
        else (f"{_when(made.starts_at)} to {_when(made.ends_at)} UTC")
    )
    if made.recurrence and made.ends_at is not None:
        span += f" to {_when(made.ends_at)}"
    out.print(f"silence {made.id}: {made.label}, {span}: {made.reason}", markup=False)


@silence.command("list")
@database_option
@click.option("--all", "include_past", is_flag=True, help="Include silences that are over.")
@listing_format
def silence_list(database_url, include_past, fmt) -> None:
    """List silences, newest first: those current or to come (--all: every one)."""
    from plantcast.core.timeutil import utcnow
    from plantcast.services.context import open_store
    from plantcast.services.silences import list_silences

    now = utcnow()
    with open_store(database_url, init=True) as store:
        found = list_silences(store, include_past=include_past, at=now)
    rows = []
    for s in found:
        row = {
            "id": s.id,
            "scope": s.scope,
            "target": s.target,
            "starts_at": s.starts_at,
            "ends_at": s.ends_at,
            "recurrence": s.recurrence,
            "reason": s.reason,
            "author": s.author,
            "ended_at": s.ended_at,
            "active": s.covers(now),
        }
        if fmt == "table":
            row |= {k: _when(row[k]) for k in ("starts_at", "ends_at", "ended_at")}
            row["active"] = "yes" if row["active"] else ""
        rows.append(row)
    emit(rows, fmt, SILENCE_FIELDS, empty="no silences (plantcast silence add …)")


@silence.command("end")
@database_option
@click.argument("silence_id", type=int)
def silence_end(database_url, silence_id) -> None:
    """End a silence now: alerts are notified again."""
    from plantcast.services.context import open_store
    from plantcast.services.silences import end_silence

    with open_store(database_url, init=True) as store:
        ended = end_silence(store, silence_id, author=_actor())
    out.print(f"silence {ended.id} ended at {_when(ended.ended_at)} UTC", markup=False)


# -- annotations ---------------------------------------------------------------------------
@cli.command("annotate")
@database_option
@click.argument("sensor")
@click.argument("text")
@click.option("--at", type=TIMESTAMP, default=None, help="When (default: now).")
@click.option("--end", type=TIMESTAMP, default=None, help="The end, for a note over a range.")
def annotate_cmd(database_url, sensor, text, at, end) -> None:
    """Put a note on a sensor's chart ("seal replaced on pump 3")."""
    from plantcast.services.context import open_store
    from plantcast.services.notes import annotate

    with open_store(database_url, init=True) as store:
        made = annotate(store, sensor, text, author=_actor(), at=at, end=end)
    out.print(f"annotation {made.id} on {made.sensor} at {_when(made.starts_at)} UTC", markup=False)


@cli.group("annotations", invoke_without_command=True)
@database_option
@click.option("--sensor", default=None, help="Only this sensor's.")
@click.option("--start", type=TIMESTAMP, default=None, help="Overlapping from.")
@click.option("--end", type=TIMESTAMP, default=None, help="Overlapping until.")
@listing_format
@click.pass_context
def annotations_cmd(ctx, database_url, sensor, start, end, fmt) -> None:
    """List annotations, oldest first; `annotations delete ID` removes one."""
    ctx.obj = {"database_url": database_url}
    if ctx.invoked_subcommand:
        return
    from plantcast.services.context import open_store
    from plantcast.services.notes import list_annotations

    with open_store(database_url, init=True) as store:
        found = list_annotations(store, sensor=sensor, start=start, end=end)
    rows = []
    for n in found:
        row = {k: getattr(n, k) for k in ANNOTATION_FIELDS}
        if fmt == "table":
            row |= {k: _when(row[k]) for k in ("starts_at", "ends_at", "created_at")}
        rows.append(row)
    emit(rows, fmt, ANNOTATION_FIELDS, empty="no annotations (plantcast annotate SENSOR TEXT)")


@annotations_cmd.command("delete")
@click.argument("annotation_id", type=int)
@click.pass_context
def annotations_delete(ctx, annotation_id) -> None:
    """Remove an annotation."""
    from plantcast.services.context import open_store
    from plantcast.services.notes import delete_annotation

    with open_store(ctx.obj["database_url"], init=True) as store:
        gone = delete_annotation(store, annotation_id, author=_actor())
    out.print(f"annotation {gone.id} on {gone.sensor} removed", markup=False)


# -- limits --------------------------------------------------------------------------------
@cli.group("limits")
def limits() -> None:
    """Alarm limits per sensor (low-low, low, high, high-high, a deadband), as a SCADA sets
    them: crossing one raises an alert of kind limit:<level>; a forecast reaching one raises
    an early warning (forecast_limit)."""


@limits.command("set")
@database_option
@click.argument("sensor")
@click.option("--low-low", type=float, default=None)
@click.option("--low", type=float, default=None)
@click.option("--high", type=float, default=None)
@click.option("--high-high", type=float, default=None)
@click.option(
    "--deadband", type=float, default=None, help="How far back inside a limit clears its alarm."
)
@click.option(
    "--unset",
    multiple=True,
    type=click.Choice(["low_low", "low", "high", "high_high"]),
    help="Remove this limit (repeatable).",
)
def limits_set(database_url, sensor, low_low, low, high, high_high, deadband, unset) -> None:
    """Set some of a sensor's limits; the others keep their values."""
    from plantcast.services.context import open_store
    from plantcast.services.limits import set_limits

    given = {"low_low": low_low, "low": low, "high": high, "high_high": high_high}
    levels: dict[str, float | None] = {k: v for k, v in given.items() if v is not None}
    levels |= dict.fromkeys(unset)
    with open_store(database_url, init=True) as store:
        made = set_limits(store, sensor, author=_actor(), levels=levels, deadband=deadband)
    _print_limits(sensor, made)


def _print_limits(sensor: str, lim) -> None:
    shown = ", ".join(f"{k} {v:g}" for k, v in lim.levels().items()) or "none"
    out.print(f"{sensor}: {shown}; deadband {lim.deadband:g}", markup=False)


@limits.command("show")
@database_option
@click.argument("sensor", required=False)
@listing_format
def limits_show(database_url, sensor, fmt) -> None:
    """Show a sensor's limits (no sensor: every sensor that has some)."""
    from plantcast.services.context import open_store
    from plantcast.services.limits import all_limits, sensor_limits

    with open_store(database_url, init=True) as store:
        if sensor:
            one = sensor_limits(store, sensor)
            found = {} if one is None else {sensor: one}
        else:
            found = all_limits(store)
    rows = [
        {"sensor": name, **lim.fields(), "updated_by": lim.updated_by}
        for name, lim in sorted(found.items())
    ]
    empty = f"{sensor} has no limits" if sensor else "no limits (plantcast limits set …)"
    emit(rows, fmt, LIMIT_FIELDS, empty=empty)


@limits.command("clear")
@database_option
@click.argument("sensor")
def limits_clear(database_url, sensor) -> None:
    """Remove every limit of a sensor."""
    from plantcast.services.context import open_store
    from plantcast.services.limits import clear_limits

    with open_store(database_url, init=True) as store:
        clear_limits(store, sensor, author=_actor())
    out.print(f"{sensor}: limits cleared", markup=False)
    console.print("its open limit alerts stay as they are (alerts resolve ID)")


@limits.command("check")
@database_option
@click.argument("sensors", nargs=-1)
@click.option("--no-forecast", is_flag=True, help="Only the readings, not the forecast.")
def limits_check(database_url, sensors, no_forecast) -> None:
    """Check readings not checked yet against the limits (limit alarms; `detect` does this
    too) and whether the forecast reaches a limit within its horizon (an early warning).
    No SENSOR: every sensor with limits."""
    from plantcast.services.context import open_store
    from plantcast.services.limit_alerts import check_limits

    with open_store(database_url, init=True) as store:
        results = check_limits(store, sensors, forecast=not no_forecast)
    if not results:
        out.print("no sensor has limits (plantcast limits set …)")
    for result, warning, why in results:
        line = (
            f"{result.sensor}: {result.scored:,} reading(s) checked, {result.opened} limit "
            f"alarm(s) opened, {result.updated} changed"
        )
        crossing = None if warning is None else warning.crossing
        if warning is not None and crossing is not None:
            band = crossing.band
            shown = (
                f", 80% band {band['lower_80']:.4g} to {band['upper_80']:.4g}"
                if "lower_80" in band and "upper_80" in band
                else ""
            )
            line += (
                f"; forecast reaches {crossing.level} ({crossing.value:g}) at "
                f"{_when(crossing.at)} UTC (mean {crossing.mean:.4g}{shown}): warning "
                f"{warning.alert_id} {warning.action}"
            )
        elif warning is not None and warning.action == "cleared":
            line += f"; forecast back inside the limits: warning {warning.alert_id} cleared"
        elif why:
            line += f"; no forecast: {why}"
        out.print(line, markup=False)
