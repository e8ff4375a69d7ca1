"""``plantcast config example``: a commented config that ``config check`` accepts as it is."""

from __future__ import annotations

EXAMPLE = """\
# plantcast plant configuration: `plantcast serve --config plant.toml` runs what it declares.
# Check it with `plantcast config check plant.toml`. Every key has a default: delete what you
# do not need. Environment variables override the file: PLANTCAST_<SECTION>__<KEY>, e.g.
# PLANTCAST_API__PORT=8001. Secrets are never written here: they come from the environment
# (PLANTCAST_DATABASE_URL with its password or PGPASSWORD, PLANTCAST_MQTT_PASSWORD,
# PLANTCAST_OPCUA_PASSWORD, PLANTCAST_SMTP_PASSWORD).
# Durations: 200ms, 5s, 30min, 1h, 7d.

[database]
# SQLite (a file) or PostgreSQL; PLANTCAST_DATABASE_URL, if set, wins.
url = "postgresql://plantcast@127.0.0.1:5432/plantcast"

# One block per broker subscription: each runs as its own `plantcast connect mqtt` process.
[[connectors.mqtt]]
name = "line1"                        # names the component in `plantcast status`
broker = "mqtt://127.0.0.1:1883"      # mqtts://… for TLS (CA: PLANTCAST_MQTT_CA_FILE)
topics = ["plant/line1/#"]            # QoS 1 subscriptions
format = "auto"                       # auto, json, number or sparkplug
template = "plant/{area}/{sensor}"    # topic → sensor name (or mapping = "tags.csv")
interval = "1s"                       # nominal interval of sensors it creates
unknown_sensors = "create"            # or "refuse": unmapped topics go to dead letters
# client_id = "plantcast-line1"       # the default: the broker keeps its session across restarts

# One block per OPC UA server: `plantcast connect opcua`.
# [[connectors.opcua]]
# name = "press"
# endpoint = "opc.tcp://10.0.0.5:4840"
# nodes = ["press_temp=ns=2;s=Press.Temp", "Objects/2:Press/2:Pressure"]
# nodes_file = "press-nodes.txt"
# sampling_interval = "1s"

[detection]                           # `plantcast detect --follow`
enabled = true
every = "5s"                          # pace of a pass: the lag is about this plus a pass
# sensors = ["pump1_pressure"]        # default: every sensor
dask = false                          # true: score on a local Dask cluster (one worker a CPU)
# workers = 2
# scheduler = "tcp://dask-scheduler:8786"

[forecasting]                         # the scheduled refit of every sensor's stored forecast
enabled = true
every = "1h"
model = "auto"
# horizon = "24h"                     # default: a day of each sensor's readings (24 to 1,440)
reselect_every = "7d"                 # auto chooses each sensor's model again this often
first_model = "fourier_linear"        # auto: a new sensor's first forecast, auto choosing next
points = 60                           # steps a forecast at most: faster sensors on coarser steps
dask = false

[notifications]                       # `plantcast notify run`: webhooks and e-mail
enabled = true
poll = "1s"
keep = "30d"                          # delivered notifications kept this long

[api]                                 # `plantcast api`
enabled = true
host = "127.0.0.1"
port = 8000
workers = 1

[dashboard]                           # the page (`plantcast dashboard`)
enabled = true
host = "127.0.0.1"
port = 8501

[retention]
keep = "400d"                         # readings older than this are removed (unset: kept)
every = "1d"

[jobs]                                # scheduled jobs, run by the `jobs` component
enabled = true
seasons_every = "7d"                  # seasons detected again from each sensor's data
partitions_every = "1d"               # PostgreSQL: next months' partitions made ahead
reports_every = "1d"                  # a CSV of the stored forecasts' backtest scores …
reports_dir = "reports"               # … written here (backtests-YYYYMMDD.csv)
nice = 10                             # CPU niceness of the jobs: refits yield to detection

[serve]
metrics_host = "127.0.0.1"
metrics_port = 9464                   # Prometheus /metrics of every component; 0: off
log_format = "json"                   # or "text"
stop_timeout = "10s"                  # SIGTERM: every component stops within this
backoff = "1s"                        # first restart delay of a component that died; doubles
max_backoff = "1min"
status_every = "5s"                   # how often component states are written for `status`
"""
