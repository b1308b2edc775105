"""wazo-amid's REST API, the path to Asterisk's manager interface (AMI) on a Wazo node.

``POST <url>/action/<Action>`` with a JSON object of the action's headers and a
wazo-auth token in ``X-Auth-Token`` (ACL ``amid.action.<Action>.create``);
wazo-amid relays it to Asterisk and answers ``200`` with a JSON list of the AMI
messages received, an error being an entry with ``"Response": "Error"``.
Used by ``wazo_services`` to have app_voicemail recount mailboxes after a
copy-back (``VoicemailRefresh``, Asterisk >= 12).

The token is read from a file (mode 0600, never from the settings), never
logged nor put in a message. Each request is bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import re
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from wazo_ha_core import PluginError

ACTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
DEFAULT_URL = "http://127.0.0.1:9491/1.0"
DEFAULT_TOKEN_FILE = "/etc/wazo-ha/amid-token"  # noqa: S105 (a path, not a secret)


class AmidUnreachable(PluginError):
    """wazo-amid did not answer (refused, timed out): the next requests would fail the same way."""


def check_url(where: str, url: Any) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise PluginError(f"{where} must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


def read_token(path: Path, where: str) -> str:
    """The token in ``path``; PluginError (naming the file, never the token) when absent, open to others or empty."""
    fix = (
        f"put a wazo-auth token with ACL amid.action.VoicemailRefresh.create in {path} (mode 0600, owned by root) "
        f"and set {where}; see docs/plugins/wazo_services.rst"
    )
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PluginError(f"the wazo-amid token file {path} is open to others (mode {mode & 0o777:04o}): chmod 600")
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PluginError(f"cannot read the wazo-amid token file {path}: {exc.strerror}. To fix: {fix}") from None
    if not token or any(character.isspace() for character in token):
        raise PluginError(f"the wazo-amid token file {path} holds no token. To fix: {fix}")
    return token


def action(url: str, token: str, name: str, headers: dict[str, str], timeout: float) -> list[dict[str, Any]]:
    """Send AMI action ``name`` with ``headers`` through wazo-amid; its messages, or PluginError saying why.

    Raises :class:`AmidUnreachable` when wazo-amid did not answer within ``timeout``
    or refused the connection, :class:`PluginError` for an HTTP error (401/403: the
    token) or an AMI ``Response: Error`` (its ``Message``).
    """
    if not ACTION_NAME.fullmatch(name):
        raise PluginError(f"AMI action name {name!r} refused")
    body = json.dumps(headers).encode()
    request = urllib.request.Request(  # noqa: S310 (check_url allows http(s) only)
        f"{url}/action/{name}",
        data=body,
        headers={"X-Auth-Token": token, "Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    where = f"wazo-amid {url}/action/{name}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            payload = response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc.read(500))
        if exc.code in (401, 403):
            raise PluginError(f"{where}: HTTP {exc.code}: the token was refused or lacks the ACL{detail}") from None
        raise PluginError(f"{where}: HTTP {exc.code}{detail}") from None
    except TimeoutError:
        raise AmidUnreachable(f"{where}: no answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise AmidUnreachable(f"{where}: no answer within {timeout:g} s") from None
        raise AmidUnreachable(f"{where}: unreachable ({exc.reason})") from None
    except OSError as exc:
        raise AmidUnreachable(f"{where}: {exc.strerror or exc}") from None
    try:
        messages = json.loads(payload)
    except ValueError:
        raise PluginError(f"{where}: the answer is not JSON") from None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise PluginError(f"{where}: the answer is not a list of AMI messages")
    for message in messages:
        if str(message.get("Response", "")).lower() == "error":
            raise PluginError(f"{where}: Asterisk answered Error: {str(message.get('Message', ''))[:200]}")
    return messages


def _error_detail(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {str(message)[:200]}" if message else ""
