"""The plant's config file: checked on load, every error naming its key and line; the
environment laid over it; secrets refused; what serve would run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.serve.components import components
from plantcast.serve.config import ConfigError, load_config, parse_config
from plantcast.serve.example import EXAMPLE


def _problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), source="plant.toml", env=env or {})
    return caught.value.problems


def test_the_example_is_a_config_check_accepts(tmp_path):
    path = tmp_path / "plant.toml"
    result = CliRunner().invoke(cli, ["config", "example"])
    assert result.exit_code == 0
    path.write_text(result.output)
    checked = CliRunner().invoke(cli, ["config", "check", str(path)], env={})
    assert checked.exit_code == 0, checked.output
    for name in ("mqtt:line1", "detect", "notify", "api", "dashboard", "jobs"):
        assert f"  {name}: plantcast " in checked.output
    assert parse_config(EXAMPLE, env={}).retention.keep == "400d"


def test_an_empty_file_serves_the_defaults():
    config = parse_config("", env={})
    assert config.database.url.startswith("sqlite:///")
    assert [c.name for c in components(config)] == ["detect", "notify", "api", "dashboard"]


def test_every_problem_names_its_key_and_line():
    problems = _problems(
        """\
        [api]
        port = 99999
        [detection]
        evry = "5s"

        [[connectors.mqtt]]
        name = "a"

        [[connectors.mqtt]]
        name = "b"
        topics = ["plant/#"]
        interval = "5 parsecs"
        """
    )
    text = "\n".join(problems)
    assert "plant.toml:2: api.port: Input should be less than or equal to 65535" in text
    assert "plant.toml:4: detection.evry: unknown key (known: enabled, every," in text
    # a missing key points at its table's header
    assert "plant.toml:6: connectors.mqtt[0].topics: required key is missing" in text
    assert "plant.toml:12: connectors.mqtt[1].interval: cannot read '5 parsecs'" in text
    assert len(problems) == 4


def test_a_forecast_model_is_one_plantcast_knows():
    """``model`` and ``first_model`` are checked on load (with the line), against the names
    the forecast registry has: the config's own list is kept equal to it."""
    from plantcast.forecast import available_models
    from plantcast.forecast.catalog import BASE_MODELS
    from plantcast.serve.config import BASE_MODEL_NAMES, MODEL_NAMES

    assert list(MODEL_NAMES) == available_models() and list(BASE_MODEL_NAMES) == list(BASE_MODELS)
    problems = _problems(
        """        [forecasting]
        model = "prophet"
        first_model = "auto"
        """
    )
    assert problems[0].startswith("plant.toml:2: forecasting.model: unknown model 'prophet'")
    assert problems[1].startswith("plant.toml:3: forecasting.first_model: unknown model 'auto'")
    assert len(problems) == 2
    none = parse_config('[forecasting]\nfirst_model = ""\n').forecasting.first_model
    assert none == ""  # auto chooses at a sensor's first refresh


def test_a_dotted_key_and_a_multiline_array_keep_their_lines():
    problems = _problems(
        """\
        [forecasting]
        model = "auto"
        [[connectors.opcua]]
        name = "press"
        endpoint = "opc.tcp://h:4840"
        nodes = [
          "a=ns=2;s=A",
          "b = ns=2;s=B",
        ]
        sampling_interval = "soon"
        """
    )
    assert problems == [
        "plant.toml:10: connectors.opcua[0].sampling_interval: cannot read 'soon' as a "
        "duration (examples: 30min, 2s, 24h, 7d)"
    ]


def test_not_toml_is_named_with_its_line():
    problems = _problems('[api]\nport = 80\nhost = "x\n')
    assert len(problems) == 1
    assert problems[0].startswith("plant.toml: not valid TOML:")
    assert "line 3" in problems[0]


def test_secrets_in_the_file_are_refused_with_the_variable_to_set():
    problems = _problems(
        """\
        [database]
        url = "postgresql://plant:hunter2@db/plant"
        [[connectors.mqtt]]
        name = "a"
        topics = ["x"]
        password = "hunter2"
        """
    )
    assert problems[0] == (
        "plant.toml:6: connectors.mqtt[0].password: secrets are read from the environment "
        "only: set PLANTCAST_MQTT_USERNAME and PLANTCAST_MQTT_PASSWORD"
    )
    assert problems[1].startswith("plant.toml:2: database.url: the URL holds a password")
    assert len(problems) == 2  # the secret is not reported again as an unknown key


def test_the_environment_overrides_the_file():
    text = '[api]\nport = 8000\n[detection]\nevery = "5s"\n[database]\nurl = "sqlite:///a.db"\n'
    env = {
        "PLANTCAST_API__PORT": "8001",
        "PLANTCAST_DETECTION__EVERY": "30s",
        "PLANTCAST_DETECTION__SENSORS": '["p1", "p2"]',
        "PLANTCAST_DASHBOARD__ENABLED": "false",
        "PLANTCAST_DATABASE_URL": "postgresql://plant:secret@db/plant",  # allowed: environment
    }
    config = parse_config(text, env=env)
    assert config.api.port == 8001
    assert config.detection.every == "30s"
    assert config.detection.sensors == ["p1", "p2"]
    assert not config.dashboard.enabled
    assert config.database.url == "postgresql://plant:secret@db/plant"
    assert parse_config(text, env={"DATABASE_URL": "sqlite:///b.db"}).database.url == (
        "sqlite:///b.db"
    )


def test_a_bad_override_names_its_variable():
    problems = _problems("[api]\nport = 8000\n", env={"PLANTCAST_API__PORT": "eighty"})
    assert problems == [
        "$PLANTCAST_API__PORT: api.port: Input should be a valid integer, unable to parse "
        "string as an integer"
    ]
    assert _problems("", env={"PLANTCAST_CONNECTORS__MQTT": "x"}) == [
        "$PLANTCAST_CONNECTORS__MQTT: connectors are set in the file, one block each"
    ]


def test_each_connector_block_is_its_own_component():
    config = parse_config(
        """
        [[connectors.mqtt]]
        name = "line1"
        topics = ["plant/line1/#", "plant/common/#"]
        template = "plant/{area}/{sensor}"
        [[connectors.mqtt]]
        name = "line2"
        topics = ["plant/line2/#"]
        client_id = "l2"
        [[connectors.opcua]]
        name = "press"
        endpoint = "opc.tcp://10.0.0.5:4840"
        nodes = ["t=ns=2;s=T"]
        [detection]
        workers = 2
        [dashboard]
        enabled = false
        """,
        env={},
    )
    made = {c.name: c.args for c in components(config, "plant.toml")}
    connectors = ["mqtt:line1", "mqtt:line2", "opcua:press"]
    assert list(made) == [*connectors, "detect", "notify", "api", "jobs"]
    assert made["mqtt:line1"][:2] == ("connect", "mqtt")
    assert "plant/common/#" in made["mqtt:line1"]
    assert made["mqtt:line1"][made["mqtt:line1"].index("--client-id") + 1] == "plantcast-line1"
    assert made["mqtt:line2"][made["mqtt:line2"].index("--client-id") + 1] == "l2"
    assert made["opcua:press"][:4] == ("connect", "opcua", "--endpoint", "opc.tcp://10.0.0.5:4840")
    assert made["detect"] == ("detect", "--follow", "--every", "5s", "--workers", "2")


def test_connector_names_must_differ_and_opcua_needs_nodes():
    problems = _problems(
        """\
        [[connectors.mqtt]]
        name = "a"
        topics = ["x"]
        [[connectors.opcua]]
        name = "a"
        endpoint = "opc.tcp://h:4840"
        """
    )
    assert problems == ["plant.toml:4: connectors.opcua[0]: give nodes = [...] or nodes_file"]
    problems = _problems(
        """\
        [[connectors.mqtt]]
        name = "a"
        topics = ["x"]
        [[connectors.opcua]]
        name = "a"
        endpoint = "opc.tcp://h:4840"
        nodes = ["n=ns=2;s=N"]
        """
    )
    assert "plant.toml:1: connectors: connector names must differ: a used twice" in problems


def test_config_check_exits_1_listing_the_problems(tmp_path):
    path = tmp_path / "plant.toml"
    path.write_text('[api]\nport = "x"\n[dashbord]\n')
    result = CliRunner().invoke(cli, ["config", "check", str(path)], env={})
    assert result.exit_code == 1
    assert f"{path}:2: api.port: Input should be a valid integer" in result.output
    assert f"{path}:3: dashbord: unknown key (known: database, connectors," in result.output
    missing = CliRunner().invoke(cli, ["config", "check", str(tmp_path / "none.toml")])
    assert missing.exit_code == 1
    assert "cannot read the file: No such file or directory" in missing.output


def test_load_config_reads_the_process_environment(tmp_path, monkeypatch):
    path = tmp_path / "plant.toml"
    path.write_text("[api]\nport = 8000\n")
    monkeypatch.setenv("PLANTCAST_API__PORT", "8123")
    assert load_config(path).api.port == 8123


def test_the_deployment_files_hold_together(tmp_path):
    root = Path(__file__).resolve().parents[1]
    compose_toml = root / "deploy" / "plant.compose.toml"
    env = {"PLANTCAST_DATABASE_URL": "postgresql://plantcast:secret@postgres/plantcast"}
    config = load_config(compose_toml, env=env)
    assert config.database.url == env["PLANTCAST_DATABASE_URL"]
    compose = (root / "deploy" / "compose.yaml").read_text()
    assert "./plant.compose.toml:/etc/plantcast/plant.toml:ro" in compose
    unit = (root / "deploy" / "systemd" / "plantcast.service").read_text()
    assert "ExecStart=/opt/plantcast/bin/plantcast serve --config /etc/plantcast/plant.toml" in unit
    assert (
        'CMD ["serve", "--config", "/etc/plantcast/plant.toml"]'
        in (root / "Dockerfile").read_text()
    )
