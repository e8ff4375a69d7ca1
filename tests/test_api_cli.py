"""The API's CLI and page pieces: `plantcast apikey create|list|revoke` and the page's link."""

from __future__ import annotations

import json
import warnings

from click.testing import CliRunner

from plantcast.api import create_app
from plantcast.cli.main import cli
from plantcast.store import Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_apikey_create_list_revoke(db_url):
    runner = CliRunner()
    made = runner.invoke(
        cli,
        ["apikey", "create", "--database-url", db_url, "--name", "cmms", "--scopes", "read,write"],
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("pc_") and len(token) > 40
    listed = runner.invoke(cli, ["apikey", "list", "--database-url", db_url, "--format", "json"])
    [row] = json.loads(listed.stdout)
    assert row["name"] == "cmms" and row["scopes"] == ["read", "write"]
    assert row["revoked_at"] is None and token not in listed.stdout
    assert token.startswith(row["prefix"])
    with Store.open(db_url) as store:
        client = TestClient(create_app(store=store))
        h = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/sensors", headers=h).status_code == 200
        revoked = runner.invoke(cli, ["apikey", "revoke", "--database-url", db_url, str(row["id"])])
        assert revoked.exit_code == 0 and "revoked" in revoked.stdout
        assert client.get("/v1/sensors", headers=h).status_code == 401
    table = runner.invoke(cli, ["apikey", "list", "--database-url", db_url])
    assert "revoked" in table.stdout and token not in table.stdout
    bad = runner.invoke(
        cli, ["apikey", "create", "--database-url", db_url, "--name", "x", "--scopes", "root"]
    )
    assert bad.exit_code == 1 and "unknown scope(s) root" in bad.output
    gone = runner.invoke(cli, ["apikey", "revoke", "--database-url", db_url, "99"])
    assert gone.exit_code == 1 and "no API key with id 99" in gone.output


def test_the_page_shows_the_api_address(sqlite_url, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import plantcast.dashboard
    from plantcast.dashboard import state

    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PLANTCAST_API_URL", "http://127.0.0.1:8000")
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(plantcast.dashboard.APP), default_timeout=60)
        at.run()
        assert not at.exception
        shown = "\n".join(str(c.value) for c in at.caption)
        assert "REST API at http://127.0.0.1:8000" in shown
        assert "http://127.0.0.1:8000/docs" in shown
    finally:
        state.store().close()
        st.cache_resource.clear()
