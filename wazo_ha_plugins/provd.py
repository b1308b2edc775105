"""DeviceProvisioner ``provd``: Wazo's provisioning server, through its REST API.

On the master every registrar config (``X_type: registrar``) gets the slave as
``registrar_backup`` and ``proxy_backup``; the values each config had before are
remembered (first time only) in the plugin's persistent state, and put back —
not blanked — when HA is disabled. A config is written only when a value
changes, so a repeated edit sends no PUT. A call that fails half-way puts back
what it had already changed before raising, so provd is never left half-edited.

``resync_devices`` asks the phones to fetch their configuration again through
provd's asynchronous synchronize operations, a bounded number at a time.

Settings (``plugin_config.provd``): see ``docs/plugins/provd.rst``.
"""

from __future__ import annotations

import json
import os
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from wazo_ha_core import CheckResult, DeviceProvisioner, FunctionCheck, OperationResult, PluginError, PluginTimeout

MEDIA_TYPE = "application/vnd.proformatique.provd+json"
BACKUP_KEYS = ("registrar_backup", "proxy_backup")
REGISTRAR_QUERY = json.dumps({"X_type": "registrar"}, separators=(",", ":"))
# Operation states of provd's asynchronous operations that mean "finished".
DONE_STATES = {"success": True, "fail": False}


#: Where the docs (and the messages) tell the operator to put the token.
DEFAULT_TOKEN_FILE = "/etc/wazo-ha/provd-token"  # noqa: S105 (a path, not a secret)
#: How the operator turns the provisioner off (a conf.d file, so that config.yml stays as installed).
DISABLE_HINT = (
    "or, to manage the phones' backup registrar by hand, turn the provisioner off: "
    "`plugins: {device_provisioners: []}` in /etc/wazo-ha/conf.d/provd.yml"
)


class ProvdError(PluginError):
    """provd cannot be used as configured: the message is ``reason`` then ``fix`` (what to do), for the CLI's
    one line; the doctor shows them apart."""

    def __init__(self, reason: str, fix: str):
        super().__init__(f"{reason}. To fix: {fix}")
        self.reason, self.fix = reason, fix


def token_fix(token_file: str) -> str:
    return (
        f"put a wazo-auth token allowed to edit provd's configs in {token_file} (mode 0600, owned by root), e.g. "
        f"`(umask 077; wazo-auth-cli token create > {token_file})` as root (such a token lasts an hour: renew it "
        f"before enabling, disabling or resyncing), and set plugin_config.provd.token_file: {token_file} "
        f"(docs/plugins/provd.rst); {DISABLE_HINT}"
    )


def unreachable_fix(token_file: str) -> str:
    return (
        f"start wazo-provd on this node (systemctl start wazo-provd) or set plugin_config.provd.url, and give "
        f"wazo-ha its token in {token_file} (plugin_config.provd.token_file, docs/plugins/provd.rst); {DISABLE_HINT}"
    )


class ProvdProvisioner(DeviceProvisioner):
    default_config: dict[str, Any] = {
        "url": "http://127.0.0.1:8666/provd",
        "token": None,
        "token_file": None,
        "timeout": None,  # seconds per request; default: timeouts.command
        "resync_parallel": 5,
        "resync_timeout": 120.0,
        "poll_interval": 0.5,
        # Where provd keeps its installed plugins (checked empty on a slave by `wazo-ha doctor`).
        "plugins_dir": "/var/lib/wazo-provd/plugins",
    }

    def __init__(self, context):
        super().__init__(context)
        self.base = self.config["url"].rstrip("/")
        if not self.base.startswith(("http://", "https://")):
            raise PluginError(f"plugin_config.provd.url must be an http(s) URL, got {self.config['url']!r}")
        self.timeout = float(self.config["timeout"] or context.settings.get("timeouts.command"))

    # --- doctor --------------------------------------------------------------------

    def doctor_checks(self, node_type: str, peer: str | None, preflight: bool = False) -> list:
        """``wazo-ha doctor``: on the master, provd answers with the token (enabling edits its configs);
        on a slave, no provisioning plugin installed (provd does not run there)."""
        if node_type == "master":
            return [FunctionCheck("provd reachable with its token", self._reachable)]
        if node_type != "slave":
            return []
        return [FunctionCheck("no provisioning plugins on the slave", self._no_plugins_installed)]

    def _reachable(self) -> CheckResult:
        try:
            configs = self._registrar_configs()
        except ProvdError as exc:
            return CheckResult.fail(exc.reason, exc.fix)
        except PluginError as exc:
            return CheckResult.fail(str(exc), unreachable_fix(self._token_file_shown()))
        return CheckResult.passed(f"{self.base}: {len(configs)} registrar config(s) readable ({self._token_source()})")

    def _no_plugins_installed(self) -> CheckResult:
        directory = self.context.settings.resolve(self.config["plugins_dir"])
        try:
            installed = sorted(entry.name for entry in directory.iterdir() if entry.is_dir())
        except FileNotFoundError:
            return CheckResult.passed(f"{directory} does not exist")
        except OSError as exc:
            return CheckResult.fail(f"cannot list {directory}: {exc.strerror}", "check the path and permissions")
        if installed:
            return CheckResult.fail(
                f"{len(installed)} installed in {directory}: {', '.join(installed[:10])}",
                "uninstall them on the slave (Wazo's HA prerequisites: the phones are provisioned by the "
                "master only), e.g. with wazo-provd-cli before making the node a slave",
            )
        return CheckResult.passed(f"none in {directory}")

    # --- backup registrar ----------------------------------------------------------

    def enable_backup(self, backup_address: str) -> None:
        remembered_before = self.context.state.get("previous") or {}
        remembered = dict(remembered_before)
        written: list[dict] = []  # configs as they were before this call changed them
        try:
            for config in self._registrar_configs():
                config_id = config["id"]
                if config_id not in remembered:
                    remembered[config_id] = {key: config.get(key) for key in BACKUP_KEYS}
                    # Durable before the PUT: a crash after it still knows the old values.
                    self.context.state.set("previous", remembered)
                wanted = {**config, **{key: backup_address for key in BACKUP_KEYS}}
                if wanted != config:
                    self._put_config(wanted)
                    written.append(config)
            self.context.state.set("backup_address", backup_address)
        except Exception:
            self._put_back(written)
            if remembered_before:
                self.context.state.set("previous", remembered_before)
            else:
                self._forget("previous")
            raise
        self.log.info("provd: %d registrar config(s) now use %s as backup", len(written), backup_address)

    def disable_backup(self) -> None:
        remembered = self.context.state.get("previous") or {}
        if not remembered:
            return
        ours = self.context.state.get("backup_address")
        written: list[dict] = []
        try:
            for config in self._registrar_configs():
                previous = remembered.get(config["id"])
                if previous is None:
                    continue
                wanted = dict(config)
                for key in BACKUP_KEYS:
                    if ours is not None and config.get(key) != ours:
                        # Changed by hand since we set it: the operator's value stays.
                        self.log.warning("provd: config %s: %s changed by hand, left as is", config["id"], key)
                        continue
                    if previous[key] is None:
                        wanted.pop(key, None)
                    else:
                        wanted[key] = previous[key]
                if wanted != config:
                    self._put_config(wanted)
                    written.append(config)
        except Exception:
            self._put_back(written)
            raise
        self._forget("previous")
        self._forget("backup_address")
        self.log.info("provd: backup registrar restored on %d config(s)", len(written))

    def _put_back(self, configs: list[dict]) -> None:
        for config in reversed(configs):
            try:
                self._put_config(config)
            except Exception as exc:  # keep going: put back as much as possible
                self.log.error("provd: could not put back config %s: %s", config["id"], exc)

    def _forget(self, key: str) -> None:
        self.context.state.delete(key)

    def _registrar_configs(self) -> list[dict]:
        query = urllib.parse.urlencode({"q": REGISTRAR_QUERY})
        body = self._request("GET", f"/cfg_mgr/configs?{query}")
        configs = body.get("configs") if isinstance(body, dict) else None
        if not isinstance(configs, list):
            raise PluginError(f"provd at {self.base}: unexpected answer to the registrar config query")
        return sorted(configs, key=lambda config: str(config.get("id")))

    def _put_config(self, config: dict) -> None:
        config_id = urllib.parse.quote(str(config["id"]), safe="")
        self._request("PUT", f"/cfg_mgr/configs/{config_id}", {"config": config})

    # --- device resynchronisation ---------------------------------------------------

    def resync_devices(self, *, all_devices: bool = False, progress=None) -> OperationResult:
        progress = progress or (lambda message, figures: None)
        devices = self._request("GET", "/dev_mgr/devices").get("devices", [])
        if not all_devices:
            devices = self._devices_on_registrar_configs(devices)
        ids = sorted(str(device["id"]) for device in devices if device.get("id"))
        failures: dict[str, str] = {}
        pending = list(ids)
        running: dict[str, tuple[str, float]] = {}  # device id → (operation path, deadline)
        parallel = max(1, int(self.config["resync_parallel"]))
        done = 0
        while pending or running:
            while pending and len(running) < parallel:
                device_id = pending.pop(0)
                try:
                    location = self._start_synchronize(device_id)
                except PluginError as exc:
                    failures[device_id] = str(exc)
                    done += 1
                    continue
                running[device_id] = (location, time.monotonic() + float(self.config["resync_timeout"]))
            for device_id, (location, deadline) in list(running.items()):
                verdict = self._poll(location, deadline)
                if verdict is None:
                    continue
                del running[device_id]
                done += 1
                if verdict is not True:
                    failures[device_id] = verdict
                self._delete_operation(location)
                progress(f"{done}/{len(ids)} devices", {"done": done, "total": len(ids), "failed": len(failures)})
            if running:
                time.sleep(float(self.config["poll_interval"]))
        return OperationResult(
            "synced" if ids else "skipped",
            message=f"{len(ids) - len(failures)} of {len(ids)} device(s) resynchronised",
            figures={"devices": len(ids), "failed": len(failures), "failures": failures},
            warnings=[f"device {device_id}: {reason}" for device_id, reason in sorted(failures.items())],
        )

    def _devices_on_registrar_configs(self, devices: list[dict]) -> list[dict]:
        """Devices whose config reaches a registrar config through ``parent_ids``."""
        configs = {str(c.get("id")): c for c in self._request("GET", "/cfg_mgr/configs").get("configs", [])}
        registrars = {config_id for config_id, c in configs.items() if c.get("X_type") == "registrar"}

        def uses_registrar(config_id: str, seen: set[str]) -> bool:
            if config_id in registrars:
                return True
            if config_id in seen or config_id not in configs:
                return False
            seen.add(config_id)
            return any(uses_registrar(str(parent), seen) for parent in configs[config_id].get("parent_ids") or [])

        return [device for device in devices if device.get("config") and uses_registrar(str(device["config"]), set())]

    def _start_synchronize(self, device_id: str) -> str:
        location = self._request("POST", "/dev_mgr/synchronize", {"id": device_id}, want_location=True)
        if not location:
            raise PluginError("provd gave no location for the synchronize operation")
        path = urllib.parse.urlsplit(urllib.parse.urljoin(self.base + "/", location)).path
        prefix = urllib.parse.urlsplit(self.base).path
        return path[len(prefix) :] if path.startswith(prefix) else path

    def _poll(self, location: str, deadline: float) -> bool | str | None:
        """True: done; a string: failed (why); None: still running."""
        try:
            body = self._request("GET", location)
        except PluginError as exc:
            return str(exc)
        state = str(body.get("status", "")) if isinstance(body, dict) else ""
        if state in DONE_STATES:
            return True if DONE_STATES[state] else f"provd reports the synchronisation failed ({state})"
        if time.monotonic() > deadline:
            return f"not finished after {self.config['resync_timeout']} s"
        return None

    def _delete_operation(self, location: str) -> None:
        try:
            self._request("DELETE", location)
        except PluginError as exc:
            self.log.warning("provd: could not delete finished operation %s: %s", location, exc)

    # --- HTTP --------------------------------------------------------------------------

    def _token_file_shown(self) -> str:
        """The token file as the operator should create it (the configured one, else the documented default)."""
        return str(self.config["token_file"] or DEFAULT_TOKEN_FILE)

    def _token_source(self) -> str:
        """Where the token came from, for messages (never the token itself)."""
        if self.config["token"]:
            return "token from plugin_config.provd.token"
        if self.config["token_file"]:
            return f"token from {self.context.settings.resolve(self.config['token_file'])}"
        return "no token configured: plugin_config.provd.token_file is not set"

    def _token(self) -> str | None:
        if self.config["token"]:
            return str(self.config["token"])
        if not self.config["token_file"]:
            return None
        path = self.context.settings.resolve(self.config["token_file"])
        try:
            mode = os.stat(path).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ProvdError(
                    f"provd token file {path} is readable by others (mode {mode & 0o777:04o})", f"chmod 600 {path}"
                )
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ProvdError(
                f"cannot read the provd token file {path}: {exc.strerror}", token_fix(self._token_file_shown())
            ) from None

    def _request(self, method: str, path: str, body: Any = None, want_location: bool = False) -> Any:
        headers = {"Accept": MEDIA_TYPE}
        token = self._token()
        if token:
            headers["X-Auth-Token"] = token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = MEDIA_TYPE
        url = self.base + path
        # The scheme is checked to be http(s) in __init__.
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                payload = response.read()
                if want_location:
                    return response.headers.get("Location")
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode(errors="replace").strip()
            if exc.code in (401, 403):
                raise ProvdError(
                    f"provd {method} {path}: HTTP {exc.code} {exc.reason}: the token was refused "
                    f"({self._token_source()})",
                    token_fix(self._token_file_shown()),
                ) from None
            raise PluginError(
                f"provd {method} {path}: HTTP {exc.code} {exc.reason}{': ' + detail if detail else ''}"
            ) from None
        except TimeoutError:
            raise PluginTimeout(f"provd {method} {path}: no answer within {self.timeout:g} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise PluginTimeout(f"provd {method} {path}: no answer within {self.timeout:g} s") from None
            raise ProvdError(
                f"provd at {self.base} unreachable: {exc.reason}", unreachable_fix(self._token_file_shown())
            ) from None
        if not payload:
            return {}
        try:
            return json.loads(payload)
        except ValueError:
            raise PluginError(f"provd {method} {path}: answer is not JSON") from None
