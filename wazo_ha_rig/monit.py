"""A real monit daemon with its own control file, pid and state files, supervising
the SIP stand-in (sipp answering OPTIONS) — what ``wazo_services`` drives on the slave.

    monit = Monit.start(directory, address="127.0.0.1", port=15060)        # or host=<netns Host>
    monit.cli("start", "standin")                                           # what a start command does
    monit.standin_running()

The daemon is started in the foreground (``monit -I``) so its PID is ours; the
stand-in's PID is the one its start program writes. :meth:`stop` ends both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .netns import Host
from .sip import sipp_command, write_scenario
from .waiting import wait_for

SERVICE = "standin"


@dataclass
class Monit:
    directory: Path
    control_file: Path
    process: subprocess.Popen
    host: Host | None

    @classmethod
    def start(cls, directory: Path, address: str, port: int = 5060, host: Host | None = None) -> Monit:
        directory.mkdir(parents=True, exist_ok=True)
        scenario = write_scenario(directory)
        pidfile = directory / "standin.pid"
        sipp = " ".join(sipp_command(scenario, address, port))
        _script(
            directory / "standin-start",
            f"""
            cd {directory}
            {sipp} </dev/null >{directory}/standin.log 2>&1 &
            echo $! > {pidfile}
            """,
        )
        _script(directory / "standin-stop", f'[ -s {pidfile} ] && kill "$(cat {pidfile})"; rm -f {pidfile}; exit 0')
        _script(directory / "standin-status", f'kill -0 "$(cat {pidfile} 2>/dev/null)" 2>/dev/null')
        control = directory / "monitrc"
        control.write_text(
            textwrap.dedent(
                f"""\
                set daemon 1
                set pidfile {directory}/monit.pid
                set statefile {directory}/monit.state
                set idfile {directory}/monit.id
                set logfile {directory}/monit.log
                set httpd unixsocket {directory}/monit.sock
                    allow localhost
                check process {SERVICE} with pidfile {pidfile}
                    start program = "{directory}/standin-start" with timeout 10 seconds
                    stop program = "{directory}/standin-stop"
                    mode manual
                """
            )
        )
        control.chmod(0o600)
        command = ["monit", "-I", "-c", str(control)]
        if host is not None:
            process = host.popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        monit = cls(directory, control, process, host)
        wait_for(lambda: monit.cli("summary").returncode == 0, 15, "monit answering on its control socket")
        return monit

    def command(self, *args: str) -> list[str]:
        """The monit CLI command line for this daemon (for service manager settings)."""
        return ["monit", "-c", str(self.control_file), *args]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=30)

    @property
    def status_command(self) -> list[str]:
        return [str(self.directory / "standin-status")]

    def standin_running(self) -> bool:
        return subprocess.run(self.status_command).returncode == 0

    def standin_pid(self) -> int | None:
        try:
            return int((self.directory / "standin.pid").read_text())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.standin_pid()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if pid is not None:  # the stand-in monit started for us
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body).strip() + "\n")
    path.chmod(0o755)
