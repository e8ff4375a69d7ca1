"""Users and roles: `plantcast users`, keys that carry their user's role, 403 when the role
cannot, /v1/users, /v1/keys and /v1/audit for admins; every change writes one audit entry."""

from __future__ import annotations

import json
import warnings

import pytest
from click.testing import CliRunner

from plantcast.api import create_app
from plantcast.cli.main import cli
from plantcast.core.errors import Forbidden, InputError, NotFound
from plantcast.services import audit, users
from plantcast.services.apikeys import create_key, revoke_key
from plantcast.store import Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_roles_nest_and_every_action_has_one_needed_role():
    assert users.can("viewer", "read") and not users.can("viewer", "alert.acknowledge")
    assert users.can("operator", "alert.label") and users.can("operator", "silence.add")
    assert not users.can("operator", "user.add") and not users.can("operator", "limit.set")
    assert users.can("admin", "key.create") and users.can("admin", "audit")
    assert not users.can(None, "read") and not users.can("root", "read")
    assert users.needed_role("asset.create") == "admin"
    with pytest.raises(ValueError, match="unknown action"):
        users.can("admin", "launch.rocket")
    with pytest.raises(Forbidden, match=r"ann has the role viewer; alert\.label needs operator"):
        users.require("viewer", "alert.label", "ann")
    assert users.scope_role(("read", "write")) == "operator" and users.scope_role(()) is None


def test_users_are_added_given_roles_disabled_and_audited(store):
    ann = users.add_user(store, "ann", "operator", actor="boss")
    assert (ann.name, ann.role, ann.active) == ("ann", "operator", True)
    assert users.role_of(store, "ann") == "operator" and users.role_of(store, "nobody") is None
    with pytest.raises(InputError, match="exists already"):
        users.add_user(store, "ann", "viewer", actor="boss")
    with pytest.raises(InputError, match="unknown role 'root'"):
        users.add_user(store, "bob", "root", actor="boss")
    assert users.set_role(store, "ann", "admin", actor="boss").role == "admin"
    assert users.disable(store, "ann", actor="boss").disabled_at is not None
    assert users.role_of(store, "ann") is None  # disabled: no role at all
    with pytest.raises(NotFound, match="no user named 'zed'"):
        users.set_role(store, "zed", "viewer", actor="boss")
    trail = [(e.actor, e.action, e.target, e.before, e.after) for e in audit.entries(store)]
    assert [t[1] for t in trail] == ["user.disable", "user.set_role", "user.add"]
    assert trail[1][3:] == ({"role": "operator"}, {"role": "admin"})
    assert {t[0] for t in trail} == {"boss"} and {t[2] for t in trail} == {"user:ann"}


def test_the_cli_manages_users_and_keys_as_the_person_running_it(db_url, monkeypatch):
    monkeypatch.setenv("PLANTCAST_USER", "shift-lead")
    run = CliRunner().invoke
    db = ["--database-url", db_url]
    assert run(cli, ["users", "add", *db, "ann", "--role", "operator"]).exit_code == 0
    assert run(cli, ["users", "add", *db, "vic"]).exit_code == 0
    assert run(cli, ["users", "set-role", *db, "vic", "admin"]).exit_code == 0
    done = run(cli, ["users", "disable", *db, "vic"])
    assert done.exit_code == 0 and "vic disabled" in done.stdout
    listed = json.loads(run(cli, ["users", "list", *db, "--format", "json"]).stdout)
    assert [(u["name"], u["role"], u["disabled_at"] is None) for u in listed] == [
        ("ann", "operator", True),
        ("vic", "admin", False),
    ]
    bad = run(cli, ["users", "set-role", *db, "zed", "viewer"])
    assert bad.exit_code == 1 and "no user named 'zed'" in bad.output
    made = run(cli, ["apikey", "create", *db, "--name", "ann-laptop", "--user", "ann"])
    assert made.exit_code == 0, made.output
    both = run(cli, ["apikey", "create", *db, "--name", "x", "--user", "ann", "--scopes", "read"])
    assert both.exit_code == 1 and "only without --user" in both.output
    keys = json.loads(run(cli, ["apikey", "list", *db, "--format", "json"]).stdout)
    assert keys[0]["user"] == "ann" and keys[0]["scopes"] == ["read", "write"]
    assert run(cli, ["apikey", "revoke", *db, str(keys[0]["id"])]).exit_code == 0
    trail = json.loads(run(cli, ["audit", *db, "--format", "json"]).stdout)
    assert [e["action"] for e in trail] == [
        "key.revoke",
        "key.create",
        "user.disable",
        "user.set_role",
        "user.add",
        "user.add",
    ]
    assert {e["actor"] for e in trail} == {"shift-lead"}
    assert trail[1]["after"]["user"] == "ann" and "token" not in json.dumps(trail)
    table = run(cli, ["audit", *db, "--action", "key."])
    assert table.exit_code == 0 and "key.create" in table.stdout and "user.add" not in table.stdout
    late = run(cli, ["audit", *db, "--since", "not-a-time"])
    assert late.exit_code == 1 and "not a time" in late.output


@pytest.fixture
def api(store):
    for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        users.add_user(store, name, role, actor="setup")
    client = TestClient(create_app(store=store))
    client.tokens = {n: create_key(store, f"{n}-key", user=n)[1] for n in ("vera", "otto", "ada")}
    return client


def _as(client, name: str) -> dict:
    return {"Authorization": f"Bearer {client.tokens[name]}"}


def test_a_key_carries_its_users_role_and_403_says_why(api, store):
    assert api.get("/v1/sensors", headers=_as(api, "vera")).status_code == 200
    denied = api.get("/v1/users", headers=_as(api, "otto"))
    assert denied.status_code == 403
    body = denied.json()
    assert body["type"] == "urn:plantcast:problem:forbidden"
    assert body["role"] == "operator" and body["needed"] == "admin"
    assert "user needs the role 'admin'" in body["detail"] and "otto" in body["detail"]
    assert api.get("/v1/users", headers=_as(api, "ada")).status_code == 200
    users.set_role(store, "otto", "admin", actor="boss")  # takes effect at the next request
    assert api.get("/v1/users", headers=_as(api, "otto")).status_code == 200
    users.disable(store, "otto", actor="boss")
    gone = api.get("/v1/sensors", headers=_as(api, "otto"))
    assert gone.status_code == 401 and "disabled" in gone.json()["detail"]


def test_admins_manage_users_and_keys_over_the_api_and_read_the_audit(api):
    ada = _as(api, "ada")
    made = api.post("/v1/users", json={"name": "pat", "role": "operator"}, headers=ada)
    assert made.status_code == 201 and made.json()["role"] == "operator"
    assert api.post("/v1/users", json={"name": "pat"}, headers=ada).status_code == 422
    assert api.put("/v1/users/pat/role", json={"role": "viewer"}, headers=ada).json()["role"] == (
        "viewer"
    )
    assert api.put("/v1/users/zed/role", json={"role": "viewer"}, headers=ada).status_code == 404
    key = api.post("/v1/keys", json={"name": "pat-key", "user": "pat"}, headers=ada)
    assert key.status_code == 201 and key.json()["user"] == "pat"
    token = key.json()["token"]
    assert api.get("/v1/sensors", headers={"X-API-Key": token}).status_code == 200
    listed = api.get("/v1/keys", headers=ada).json()
    assert "token" not in listed[0] and {k["user"] for k in listed} >= {"pat", "ada"}
    assert api.delete(f"/v1/keys/{key.json()['id']}", headers=ada).json()["revoked_at"]
    assert api.get("/v1/sensors", headers={"X-API-Key": token}).status_code == 401
    assert api.post("/v1/users/pat/disable", headers=ada).json()["disabled_at"] is not None
    trail = api.get("/v1/audit", params={"actor": "ada"}, headers=ada).json()
    assert [e["action"] for e in trail] == [
        "user.disable",
        "key.revoke",
        "key.create",
        "user.set_role",
        "user.add",
    ]
    assert api.get("/v1/audit", headers=_as(api, "otto")).status_code == 403
    assert api.post("/v1/users", json={"name": "x"}, headers=_as(api, "otto")).status_code == 403


def test_keys_made_before_users_keep_their_scopes_role(api, store):
    legacy = create_key(store, "grafana", "read")[1]
    assert api.get("/v1/sensors", headers={"X-API-Key": legacy}).status_code == 200
    denied = api.get("/v1/audit", headers={"X-API-Key": legacy})
    assert denied.status_code == 403 and denied.json()["role"] == "viewer"
    admin_key, admin_token = create_key(store, "ops", "admin")
    assert api.get("/v1/audit", headers={"X-API-Key": admin_token}).status_code == 200
    revoke_key(store, admin_key.id, actor="boss")
    made = [e for e in audit.entries(store, action="key.") if e.target == f"key:{admin_key.id}"]
    assert [e.action for e in made] == ["key.revoke", "key.create"]


def test_an_older_database_gains_users_and_key_owners(tmp_path):
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE api_keys (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, "
                "prefix VARCHAR(16) NOT NULL, token_hash VARCHAR(64) NOT NULL UNIQUE, "
                "scopes VARCHAR(100) NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT, "
                "last_used_at BIGINT)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO api_keys VALUES (1, 'old', 'pc_x', 'h', 'write', 1700000000000000, "
                "NULL, NULL)"
            )
        )
    engine.dispose()
    with Store.open(url) as store:
        done = store.init()
        assert "api_keys.user_id added" in done and "users created" in done
        assert store.init() == []
        [old] = store.list_api_keys()
        assert old.user_id is None and old.scopes == ("write",)
