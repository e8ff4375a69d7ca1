# plantcast serve in a container (for those who use Docker; nothing in plantcast needs it).
#   docker build -t plantcast .
#   docker run --rm -v $PWD/plant.toml:/etc/plantcast/plant.toml:ro \
#     -e PLANTCAST_DATABASE_URL=postgresql://plantcast:SECRET@db/plantcast plantcast
# deploy/compose.yaml runs it beside PostgreSQL.
FROM python:3.11-slim

# pg_dump/pg_restore for `plantcast backup` and `restore` on PostgreSQL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/plantcast
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . \
    && useradd --system --create-home --home-dir /var/lib/plantcast plantcast

USER plantcast
WORKDIR /var/lib/plantcast
# API, page, Prometheus metrics (bind 0.0.0.0 in plant.toml to reach them from outside).
EXPOSE 8000 8501 9464
STOPSIGNAL SIGTERM
ENTRYPOINT ["plantcast"]
CMD ["serve", "--config", "/etc/plantcast/plant.toml"]
