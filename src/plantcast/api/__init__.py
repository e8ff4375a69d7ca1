"""The REST API: a FastAPI surface over the same services the CLI calls.

Roles: ``app`` builds the application (``create_app``) and its middleware (request size
limit, Prometheus metrics); ``auth`` checks API keys and their scopes (read ⊂ write ⊂ admin);
``problems`` turns every error into RFC 9457 ``application/problem+json``; ``models`` are the
pydantic shapes that both validate requests and generate the OpenAPI document at ``/docs``;
``routes`` hold one module per resource. Routes parse, call a service or the store facade, and
shape the answer: no SQL and no analytics live here (docs/architecture.md: surfaces).
"""

from plantcast.api.app import create_app

__all__ = ["create_app"]
