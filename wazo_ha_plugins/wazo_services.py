"""ServiceManager ``wazo_services``: start or stop this node's telephony services.

Take over runs ``start_commands`` in order (today's ``xivo-manage-slave-services
start``); give back runs ``stop_commands`` (today's ``… stop``). Every command
is an argument list from the settings, run without a shell and bounded by
``timeouts.command``. Before acting, the ``status_commands`` tell the current
state (each exits 0 while its service runs); start acts unless all of them
run, stop acts unless none does — so the watch or cron may call either as
often as it likes and nothing is restarted needlessly. After the start
commands the plugin waits up to ``settle`` seconds for every status command to
report running (after the stop commands: stopped), so that "start returned"
means "this node serves" even when a supervisor acts asynchronously.

A step may be written ``{command: [...], ignore_failure: true}`` when its
failure must not stop the sequence (e.g. DHCP not configured on this site).

After a copy-back, ``refresh_mailboxes`` asks Asterisk to recount each changed
voicemail mailbox (AMI ``VoicemailRefresh`` through wazo-amid's REST API,
:mod:`.amid`), so the phones' message-waiting lamps follow at once.
"""

from __future__ import annotations

import re
import shlex
import time

from wazo_ha_core import OperationResult, PluginError, ServiceManager, ServiceState

from . import amid
from .commands import check_command, failure_detail, run_command

WAZO_UNITS = ["asterisk", "wazo-provd", "wazo-agid", "wazo-amid", "wazo-calld", "wazo-agentd"]


class WazoServices(ServiceManager):
    default_config = {
        "status_commands": [["systemctl", "is-active", "--quiet", unit] for unit in WAZO_UNITS],
        "start_commands": [
            {"command": ["systemctl", "start", "isc-dhcp-server"], "ignore_failure": True},
            {"command": ["wazo-confgen", "--invalidate", "asterisk/pjsip.conf"], "ignore_failure": True},
            ["wazo-service", "enable"],
            ["wazo-service", "start"],
            {"command": ["wazo-agentd-cli", "-c", "relog all"], "ignore_failure": True},
        ],
        "stop_commands": [
            ["wazo-service", "stop"],
            ["wazo-service", "disable"],
            {"command": ["systemctl", "stop", "isc-dhcp-server"], "ignore_failure": True},
        ],
        "active_calls_command": ["asterisk", "-rx", "core show calls"],
        "settle": 30.0,
        # wazo-amid, for VoicemailRefresh after a copy-back (docs/plugins/wazo_services.rst)
        "amid_url": amid.DEFAULT_URL,
        "amid_token_file": amid.DEFAULT_TOKEN_FILE,
        "amid_timeout": None,  # seconds per request; default: timeouts.connect
    }

    def __init__(self, context):
        super().__init__(context)
        self.status_commands = [
            check_command(self.name, f"status_commands[{i}]", c) for i, c in enumerate(self._list("status_commands"))
        ]
        self.start_steps = self._steps("start_commands")
        self.stop_steps = self._steps("stop_commands")
        calls = self.config["active_calls_command"]
        self.active_calls_command = check_command(self.name, "active_calls_command", calls) if calls else None
        settle = self.config["settle"]
        if isinstance(settle, bool) or not isinstance(settle, (int, float)) or settle < 0:
            raise PluginError(f"plugin_config.{self.name}.settle must be a number of seconds >= 0, got {settle!r}")
        self.settle = float(settle)
        self.timeout = float(context.settings.get("timeouts.command"))
        self.amid_url = amid.check_url(f"plugin_config.{self.name}.amid_url", self.config["amid_url"])
        self.amid_timeout = float(self.config["amid_timeout"] or context.settings.get("timeouts.connect"))

    # --- the contract ------------------------------------------------------------------

    def start(self) -> None:
        running = self._running()
        if running and all(running):
            self.log.info("take over: services already running, nothing to do")
            return
        self._run_steps("take over", self.start_steps)
        self._wait_until(True, "take over")

    def accept_token(self, token: int) -> None:
        """Refuse a fencing token lower than the highest this node has started under (kept in the store)."""
        highest = self.context.state.get("highest_token")
        if isinstance(highest, int) and token < highest:
            raise PluginError(f"{self.name}: fencing token {token} is older than {highest}, already served here")
        self.context.state.set("highest_token", token)

    def stop(self) -> None:
        running = self._running()
        if running and not any(running):
            self.log.info("give back: services already stopped, nothing to do")
            return
        self._run_steps("give back", self.stop_steps)
        self._wait_until(False, "give back")

    def status(self) -> ServiceState:
        running = self._running()
        if not running:
            return ServiceState(None, "no status_commands configured")
        up = [shlex.join(c) for c, ok in zip(self.status_commands, running, strict=True) if ok]
        if all(running):
            return ServiceState(True, f"{len(up)} service check(s) pass")
        if not any(running):
            return ServiceState(False, "no service runs")
        return ServiceState(False, f"partly running: {len(up)} of {len(running)} checks pass")

    def active_calls(self) -> int | None:
        if not self.active_calls_command:
            return None
        try:
            result = run_command(self.active_calls_command, min(self.timeout, 5.0), "active calls")
        except PluginError as exc:
            self.log.debug("cannot count active calls: %s", exc)
            return None
        found = re.search(r"(\d+) active call", result.stdout)
        return int(found.group(1)) if result.returncode == 0 and found else None

    def refresh_mailboxes(self, mailboxes) -> OperationResult:
        """``VoicemailRefresh`` (headers Context and Mailbox) per mailbox through wazo-amid; see the contract."""
        from wazo_ha_core.voicemail.changed import refusal

        token_file = self.config["amid_token_file"]
        if not token_file:
            raise PluginError(f"plugin_config.{self.name}.amid_token_file is not set: cannot reach wazo-amid")
        token = amid.read_token(self.context.settings.resolve(token_file), f"plugin_config.{self.name}.amid_token_file")
        failed: dict[str, str] = {}
        refreshed = 0
        unreachable = None
        for context, mailbox in mailboxes:
            where = f"{context}/{mailbox}"
            problem = refusal(context, mailbox)  # the core checked it; a header is never built from anything else
            if problem is None and unreachable is not None:
                problem = unreachable
            if problem is None:
                try:
                    headers = {"Context": context, "Mailbox": mailbox}
                    amid.action(self.amid_url, token, "VoicemailRefresh", headers, self.amid_timeout)
                except amid.AmidUnreachable as exc:
                    problem = unreachable = str(exc)
                except PluginError as exc:
                    problem = str(exc)
            if problem is None:
                refreshed += 1
                self.log.info("voicemail %s: Asterisk asked to recount it (VoicemailRefresh)", where)
            else:
                failed[where] = problem
        return OperationResult(
            "synced" if refreshed else "skipped",
            f"{refreshed} of {len(mailboxes)} mailbox(es) refreshed",
            {"refreshed": refreshed, "failed": failed},
        )

    # --- internals -----------------------------------------------------------------------

    def _running(self) -> list[bool]:
        return [run_command(c, self.timeout, "status").returncode == 0 for c in self.status_commands]

    def _run_steps(self, what: str, steps: list[tuple[list[str], bool]]) -> None:
        for number, (argv, ignore_failure) in enumerate(steps, start=1):
            where = f"{self.name} {what}: step {number}/{len(steps)}"
            try:
                result = run_command(argv, self.timeout, where)
                problem = None if result.returncode == 0 else f"`{shlex.join(argv)}` failed: {failure_detail(result)}"
            except PluginError as exc:
                if not ignore_failure:
                    raise
                problem = str(exc)
            if problem and not ignore_failure:
                raise PluginError(f"{where}: {problem}")
            if problem:
                self.log.warning("%s (ignored): %s", where, problem)
            else:
                self.log.info("%s `%s` done", where, shlex.join(argv))

    def _wait_until(self, wanted: bool, what: str) -> None:
        """Until every status check says ``wanted`` (supervisors like monit act asynchronously)."""
        if not self.status_commands:
            return
        deadline = time.monotonic() + self.settle
        while True:
            running = self._running()
            wrong = [shlex.join(c) for c, ok in zip(self.status_commands, running, strict=True) if ok != wanted]
            if not wrong:
                return
            if time.monotonic() >= deadline:
                state = "still fail" if wanted else "still pass"
                raise PluginError(
                    f"{self.name} {what}: the commands ran but after {self.settle:g} s "
                    f"these checks {state}: {'; '.join(wrong)}"
                )
            time.sleep(0.1)  # polling a service's status; not test synchronisation

    def _list(self, key: str) -> list:
        value = self.config[key]
        if not isinstance(value, list):
            raise PluginError(f"plugin_config.{self.name}.{key} must be a list of commands, got {value!r}")
        return value

    def _steps(self, key: str) -> list[tuple[list[str], bool]]:
        steps = []
        for index, step in enumerate(self._list(key)):
            where = f"{key}[{index}]"
            if isinstance(step, dict):
                unknown = set(step) - {"command", "ignore_failure"}
                if unknown:
                    raise PluginError(f"plugin_config.{self.name}.{where}: unknown key(s) {sorted(unknown)}")
                steps.append(
                    (
                        check_command(self.name, where + ".command", step.get("command")),
                        bool(step.get("ignore_failure")),
                    )
                )
            else:
                steps.append((check_command(self.name, where, step), False))
        return steps
