"""OpenID Connect login for the page, set from the environment (``PLANTCAST_OIDC_*``).

The page logs people in with Streamlit's ``st.login``, which reads its provider from a secrets
file. :func:`oidc_settings` reads and checks the variables; :func:`secrets_toml` renders that
file (written 0600 by ``python -m plantcast.dashboard``, never into the repository). Any
provider that publishes ``/.well-known/openid-configuration`` works: Keycloak, Entra ID,
Google, …
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from plantcast.core.errors import InputError

PREFIX = "PLANTCAST_OIDC_"
ISSUER = PREFIX + "ISSUER"
CLIENT_ID = PREFIX + "CLIENT_ID"
CLIENT_SECRET = PREFIX + "CLIENT_SECRET"
REDIRECT_URI = PREFIX + "REDIRECT_URI"
COOKIE_SECRET = PREFIX + "COOKIE_SECRET"
ROLE_CLAIM = PREFIX + "ROLE_CLAIM"
REQUIRED = (ISSUER, CLIENT_ID, CLIENT_SECRET)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    cookie_secret: str
    role_claim: str | None  # a claim naming the role (a string or a list); None: users table

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def configured(env: Mapping[str, str] | None = None) -> bool:
    """True when any ``PLANTCAST_OIDC_*`` variable of the required ones is set."""
    env = os.environ if env is None else env
    return any(env.get(k, "").strip() for k in REQUIRED)


def _url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise InputError(f"{name} must be an http(s) URL, got {value!r}", field=name)
    return value


def oidc_settings(
    host: str, port: int, env: Mapping[str, str] | None = None
) -> OidcSettings | None:
    """The login settings from the environment; None when none is set. Half a configuration
    (an issuer without a client, …) is an error naming what is missing."""
    env = os.environ if env is None else env
    if not configured(env):
        return None
    missing = [k for k in REQUIRED if not env.get(k, "").strip()]
    if missing:
        raise InputError(f"OpenID Connect login needs {', '.join(missing)} too", field=missing[0])
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    redirect = env.get(REDIRECT_URI, "").strip() or f"http://{shown}:{port}/oauth2callback"
    claim = env.get(ROLE_CLAIM, "").strip() or None
    return OidcSettings(
        issuer=_url(ISSUER, env[ISSUER].strip()),
        client_id=env[CLIENT_ID].strip(),
        client_secret=env[CLIENT_SECRET].strip(),
        redirect_uri=_url(REDIRECT_URI, redirect),
        # Signs the login cookie; a new one each start logs everyone out on a restart.
        cookie_secret=env.get(COOKIE_SECRET, "").strip() or secrets.token_urlsafe(32),
        role_claim=claim,
    )


def secrets_toml(s: OidcSettings) -> str:
    """The ``[auth]`` table ``st.login`` reads (strings as TOML basic strings)."""
    q = json.dumps  # a JSON string is a valid TOML basic string
    return (
        "[auth]\n"
        f"redirect_uri = {q(s.redirect_uri)}\n"
        f"cookie_secret = {q(s.cookie_secret)}\n"
        f"client_id = {q(s.client_id)}\n"
        f"client_secret = {q(s.client_secret)}\n"
        f"server_metadata_url = {q(s.metadata_url)}\n"
    )


def refuse_open_bind(host: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why the page may not bind ``host`` (None: it may). Beyond 127.0.0.1 the page is for
    whoever reaches the port, so it needs login."""
    if host in LOCAL_HOSTS or configured(env):
        return None
    return (
        f"refusing to serve the page on {host}: beyond 127.0.0.1 it requires login. Set "
        f"{ISSUER}, {CLIENT_ID} and {CLIENT_SECRET} (OpenID Connect: Keycloak, Entra ID, "
        "Google, …), or bind 127.0.0.1."
    )
