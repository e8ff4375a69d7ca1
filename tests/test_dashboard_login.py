"""The page's login: it refuses to bind beyond 127.0.0.1 without OpenID Connect; the
``PLANTCAST_OIDC_*`` settings (plantcast.core.oidc) and the private secrets file for
``st.login``; under AppTest a configured page shows only its login button. In Chromium: a real
login through a real OpenID Connect provider (the ``oidc-provider-mock`` package, started here)
as a viewer, whose buttons are disabled, and as an operator, who comments on an alert, labels
it a false alarm, acknowledges it, silences its sensor (the overview says so) and sees its
annotation and limit on the sensor's chart — every change audited under the operator's name."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from urllib.parse import quote

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import plantcast.dashboard
from plantcast.core import oidc
from plantcast.core.errors import InputError, PlantcastError
from plantcast.core.types import AlertStatus
from plantcast.dashboard import state
from plantcast.ingest.backfill import backfill
from plantcast.store import Store
from plantcast.store import alerts as alert_rows
from test_dashboard_browser import (
    CHROMIUM_ARGS,
    _free_port,
    _grid_rows,
    _poll,
    _start,
    _stop,
    _wait_healthy,
    chromium,  # noqa: F401  (a fixture)
)

ENV = {
    oidc.ISSUER: "http://127.0.0.1:9400",
    oidc.CLIENT_ID: "plantcast",
    oidc.CLIENT_SECRET: "s3cret",
}


def test_refuses_to_bind_beyond_localhost_without_login():
    env = {k: v for k, v in os.environ.items() if not k.startswith(oidc.PREFIX)}
    done = subprocess.run(
        [sys.executable, "-m", "plantcast.dashboard", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refusing to serve the page on 0.0.0.0" in done.stderr
    assert oidc.ISSUER in done.stderr and "Traceback" not in done.stderr
    assert oidc.refuse_open_bind("127.0.0.1", {}) is None
    assert oidc.refuse_open_bind("0.0.0.0", ENV) is None


def test_settings_from_the_environment():
    s = oidc.oidc_settings("0.0.0.0", 8600, ENV)
    assert s is not None
    assert s.metadata_url == "http://127.0.0.1:9400/.well-known/openid-configuration"
    assert s.redirect_uri == "http://127.0.0.1:8600/oauth2callback"
    assert len(s.cookie_secret) >= 32 and s.role_claim is None
    toml = oidc.secrets_toml(s)
    assert '[auth]\nredirect_uri = "http://127.0.0.1:8600/oauth2callback"' in toml
    assert 'client_secret = "s3cret"' in toml
    assert oidc.oidc_settings("127.0.0.1", 1, {}) is None
    with pytest.raises(InputError, match=oidc.CLIENT_SECRET):
        oidc.oidc_settings("h", 1, {oidc.ISSUER: "http://x", oidc.CLIENT_ID: "c"})
    with pytest.raises(InputError, match=oidc.ISSUER):
        oidc.oidc_settings("h", 1, {**ENV, oidc.ISSUER: "not a url"})


def test_a_configured_page_shows_only_its_login_button(sqlite_url, monkeypatch):
    Store.open(sqlite_url).init()
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(plantcast.dashboard.APP), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert [b.label for b in at.button] == ["Log in"]
        assert not at.title or at.title[0].value == "plantcast"
        assert "requires login" in " ".join(m.value for m in at.markdown)
    finally:
        with contextlib.suppress(PlantcastError):
            state.store().close()
        st.cache_resource.clear()


# -- a real login in Chromium -------------------------------------------------------------
@pytest.fixture
def provider():
    """A real OpenID Connect provider on a free port; olga is an operator by its role claim,
    victor a viewer."""
    import httpx
    import oidc_provider_mock

    with oidc_provider_mock.run_server_in_thread() as server:
        base = f"http://localhost:{server.server_port}"
        for sub, role in (("olga", "operator"), ("victor", "viewer")):
            claims = {"email": f"{sub}@plant.example", "preferred_username": sub,
                      "plantcast_roles": [role]}  # fmt: skip
            r = httpx.put(f"{base}/users/{quote(sub)}", json=claims)
            assert r.status_code == 204
        yield base


@pytest.fixture
def login_served(chromium, provider, tmp_path):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'plantcast.db'}"
    store = Store.open(url)
    store.init()
    backfill(store, "export_flow", days=1, interval=pd.Timedelta("30min"))
    sid = store.get_sensor("export_flow").id
    with store.write() as conn:
        alert_rows.insert_alert(
            conn, sid, ts=store.last_timestamp(sid), detector="residual", score=7.5, value=410.0
        )
    from plantcast.services.limits import set_limits
    from plantcast.services.notes import annotate

    last = store.last_timestamp(sid)
    annotate(store, "export_flow", "seal replaced on pump 3", author="setup",
             at=last - pd.Timedelta("6h"))  # fmt: skip
    set_limits(store, "export_flow", author="setup", levels={"high": 520.0})
    store.close()
    port = _free_port()
    env = {
        oidc.ISSUER: provider,
        oidc.CLIENT_ID: "plantcast",
        oidc.CLIENT_SECRET: "any",
        oidc.ROLE_CLAIM: "plantcast_roles",
        oidc.REDIRECT_URI: f"http://localhost:{port}/oauth2callback",
        "PLANTCAST_REFRESH_SECONDS": "30",  # no refresh replacing a button under a click
    }
    proc = _start(url, "dashboard", "--port", str(port), log=tmp_path / "dashboard.log", **env)
    try:
        _wait_healthy(port, [proc], tmp_path, timeout=60)
        yield f"http://localhost:{port}", tmp_path
    finally:
        _stop(proc)


def _login(page, base: str, who: str) -> None:
    page.goto(f"{base}/inbox")
    page.get_by_role("button", name="Log in").click()
    page.get_by_placeholder("sub").fill(who)  # the provider's own form
    page.get_by_role("button", name="Authorize").click()
    page.get_by_text(f"Logged in as {who}").wait_for(timeout=40_000)


def _choose(page, key: str, option: str, tries: int = 5) -> None:
    """Choose ``option`` in the select box ``key``, until the box shows it. Typing and then
    pressing Enter took the first option ("real") on a loaded machine, when the list was not
    filtered yet; clicking the option can meet a list a rerun just closed: then again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator(f".st-key-{key} input").last
    for _ in range(tries):
        box.fill(option)
        with contextlib.suppress(PlaywrightTimeout):
            page.get_by_role("option", name=option).click(timeout=5_000)
        with contextlib.suppress(AssertionError):
            _poll(lambda: box.input_value() == option, 5, f"{key} showing {option!r}")
            page.keyboard.press("Escape")
            return
    raise AssertionError(f"{key}: {option!r} could not be chosen in {tries} tries")


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_real_login_operator_acts_viewer_cannot(chromium, login_served):  # noqa: F811
    from playwright.sync_api import sync_playwright

    base, logs = login_served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            _login(page, base, "victor")
            page.get_by_text("Logged in as victor (viewer)").wait_for()
            page.goto(f"{base}/inbox")
            rows = _poll(lambda: _grid_rows(page, "inbox_table"), 30, "the inbox table")
            assert "export_flow" in rows[0]
            assert page.get_by_role("button", name="Acknowledge").is_disabled()
            assert page.get_by_role("button", name="Add comment").is_disabled()
            assert page.get_by_role("button", name="Log out").is_visible()

            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.set_default_timeout(30_000)
            _login(page, base, "olga")
            page.get_by_text("Logged in as olga (operator)").wait_for()
            page.goto(f"{base}/inbox")
            _poll(lambda: _grid_rows(page, "inbox_table"), 30, "the inbox table")
            page.locator(".st-key-inbox_ids input").last.fill("#1")
            page.keyboard.press("Enter")
            page.keyboard.press("Escape")
            page.get_by_text("1 alert(s) chosen").wait_for()
            page.locator(".st-key-inbox_comment textarea").last.fill("flow meter checked")
            page.get_by_role("button", name="Add comment").click()
            page.get_by_text("comment: 1 alert(s)").wait_for()
            page.get_by_text("1 alert(s) chosen").wait_for()  # still chosen
            _choose(page, "inbox_label_as", "false_alarm")
            page.locator(".st-key-inbox_label_go button").last.click()
            page.get_by_text("label: 1 alert(s)").wait_for()
            page.get_by_text("1 alert(s) chosen").wait_for()
            page.locator(".st-key-inbox_ack button").last.click()
            page.get_by_text("acknowledge: 1 alert(s)").wait_for()

            page.goto(f"{base}/silences")  # silence the sensor for two hours
            page.locator(".st-key-sil_reason input").last.fill("flow meter swap")
            page.locator(".st-key-sil_add button").last.click()
            page.get_by_text("silence 1 added").wait_for()

            page.goto(f"{base}/sensor?sensor=export_flow")  # drawn on its chart
            page.wait_for_selector(".js-plotly-plot", timeout=40_000)
            notes = lambda: " ".join(  # noqa: E731
                page.locator(".js-plotly-plot .annotation-text").all_text_contents()
            )
            _poll(lambda: "seal replaced on pump 3" in notes(), 30, "the annotation")
            assert "high 520" in notes(), notes()  # (the silence begins after the last reading)
            page.goto(base)  # the overview says the sensor is silenced
            rows = _poll(lambda: _grid_rows(page, "overview_table"), 30, "the overview")
            assert "silenced" in rows[0] and "export_flow" in rows[0], rows
        finally:
            browser.close()
    store = Store.open(f"sqlite:///{logs / 'plantcast.db'}")
    try:
        (alert,) = store.list_alerts()
        assert alert.status is AlertStatus.ACKNOWLEDGED
        with store.transaction(readonly=True) as tx:
            actors = {(e.actor, e.action) for e in tx.audit_entries(target=f"alert:{alert.id}")}
        assert actors == {
            ("olga", "alert.comment"), ("olga", "alert.label"), ("olga", "alert.acknowledge"),
        }  # fmt: skip
        assert str(alert.label) == "false_alarm"
        with store.transaction(readonly=True) as tx:
            assert [e.actor for e in tx.audit_entries(action="silence.add")] == ["olga"]
    finally:
        store.close()
    assert "Traceback" not in (logs / "dashboard.log").read_text()
