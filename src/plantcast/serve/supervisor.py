"""The supervisor: each component its own process, restarted with backoff when it dies.

One component crashing never touches the others: each runs in its own process group, its
output is read by a thread of its own, and its death only schedules its own restart (the
delay starts at ``backoff`` and doubles per death, up to ``max_backoff``; a component that
ran longer than ``max_backoff`` starts again from ``backoff``). ``stop()`` (SIGTERM or SIGINT
to ``serve``) sends SIGTERM to every component at once, waits for their clean stop (each
flushes what it holds) and SIGKILLs what is left when ``stop_timeout`` is nearly over.

The states are handed to ``on_change`` (serve writes them to the store for ``status``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from plantcast.core.logs import COMPONENT_ENV, line_record
from plantcast.serve.components import Component

log = logging.getLogger(__name__)

TAIL_LINES = 5  # lines of a dead component's output kept as its last error
KILL_MARGIN = 0.5  # seconds before stop_timeout at which stragglers are SIGKILLed


@dataclass
class Running:
    """One component's process and what the supervisor knows of it."""

    component: Component
    state: str = "starting"  # starting, running, backoff, stopped, failed
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # monotonic
    started_wall: float = 0.0  # epoch seconds
    restarts: int = 0
    failures_in_row: int = 0
    restart_at: float = 0.0
    last_exit: int | None = None
    last_error: str | None = None
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=50))

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid


class Supervisor:
    """Runs ``components`` until :meth:`stop`; see the module docstring."""

    def __init__(
        self,
        components: Sequence[Component],
        *,
        env: Mapping[str, str],
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        stop_timeout: float = 10.0,
        log_format: str = "json",
        on_change: Callable[[list[Running]], None] | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.running = [Running(c) for c in components]
        self.env = dict(env)
        self.backoff, self.max_backoff = backoff, max_backoff
        self.stop_timeout = stop_timeout
        self.log_format = log_format
        self.on_change = on_change or (lambda _states: None)
        self.out = out or sys.stderr
        self._stopping = threading.Event()
        self._out_lock = threading.Lock()

    # -- the loop ---------------------------------------------------------------------------
    def run(self, poll: float = 0.2) -> None:
        """Start every component and keep them running until :meth:`stop`; then stop them."""
        for r in self.running:
            self._start(r)
        self.on_change(self.running)
        while not self._stopping.wait(poll):
            changed = False
            for r in self.running:
                changed |= self._check(r)
            if changed:
                self.on_change(self.running)
        self._stop_all()
        self.on_change(self.running)

    def stop(self) -> None:
        self._stopping.set()

    def _check(self, r: Running) -> bool:
        now = time.monotonic()
        if r.state == "backoff" and now >= r.restart_at:
            r.restarts += 1
            self._start(r)
            return True
        if r.proc is None or r.state not in ("running", "starting"):
            return False
        code = r.proc.poll()
        if code is None:
            return False
        ran = now - r.started
        r.failures_in_row = 0 if ran > self.max_backoff else r.failures_in_row + 1
        delay = min(self.backoff * 2 ** max(r.failures_in_row - 1, 0), self.max_backoff)
        r.state, r.last_exit, r.restart_at = "backoff", code, now + delay
        r.last_error = _describe_exit(code, list(r.tail)[-TAIL_LINES:])
        self._note(r.name, f"exited ({r.last_error}); restarting in {delay:g} s", "warning")
        return True

    def _start(self, r: Running) -> None:
        env = {**self.env, COMPONENT_ENV: r.name, "PYTHONUNBUFFERED": "1"}
        try:
            r.proc = subprocess.Popen(
                r.component.argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: a terminal's Ctrl-C is ours to pass on
            )
        except OSError as exc:
            r.state, r.last_error = "backoff", f"could not start: {exc}"
            r.restart_at = time.monotonic() + self.max_backoff
            self._note(r.name, r.last_error, "error")
            return
        r.state, r.started, r.started_wall = "running", time.monotonic(), time.time()
        r.tail.clear()
        threading.Thread(target=self._relay, args=(r, r.proc), daemon=True).start()
        self._note(r.name, f"started (pid {r.proc.pid}): plantcast {' '.join(r.component.args)}")

    def _relay(self, r: Running, proc: subprocess.Popen[bytes]) -> None:
        """The component's output to ours, line by line (as JSON lines in json format)."""
        assert proc.stdout is not None  # stdout=PIPE
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if not line.strip():
                continue
            r.tail.append(line)
            self._write(line_record(r.name, line) if self.log_format == "json" else line, r.name)

    def _note(self, name: str, message: str, level: str = "info") -> None:
        text = f"serve: {name}: {message}"
        if self.log_format == "json":
            self._write(line_record("serve", f"{name}: {message}", level), None)
        else:
            self._write(text, None)

    def _write(self, line: str, name: str | None) -> None:
        if self.log_format != "json" and name is not None:
            line = f"[{name}] {line}"
        with self._out_lock:
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (OSError, ValueError):
                pass  # our own output closed: the components go on

    # -- stopping ---------------------------------------------------------------------------
    def _stop_all(self) -> None:
        deadline = time.monotonic() + self.stop_timeout - KILL_MARGIN
        alive = [r for r in self.running if r.proc is not None and r.proc.poll() is None]
        for r in alive:
            _signal_group(r.proc, signal.SIGTERM)
        for r in alive:
            assert r.proc is not None
            try:
                r.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._note(r.name, "did not stop in time: killed", "warning")
                _signal_group(r.proc, signal.SIGKILL)
                r.proc.wait()
        for r in self.running:
            if r.proc is not None and r.proc.returncode is not None:
                r.last_exit = r.proc.returncode
            r.state = "stopped"
        # Grandchildren (uvicorn workers, a Dask cluster) go with their group.
        for r in self.running:
            if r.proc is not None:
                _signal_group(r.proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _describe_exit(code: int, tail: list[str]) -> str:
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    last = " | ".join(line.strip() for line in tail if line.strip())
    return f"{how}: {last}" if last else how
