"""One e-mail delivery through the SMTP server of the settings (PLANTCAST_SMTP_*)."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage

from plantcast.core.config import Settings
from plantcast.notify.signing import IDEMPOTENCY_HEADER
from plantcast.notify.webhook import DeliveryError


def compose(body: str, *, key: str, to: list[str], sender: str) -> EmailMessage:
    """A plain-text message: a one-line subject, the alert's fields, the JSON payload."""
    payload = json.loads(body)
    alert = payload.get("alert") or {}
    what = payload.get("event", "alert").removeprefix("alert.")
    subject = f"[plantcast] alert {alert.get('id', '?')} {what}: "
    if alert.get("asset"):  # an asset's alert: the asset, and the sensors behind it
        top = [c for c in alert.get("contributors") or [] if isinstance(c, dict)][:3]
        named = ", ".join(f"{c.get('sensor')} {100 * float(c.get('share') or 0):.0f}%" for c in top)
        subject += f"asset {alert['asset']} {alert.get('detector', '')}".rstrip()
        subject += f" ({named})" if named else ""
    else:
        subject += f"{alert.get('sensor') or '?'} {alert.get('detector', '')}".rstrip()
    lines = [subject.removeprefix("[plantcast] "), ""]
    lines += [f"{k}: {v}" for k, v in alert.items() if v is not None]
    lines += ["", json.dumps(payload, indent=2)]
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    # The same id on every retry: mail systems that saw it once may drop the repeat.
    msg["Message-ID"] = f"<{key}@plantcast>"
    msg[IDEMPOTENCY_HEADER] = key
    msg.set_content("\n".join(lines))
    return msg


def send(body: str, *, key: str, to: list[str], settings: Settings, timeout: float) -> None:
    """Hand the message to the SMTP server; raises :class:`DeliveryError` if it is refused."""
    if not settings.smtp_host:
        raise DeliveryError("PLANTCAST_SMTP_HOST is not set: no SMTP server to send through")
    msg = compose(body, key=key, to=to, sender=settings.smtp_from)
    host, port, security = settings.smtp_host, settings.smtp_port, settings.smtp_security
    try:
        smtp: smtplib.SMTP
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                password = settings.smtp_password
                smtp.login(settings.smtp_username, password.get_secret_value() if password else "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {host}:{port}: {exc}") from None
