"""Anomaly commands: inject, normalize, detect, alerts and evaluate-detectors."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from functools import partial
from typing import Any

import click

from plantcast.cli.common import (
    DURATION,
    TIMESTAMP,
    console,
    dask_options,
    database_option,
    out,
    progress_bar,
)
from plantcast.cli.group import cli
from plantcast.cli.output import echo_json, listing_format, print_table, write_csv
from plantcast.core.errors import PlantcastError
from plantcast.core.types import AlertStatus, EventKind


def _periods(text: str | None) -> tuple[str, ...] | None:
    return tuple(p.strip() for p in text.split(",") if p.strip()) if text else None


@cli.command()
@database_option
@click.option("--sensor", required=True, help="A simulated sensor.")
@click.option("--kind", type=click.Choice([k.value for k in EventKind]), required=True)
@click.option("--magnitude", type=float, default=0.0, help="Size in the sensor's units.")
@click.option("--duration", type=DURATION, default=None, help="Simulated duration (e.g. 6h).")
@click.option("--note", default="", help="Free text stored with the event.")
def inject(database_url, sensor, kind, magnitude, duration, note) -> None:
    """Inject an anomaly into a simulated sensor from its next reading on."""
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store
    from plantcast.services.injection import inject as inject_event

    with open_store(database_url, init=True) as store:
        event = inject_event(
            store,
            sensor,
            kind,
            magnitude=magnitude,
            duration=duration,
            note=note,
            actor=cli_actor(),
        )
    if event.ends_at is None:
        until = "until normalized"
    else:
        from plantcast.core.timeutil import format_duration

        span = format_duration(event.ends_at - event.starts_at)
        until = f"for {span} of data time (until {event.ends_at:%Y-%m-%d %H:%M:%S} UTC)"
    out.print(f"event {event.id}: {event.kind.value} {event.magnitude:+g} on {sensor} {until}")


@cli.command()
@database_option
@click.option("--sensor", required=True, help="A simulated sensor.")
def normalize(database_url, sensor) -> None:
    """End every active injected event of a sensor."""
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store
    from plantcast.services.injection import normalize as normalize_sensor

    with open_store(database_url, init=True) as store:
        n = normalize_sensor(store, sensor, actor=cli_actor())
    out.print(f"{sensor}: ended {n} active event(s)")


@cli.command()
@database_option
@click.option("--sensor", "sensors", multiple=True, help="Sensor (repeatable; default: all).")
@click.option(
    "--periods", default=None, help="Seasonal periods, e.g. 24h,7d (default: the sensor's)."
)
@click.option(
    "--since",
    type=TIMESTAMP,
    default=None,
    help="Score from this time (default: whatever no run has scored yet, all history at first).",
)
@click.option(
    "--detector",
    "detector_names",
    multiple=True,
    help="Detector (repeatable; default: the default set). Also: drift, scale_change, "
    "profile_change, discord.",
)
@click.option(
    "--asset",
    "asset_names",
    multiple=True,
    help="Asset (repeatable). Default: every asset, unless --sensor is given.",
)
@click.option("--no-assets", is_flag=True, help="Score sensors only, no asset.")
@click.option("--explain", is_flag=True, help="Print each detector's calibrated thresholds.")
@click.option(
    "--refit",
    is_flag=True,
    help="Refit the detectors now instead of scoring with their stored fits (with --follow: "
    "on the first pass).",
)
@click.option("--follow", is_flag=True, help="Keep detecting as new readings arrive.")
@dask_options("Score")
@click.option(
    "--every",
    type=DURATION,
    default="5s",
    show_default=True,
    help="Pace of --follow: a pass starts every so often (at once after a longer pass).",
)
def detect(
    database_url,
    sensors,
    periods,
    since,
    detector_names,
    asset_names,
    no_assets,
    explain,
    refit,
    follow,
    every,
    scheduler,
    workers,
    use_dask,
) -> None:
    """Score new readings and write alerts (one per ongoing anomaly, listing every detector
    that agrees; re-running adds nothing).

    Thresholds are calibrated per sensor so that data like its recent history raises at most
    $PLANTCAST_ALERT_BUDGET alerts per 30 days per detector kind (default 2); an alert
    resolves once the signal has been normal for $PLANTCAST_RESOLVE_AFTER (default 2h).
    A sensor that cannot be scored is reported and the others go on. With --dask, --workers
    or --scheduler the scoring runs as Dask tasks (batches of sensors); reads and writes stay
    here, and the alerts are the same. Each sensor's fitted detectors are stored and score its
    new readings until they are a week old or the data drifts; then they are refitted.

    Assets are scored too (all of them, or those of --asset; with --sensor alone, none): the
    relations between their sensors, trained on their pinned known-good period (`plantcast
    asset train`) or on their history before each chunk; an asset alert names the sensors
    behind it (`plantcast alerts --asset NAME`).
    """
    from plantcast.core.config import load_settings
    from plantcast.services.context import open_store
    from plantcast.services.detection import (
        DETECTOR_CLASSES,
        DETECTORS,
        DetectOptions,
        explain_sensor,
    )

    unknown = [d for d in detector_names if d not in DETECTOR_CLASSES]
    if unknown:
        raise click.BadParameter(
            f"unknown {', '.join(unknown)}; known: {', '.join(DETECTOR_CLASSES)}",
            param_hint="--detector",
        )
    dets = tuple(dict.fromkeys(detector_names)) or DETECTORS
    settings = load_settings(database_url=database_url)
    options = DetectOptions(
        budget=settings.alert_budget, resolve_after=settings.resolve_after, refit=refit
    )
    if no_assets and asset_names:
        raise click.UsageError("--asset and --no-assets contradict each other")
    with open_store(database_url) as store:
        watched = partial(_watched, store, sensors, asset_names, no_assets)
        skips = _Skips()
        names, assets = watched()
        if explain:
            for name in names:
                info = explain_sensor(
                    store, name, periods=_periods(periods), detectors=dets, options=options
                )
                _print_explanation(name, info)
            console.print(
                f"thresholds calibrated to at most {options.budget:g} alert(s) per 30 days per "
                "detector on data like each sensor's training window (floors: the detectors' own "
                "minimums)"
            )
            return
        if use_dask or scheduler or workers:
            failed = _detect_on_dask(
                store,
                watched,
                (_periods(periods), dets, skips),
                since,
                options,
                follow,
                every,
                scheduler,
                workers,
            )
        else:
            from plantcast.services.detection_batch import PassMemory

            failed, memory = False, PassMemory() if follow else None
            try:
                while True:
                    began = time.monotonic()
                    names, assets = watched()
                    if names:
                        failed |= _detect_here(
                            store, names, (_periods(periods), dets, skips), since, options, memory
                        )
                    if assets:
                        failed |= _detect_assets_here(store, assets, since, options, follow)
                    since = None  # --since applies to the first pass only
                    options = replace(options, refit=False)  # and so does --refit
                    if not follow:
                        break
                    time.sleep(_rest(every, began))
            except KeyboardInterrupt:  # Ctrl-C (or the demo stopping): a clean stop
                pass
    if failed:
        sys.exit(1)


def _watched(store, sensors, asset_names, no_assets) -> tuple[list[str], list[str]]:
    """The sensors and assets a pass scores: those named, else every one there is now (with
    --follow, asked again each pass: a tag a connector creates after detect started, or an
    asset defined later, is watched from the next pass on)."""
    only_assets = bool(asset_names) and not sensors
    names = [] if only_assets else list(sensors) or [s.name for s in store.list_sensors()]
    assets = _assets_to_detect(store, asset_names, no_assets or (bool(sensors) and not asset_names))
    return names, assets


def _rest(every, began: float) -> float:
    """Seconds to wait before the next pass of ``--follow``: what is left of ``every`` since
    the last one began (none after a pass longer than that: a plant's readings keep coming,
    and each second waited is a second more of detection lag)."""
    return max(0.0, every.total_seconds() - (time.monotonic() - began))


def _assets_to_detect(store, asset_names, none: bool) -> list[str]:
    """The assets a detect pass scores: those named, or every one (none on a database made
    before assets, whose tables `plantcast migrate` adds)."""
    if none:
        return []
    if asset_names:
        return list(dict.fromkeys(asset_names))
    if store.missing_tables(("assets", "asset_state", "asset_fits")):
        return []
    return [a.name for a in store.list_assets()]


def _detect_assets_here(store, assets, since, options, follow, client=None) -> bool:
    """One pass over the assets, each reported on one line; True when one failed. With a
    Dask ``client`` the scoring runs on its workers."""
    from plantcast.services.asset_detection import AssetDetectOptions, detect_assets

    asset_options = AssetDetectOptions(
        budget=options.budget, resolve_after=options.resolve_after, refit=options.refit
    )
    with progress_bar("detect assets" if client is None else "detect assets (dask)") as bar:
        if client is None:
            results = detect_assets(
                store, assets, since=since, options=asset_options, on_progress=bar
            )
        else:
            from plantcast.scale import detect_assets_many

            results = detect_assets_many(
                store, assets, client=client, since=since, options=asset_options, on_progress=bar
            )
    failed = False
    for name, r in results.items():
        failed |= not _report_asset(name, r, follow)
    return failed


def _report_asset(name, r, follow) -> bool:
    """An asset's pass on one line (and why a detector could not score); False if it failed."""
    if isinstance(r, Exception):
        what = "" if isinstance(r, PlantcastError) else f"unexpected {type(r).__name__}: "
        console.print(f"[red]asset {name}: not scored:[/] {what}{r}", markup=True)
        return False
    if not follow or r.opened or r.updated:
        span = (
            f" from {r.scored_from:%Y-%m-%d %H:%M} to {r.scored_until:%Y-%m-%d %H:%M} UTC"
            if r.scored
            else ""
        )
        out.print(
            f"asset {r.asset}: scored {r.scored:,} grid rows{span}, {r.opened} new alert(s), "
            f"{r.updated} updated",
            markup=False,
        )
    for detector, why in r.skipped.items():
        if not follow or r.scored:
            console.print(f"[yellow]asset {r.asset}: {detector} skipped:[/] {why}")
    return True


def _detect_on_dask(store, watched, what, since, options, follow, every, scheduler, workers):
    """The passes of ``detect`` with the scoring on one Dask cluster for all of them; True
    when a sensor failed. Dask is imported here only: ``plantcast --help`` stays quick.
    ``watched()``: the sensors and the assets (scored here, after the sensors) of a pass;
    ``what``: the periods and the detectors."""
    from plantcast.scale import connect, detect_many

    periods, detectors, skips = what
    failed = False
    with connect(scheduler, workers) as client:
        while True:
            began = time.monotonic()
            names, assets = watched()
            with progress_bar("detect (dask)") as bar:
                results = detect_many(
                    store,
                    names,
                    client=client,
                    periods=periods,
                    detectors=detectors,
                    since=since,
                    options=options,
                    on_progress=bar,
                )
            for name, r in results.items():
                failed |= not _report(name, r, follow)
            skips.report(results, follow)
            if assets:
                failed |= _detect_assets_here(store, assets, since, options, follow, client)
            since = None
            options = replace(options, refit=False)
            if not follow:
                return failed
            try:
                time.sleep(_rest(every, began))
            except KeyboardInterrupt:
                return failed


def _detect_here(store, names, what, since, options, memory) -> bool:
    """One pass in this process, each sensor reported on one line; True when one failed.
    One sensor is followed chunk by chunk (a long first pass shows its progress); many are
    scored in bulk batches (``detection_batch``: a few statements per batch, not per sensor).
    ``what``: the periods, the detectors and the report of those skipped; ``memory``: what
    --follow keeps between passes (``detection_batch.PassMemory``), None for one pass."""
    from plantcast.services.detection import detect_sensor
    from plantcast.services.detection_batch import detect_pass

    periods, detectors, skips = what
    if len(names) == 1:
        try:
            with progress_bar(f"detect {names[0]}") as bar:
                results: dict[str, Any] = {
                    names[0]: detect_sensor(
                        store,
                        names[0],
                        periods=periods,
                        detectors=detectors,
                        since=since,
                        options=options,
                        on_progress=bar,
                    )
                }
        except Exception as exc:  # reported like any sensor's failure
            results = {names[0]: exc}
    else:
        with progress_bar("detect") as bar:
            results = detect_pass(
                store,
                names,
                periods=periods,
                detectors=detectors,
                since=since,
                options=options,
                on_progress=bar,
                memory=memory,
            )
    failed, follow = False, memory is not None
    for name, r in results.items():
        failed |= not _report(name, r, follow)
    skips.report(results, follow)
    return failed


class _Skips:
    """Detectors that could not score, said once a pass for all the sensors: each sensor's
    reason while at most ``LISTED`` sensors share a detector's, else one line for the
    detector with how many and one sensor's reason (1,000 young tags: a line, not 1,000).
    With --follow, said again only when it changed (a followed young sensor would repeat
    it at every pass)."""

    LISTED = 5

    def __init__(self) -> None:
        self.last: dict[str, int] | None = None

    def report(self, results: dict[str, Any], follow: bool) -> None:
        by_detector: dict[str, list[tuple[str, str]]] = {}
        for name, r in results.items():
            if isinstance(r, Exception) or (follow and not r.scored):
                continue
            for detector, why in r.skipped.items():
                by_detector.setdefault(detector, []).append((name, why))
        counts = {d: len(v) for d, v in by_detector.items()}
        if follow and counts == self.last:
            return
        self.last = counts
        for detector, items in by_detector.items():
            if len(items) <= self.LISTED:
                for name, why in items:
                    console.print(f"[yellow]{name}: {detector} skipped:[/] {why}")
            else:
                name, why = items[0]
                console.print(
                    f"[yellow]{detector} skipped on {len(items):,} sensors[/] (e.g. {name}: {why})"
                )


def _report(name, r, follow) -> bool:
    """A sensor's run (a result or why it failed) on one line; False when it failed."""
    if isinstance(r, PlantcastError):
        console.print(f"[red]{name}: not scored:[/] {r}")
        return False
    if isinstance(r, Exception):
        console.print(f"[red]{name}: not scored, unexpected {type(r).__name__}:[/] {r}")
        return False
    if not follow or r.opened or r.updated:  # --follow speaks when alerts change
        span = (
            f" from {r.scored_from:%Y-%m-%d %H:%M} to {r.scored_until:%Y-%m-%d %H:%M} UTC"
            if r.scored
            else ""
        )
        out.print(
            f"{r.sensor}: scored {r.scored:,} readings{span}, {r.opened} new alert(s), "
            f"{r.updated} updated"
        )
    return True


def _print_explanation(name: str, info: dict) -> None:
    from rich.table import Table

    periods, training = info.pop("periods", "-"), info.pop("training", "-")
    stored = info.pop("stored fit", None)
    table = Table(
        "detector", "what it learned", title=f"{name} (periods {periods}; trained on {training})"
    )
    for detector, learned in info.items():
        if isinstance(learned, str):
            table.add_row(detector, learned)
            continue
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in learned.items() if k != "fitted")
        table.add_row(detector, shown)
    out.print(table)
    if stored:
        out.print(f"stored fit (what detect scores new readings with): {stored}")


def _fmt(value) -> str:
    import pandas as pd

    from plantcast.core.timeutil import format_duration

    if value is None:
        return "-"
    if isinstance(value, pd.Timedelta):
        return format_duration(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    if hasattr(value, "__len__") and not isinstance(value, str):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


LABEL_CHOICES = ("real", "false_alarm", "maintenance")


@cli.group(invoke_without_command=True)
@database_option
@click.option("--sensor", default=None, help="Only this sensor.")
@click.option("--asset", default=None, help="Only this asset's (multivariate) alerts.")
@click.option(
    "--status", type=click.Choice([s.value for s in AlertStatus]), default=None, help="Filter."
)
@click.option("--assignee", default=None, help="Only alerts assigned to this user.")
@click.option("--label", type=click.Choice(LABEL_CHOICES), default=None, help="Only this label.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most this many, newest first (the total is always printed).",
)
@listing_format
@click.pass_context
def alerts(ctx, database_url, sensor, asset, status, assignee, label, limit, fmt) -> None:
    """List alerts, newest first, and work them: `alerts show ID`, `ack ID…`, `resolve ID…`,
    `assign ID USER`, `unassign ID`, `comment ID TEXT`, `label ID real|false_alarm|maintenance`.

    An asset's alert names its asset and the sensors behind it, largest share of its score
    at the peak first. JSON output is an object: {"total": N, "shown": n, "alerts": [...]},
    each alert with its "contributors" ([{"sensor", "share"}]); CSV has one alert a row (the
    total is printed to stderr when the list is cut). Changes are written to the audit log as
    $PLANTCAST_USER (else the login name) and notified like acknowledgements.
    """
    ctx.obj = {"database_url": database_url}
    if ctx.invoked_subcommand:
        return
    from plantcast.services.alert_records import ALERT_FIELDS, alert_record
    from plantcast.services.context import open_store

    filters = {"status": status, "assignee": assignee, "label": label}
    with open_store(database_url) as store:
        sid = store.get_sensor(sensor).id if sensor else None
        aid = store.get_asset(asset).id if asset else None
        rows = store.list_alerts(sensor_id=sid, asset_id=aid, limit=limit, **filters)
        total = store.count_alerts(sensor_id=sid, asset_id=aid, **filters)
        names = {s.id: s.name for s in store.list_sensors()}
        assets = store.asset_names() if any(a.asset_id is not None for a in rows) else {}
    records = [alert_record(a, names, assets) for a in rows]
    if fmt == "json":
        echo_json({"total": total, "shown": len(rows), "alerts": records})
        return
    if fmt == "csv":
        write_csv(
            (
                {
                    **r,
                    "detectors": [f"{d['detector']}:{d['score']:.2f}" for d in r["detectors"]],
                    "contributors": [f"{c['sensor']}:{c['share']:.2f}" for c in r["contributors"]],
                }
                for r in records
            ),
            ALERT_FIELDS,
        )
    else:
        shown = [
            {
                **r,
                "sensor": r["sensor"] or (f"asset {r['asset']}" if r["asset"] else "?"),
                "contributors": _contributors(r["contributors"]),
                "start (UTC)": f"{r['start']:%Y-%m-%d %H:%M}",
                "end": "ongoing" if r["end"] is None else f"{r['end']:%Y-%m-%d %H:%M}",
                "detectors": ", ".join(f"{d['detector']} {d['score']:.1f}" for d in r["detectors"]),
                "value": f"{r['value']:.2f}",
                "status": r["status"] + (" (silenced)" if r["silenced"] else ""),
            }
            for r in records
        ]
        columns: tuple[str, ...] = ("id", "sensor", "detectors", "start (UTC)", "end", "value")
        if any(r["contributors"] for r in records):
            columns += ("contributors",)
        columns += ("status",)
        if any(r["assignee"] or r["label"] for r in records):
            columns += ("assignee", "label")
        print_table(shown, columns, empty="no alerts")
    if len(rows) < total:
        console.print(
            f"showing {len(rows)} of {total:,} alerts (newest first; --limit N shows more)"
        )


def _evaluate_assets(scenarios: int, seed: int, fmt: str) -> None:
    """``evaluate-detectors --asset``: asset detection on simulated pumps, per training mode."""
    from plantcast.core.config import load_settings
    from plantcast.services.asset_detection import ASSET_DETECTORS, AssetDetectOptions
    from plantcast.services.asset_evaluation import evaluate_assets

    settings = load_settings()
    options = AssetDetectOptions(budget=settings.alert_budget, resolve_after=settings.resolve_after)
    with progress_bar("pumps") as bar:
        table = evaluate_assets(scenarios, seed, options=options, on_progress=bar)
    if fmt == "json":
        click.echo(table.to_json(orient="records", indent=2))
        return
    if fmt == "csv":
        write_csv(_records(table), list(table.columns))
        return
    out.print(_frame_table(table))
    console.print(
        f"Asset detection ({', '.join(ASSET_DETECTORS)}) run as detect runs it on {scenarios} "
        f"simulated pump(s) from seed {seed}, 5 relationship faults each (5-10σ of the broken "
        "relation, every sensor inside its own range): 'pinned' trains on the fault-free "
        "14-day warm-up (`asset train`), 'causal' on the history before each weekly chunk. "
        "false_alerts_30d on the clean twins; top_contributor: detected faults whose faulty "
        "sensor was ranked first."
    )


def _contributors(ranked: list[dict], top: int = 3) -> str:
    """An asset alert's first contributors as ``flow 71%, current 20%`` (``-`` for none)."""
    shown = ", ".join(f"{c['sensor']} {100 * c['share']:.0f}%" for c in ranked[:top])
    more = f", +{len(ranked) - top}" if len(ranked) > top else ""
    return shown + more if shown else "-"


def _workflow(ctx):
    """The store (tables made if missing: a workflow column or the comments table may be
    newer than the database) and who acts."""
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store

    return open_store(ctx.obj["database_url"], init=True), cli_actor()


@alerts.command("show")
@click.argument("alert_id", type=int)
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text")
@click.pass_context
def alerts_show(ctx, alert_id, fmt) -> None:
    """One alert: its fields, assignee, label, comment thread and history."""
    from plantcast.services import alert_workflow as flow

    store, _ = _workflow(ctx)
    with store:
        found = flow.detail(store, alert_id)
    record = found.record()
    comments = [{"at": c.at, "author": c.author, "text": c.text} for c in found.comments]
    history = [
        {"at": e.at, "actor": e.actor, "action": e.action, "before": e.before, "after": e.after}
        for e in found.history
    ]
    if fmt == "json":
        echo_json({**record, "comments": comments, "history": history})
        return
    for key in ("id", "sensor", "status", "assignee", "label", "detector", "start", "end"):
        value = record[key]
        shown = "ongoing" if key == "end" and value is None else value
        out.print(f"{key:>9}: {'-' if shown is None else shown}")
    agreed = ", ".join(f"{d['detector']} {d['score']:.1f}" for d in record["detectors"])
    out.print(f"{'detectors':>9}: {agreed}")
    expected = record["expected"]
    shown = "" if expected is None else f" (expected {_fmt(expected)})"
    out.print(f"{'value':>9}: {record['value']:.4g}{shown}")
    for c in comments:
        out.print(f"  {c['at']:%Y-%m-%d %H:%M} {c['author']}: {c['text']}", markup=False)
    for h in history:
        out.print(f"  {h['at']:%Y-%m-%d %H:%M} {h['actor']} {h['action']}", markup=False)


@alerts.command("ack")
@click.argument("alert_ids", type=int, nargs=-1, required=True)
@click.pass_context
def alerts_ack(ctx, alert_ids) -> None:
    """Acknowledge one or several alerts (all or, an id unknown, none)."""
    from plantcast.services import alert_workflow as flow

    store, actor = _workflow(ctx)
    with store:
        done = flow.acknowledge(store, alert_ids, actor=actor)
    for alert in done:
        out.print(f"alert {alert.id} is {alert.status.value}")


@alerts.command("resolve")
@click.argument("alert_ids", type=int, nargs=-1, required=True)
@click.pass_context
def alerts_resolve(ctx, alert_ids) -> None:
    """Mark one or several alerts resolved (all or, an id unknown, none)."""
    from plantcast.services import alert_workflow as flow

    store, actor = _workflow(ctx)
    with store:
        done = flow.resolve(store, alert_ids, actor=actor)
    for alert in done:
        out.print(f"alert {alert.id} is {alert.status.value}")


@alerts.command("assign")
@click.argument("alert_id", type=int)
@click.argument("user")
@click.pass_context
def alerts_assign(ctx, alert_id, user) -> None:
    """Assign an alert to USER (a user of `plantcast users`)."""
    from plantcast.services import alert_workflow as flow

    store, actor = _workflow(ctx)
    with store:
        [alert] = flow.assign(store, alert_id, user, actor=actor)
    out.print(f"alert {alert.id} is assigned to {alert.assignee}")


@alerts.command("unassign")
@click.argument("alert_id", type=int)
@click.pass_context
def alerts_unassign(ctx, alert_id) -> None:
    """Take whoever was assigned off an alert."""
    from plantcast.services import alert_workflow as flow

    store, actor = _workflow(ctx)
    with store:
        [alert] = flow.unassign(store, alert_id, actor=actor)
    out.print(f"alert {alert.id} is assigned to nobody")


@alerts.command("comment")
@click.argument("alert_id", type=int)
@click.argument("text")
@click.pass_context
def alerts_comment(ctx, alert_id, text) -> None:
    """Add TEXT to an alert's comment thread."""
    from plantcast.services import alert_workflow as flow

    store, actor = _workflow(ctx)
    with store:
        flow.comment(store, alert_id, text, actor=actor)
    out.print(f"comment added to alert {alert_id}")


@alerts.command("label")
@click.argument("alert_id", type=int)
@click.argument("label", type=click.Choice(LABEL_CHOICES))
@click.pass_context
def alerts_label(ctx, alert_id, label) -> None:
    """Say what an alert was. A false alarm raises the thresholds of the detectors that raised
    it, for that sensor, above its peak: the same pattern does not alert again."""
    from plantcast.services import alert_workflow as flow

    store, actor = _workflow(ctx)
    with store:
        [alert] = flow.label(store, alert_id, label, actor=actor)
    out.print(f"alert {alert.id} is labelled {alert.label}")


@cli.command("evaluate-detectors")
@click.option("--scenarios", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--noise",
    type=click.Choice(["uniform", "gaussian"]),
    default="uniform",
    show_default=True,
    help="Scenario noise: the demo's uniform ±2, or Gaussian of the same σ.",
)
@click.option(
    "--min-sigma",
    type=click.FloatRange(min=0),
    default=None,
    help="Count only events of at least this size in σ (stuck and dropout always count).",
)
@click.option(
    "--real",
    is_flag=True,
    help="Inject events into real recordings (and count false alerts on whole clean ones).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default="tests/data",
    show_default=True,
    help="Folder of the vendored real recordings (with --real).",
)
@click.option(
    "--matrix-profile",
    is_flag=True,
    help="Also the matrix-profile-only baseline (discords; about 1 s a scenario, and a minute "
    "more on numba's first compile).",
)
@click.option(
    "--asset",
    "assets",
    is_flag=True,
    help="Evaluate asset detection instead: simulated pumps with relationship faults (every "
    "sensor inside its own range), trained on the pinned warm-up and causally.",
)
@click.option(
    "--labels",
    is_flag=True,
    help="Instead of scenarios: score the detectors against this plant's labelled alerts "
    "(`plantcast alerts label`), from the database.",
)
@click.option("--sensor", "label_sensors", multiple=True, help="With --labels: only these.")
@database_option
@listing_format
def evaluate_detectors(
    scenarios,
    seed,
    noise,
    min_sigma,
    real,
    data_dir,
    matrix_profile,
    assets,
    labels,
    label_sensors,
    database_url,
    fmt,
) -> None:
    """Score detect's detectors on labeled scenarios: precision, recall, F1, delay, lead time,
    NAB score and false alerts, per detector, combined and beside baselines.

    The detectors run as `plantcast detect` runs them: each scenario's warm-up is history,
    the rest is scored in weekly chunks, each refitted on the history before it and calibrated
    to $PLANTCAST_ALERT_BUDGET; false alerts count over the scored span only. The baselines
    (a rolling z-score calibrated to the same budget, a static band, random flags and, with
    --matrix-profile, discords alone at the same budget) run the same way.

    An event's failure window runs from its start to 3 readings past its end; lead time is
    how long before the window's end it was first detected (hours). NAB is the Numenta
    Anomaly Benchmark's standard-profile score: 0 for no alerts, 100 for every window
    detected at its start without a false alert. JSON is the table as a list of rows (with
    --real, {"events": [...], "clean_days": [...]}); CSV has one row a line (with --real, a
    first column "table" says which).

    --labels scores them instead against the alerts people labelled real, false_alarm or
    maintenance: per detector, how many of each it agreed on, precision (real ÷ real + false
    alarms) and recall (the share of real-labelled alerts it agreed on).
    """
    if labels:
        _label_scores(database_url, label_sensors, fmt)
        return
    from pathlib import Path

    from plantcast.core.config import load_settings
    from plantcast.detect.evaluation import BASELINES
    from plantcast.services.detection import DETECTORS, DetectOptions
    from plantcast.services.detector_evaluation import clean_days
    from plantcast.services.detector_evaluation import evaluate_detectors as run
    from plantcast.signals.recordings import CLEAN_RECORDINGS, load_recordings, real_labels

    if assets:
        _evaluate_assets(scenarios, seed, fmt)
        return
    if real and not Path(data_dir).is_dir():
        raise click.BadParameter(
            f"{data_dir!r} is not a folder (the vendored real recordings)",
            param_hint="'--data-dir'",
        )
    settings = load_settings()
    options = DetectOptions(budget=settings.alert_budget, resolve_after=settings.resolve_after)
    baselines = tuple(b for b in BASELINES if matrix_profile or b != "matrix_profile")
    kw = dict(min_sigma=min_sigma, options=options, baselines=baselines)
    clean = None
    with progress_bar("scenarios") as bar:
        if real:
            recordings = load_recordings(data_dir)
            backgrounds = {n: recordings[n] for n in CLEAN_RECORDINGS}
            table = run(
                scenarios, seed, source="real", backgrounds=backgrounds, on_progress=bar, **kw
            )
            labels = {n: real_labels(n, s) for n, s in recordings.items()}
            clean = clean_days(recordings, labels=labels, options=options, baselines=baselines)
        else:
            table = run(scenarios, seed, on_progress=bar, noise_kind=noise, **kw)
    if fmt == "json":
        if clean is None:
            click.echo(table.to_json(orient="records", indent=2))
        else:
            echo_json({"events": _records(table), "clean_days": _records(clean)})
        return
    if fmt == "csv":
        if clean is None:
            write_csv(_records(table), list(table.columns))
        else:
            columns = ["table", *dict.fromkeys([*table.columns, *clean.columns])]
            rows = [{"table": "events", **r} for r in _records(table)]
            write_csv(rows + [{"table": "clean_days", **r} for r in _records(clean)], columns)
        return
    out.print(_frame_table(table))
    sized = "" if min_sigma is None else f" Events of at least {min_sigma:g}σ (and unsized ones)."
    console.print(
        "Event-level scores of detect's detectors, run as detect runs them; 'combined' unites "
        + ", ".join(DETECTORS)
        + "; the baselines "
        + ", ".join(baselines)
        + " run the same way (rolling_z and matrix_profile at the same alert budget)."
        + " median_lead_h: hours before the failure window's end (event + 3 readings) that an"
        " event was first detected; nab: NAB standard profile, 0 = no alerts, 100 = perfect."
        + sized
    )
    if clean is not None:
        out.print(_frame_table(clean))
        console.print(
            "Whole real recordings, their first 14 days history, scored after as detect does: "
            "false alerts per 30 days (alerts touching no known anomaly); water_flow's real "
            "anomalies give recall."
        )


def _label_scores(database_url, sensors, fmt) -> None:
    from plantcast.services.context import open_store
    from plantcast.services.feedback import LABEL_SCORE_FIELDS, label_scores

    with open_store(database_url, init=True) as store:
        ids = [store.get_sensor(s).id for s in sensors] or None
        rows = label_scores(store, ids)
    if fmt == "json":
        echo_json(rows)
        return
    if fmt == "csv":
        write_csv(rows, LABEL_SCORE_FIELDS)
        return
    shown = [
        {
            **r,
            "precision": "-" if r["precision"] is None else f"{r['precision']:.2f}",
            "recall": "-" if r["recall"] is None else f"{r['recall']:.2f}",
        }
        for r in rows
    ]
    print_table(shown, LABEL_SCORE_FIELDS, empty="no labelled alerts (plantcast alerts label)")
    if rows:
        console.print(
            "Of the alerts each detector agreed on, how many were labelled real, false alarm "
            "and maintenance; recall: the share of real-labelled alerts it agreed on."
        )


def _records(frame) -> list[dict]:
    """A frame's rows as dicts, through pandas' JSON so NaN becomes None (null, empty CSV)."""
    records: list[dict] = json.loads(frame.to_json(orient="records"))
    return records


def _frame_table(frame):
    from rich.table import Table

    table = Table(*map(str, frame.columns))
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    return table
