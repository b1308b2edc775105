"""STAND-INS installed in a chroot node for what a chroot cannot run: systemd and Wazo's own commands.

A chroot has no systemd and no Wazo; wazo-ha's defaults call ``systemctl`` (PostgreSQL reload and
restart, the schedules' units, the telephony units' state) and ``wazo-service`` (take over, give
back). These small scripts go in the node's ``/usr/local/sbin`` (first on root's PATH) and follow
the command lines' contracts, nothing more:

* ``systemctl``: ``reload|restart|start|stop postgresql`` → ``pg_ctlcluster 15 main ...``;
  ``reload ssh`` → SIGHUP to ``/run/sshd.pid``;
  ``daemon-reload`` → nothing; ``enable [--now] UNIT...`` and ``disable [--now] UNIT...`` record the
  unit as enabled in ``/var/lib/rig-systemctl``; ``--now`` (or ``start``/``stop``) on a ``.service``
  with an ``ExecStart=`` starts/stops that command detached, its PID in ``/run/rig-systemctl`` (the
  node's teardown ends it by that PID); ``is-active``/``is-enabled [--quiet]`` answer from that state.
  Telephony units (``asterisk``, ``wazo-*``) are "active" while ``wazo-service start`` is in force.
* ``wazo-service start|stop|enable|disable|status``: records the state the unit checks read.
* ``wazo-auth-cli token create``: prints the token the provd stand-in accepts.
* ``asterisk -rx "core show calls"``: no call in progress (the failback's courtesy wait).
* ``wazo-confgen``, ``wazo-agentd-cli``: exit 0.

Every call is appended to ``/var/log/rig-standins.log`` so a test can show what wazo-ha ran.
"""

from __future__ import annotations

from pathlib import Path

SYSTEMCTL = r"""#!/usr/bin/python3
# STAND-IN for systemctl in a wazo-ha rig chroot (wazo_ha_rig/chroot_standins.py): no systemd here.
import os, signal, subprocess, sys, time
STATE, RUN = "/var/lib/rig-systemctl", "/run/rig-systemctl"
TELEPHONY = ("asterisk", "isc-dhcp-server", "wazo-provd", "wazo-agid", "wazo-amid", "wazo-calld", "wazo-agentd")
os.makedirs(STATE, exist_ok=True); os.makedirs(RUN, exist_ok=True)
with open("/var/log/rig-standins.log", "a") as log:
    log.write("systemctl " + " ".join(sys.argv[1:]) + "\n")
args = [a for a in sys.argv[1:] if not a.startswith("-")]
flags = [a for a in sys.argv[1:] if a.startswith("-")]
quiet = "--quiet" in flags or "-q" in flags
if not args:
    sys.exit(0)
verb, units = args[0], [u if "." in u else u + ".service" for u in args[1:]]

def unit_file(unit):
    for d in ("/etc/systemd/system", "/lib/systemd/system"):
        if os.path.exists(os.path.join(d, unit)):
            return os.path.join(d, unit)

def pid(unit):
    try:
        value = int(open(os.path.join(RUN, unit + ".pid")).read())
        os.kill(value, 0)
        return value
    except (OSError, ValueError):
        return None

def start(unit):
    if unit == "postgresql.service":
        return subprocess.call(["pg_ctlcluster", "15", "main", "start"])
    if unit.endswith(".timer") or unit.split(".")[0] in TELEPHONY or pid(unit):
        return 0
    path = unit_file(unit)
    if not path:
        print(f"Failed to start {unit}: Unit {unit} not found.", file=sys.stderr); return 5
    line = next((l for l in open(path) if l.startswith("ExecStart=")), None)
    if line:
        import shlex
        out = open(f"/var/log/rig-{unit}.log", "ab")
        child = subprocess.Popen(shlex.split(line[len("ExecStart="):]), stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=out, start_new_session=True)
        open(os.path.join(RUN, unit + ".pid"), "w").write(str(child.pid))
    return 0

def stop(unit):
    if unit == "postgresql.service":
        return subprocess.call(["pg_ctlcluster", "15", "main", "stop"])
    value = pid(unit)
    if value:
        os.kill(value, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(value, 0); time.sleep(0.05)
            except OSError:
                break
    try:
        os.unlink(os.path.join(RUN, unit + ".pid"))
    except OSError:
        pass
    return 0

def active(unit):
    if unit.split(".")[0] in TELEPHONY:
        return os.path.exists("/var/lib/rig-wazo-service/started")
    if unit == "postgresql.service":
        return subprocess.call(["pg_ctlcluster", "15", "main", "status"], stdout=subprocess.DEVNULL) == 0
    return bool(pid(unit)) or (unit.endswith(".timer") and os.path.exists(os.path.join(STATE, unit)))

status = 0
if verb == "daemon-reload":
    pass
elif verb in ("reload", "restart") and units == ["postgresql.service"]:
    status = subprocess.call(["pg_ctlcluster", "15", "main", verb])
elif verb in ("reload", "restart") and units in (["ssh.service"], ["sshd.service"]):
    try:  # sshd re-reads its configuration on SIGHUP (it re-executes itself, same PID)
        os.kill(int(open("/run/sshd.pid").read()), signal.SIGHUP)
    except (OSError, ValueError) as exc:
        print(f"Failed to {verb} ssh.service: {exc}", file=sys.stderr); status = 1
elif verb == "enable":
    for unit in units:
        open(os.path.join(STATE, unit), "w").close()
        if "--now" in flags:
            status = status or start(unit)
elif verb == "disable":
    for unit in units:
        if os.path.exists(os.path.join(STATE, unit)):
            os.unlink(os.path.join(STATE, unit))
        if "--now" in flags:
            status = status or stop(unit)
elif verb in ("start", "stop", "restart"):
    for unit in units:
        if verb in ("stop", "restart"):
            status = status or stop(unit)
        if verb in ("start", "restart"):
            status = status or start(unit)
elif verb == "is-active":
    status = 0 if all(active(u) for u in units) else 3
    if not quiet:
        print("\n".join("active" if active(u) else "inactive" for u in units))
elif verb == "is-enabled":
    enabled = [os.path.exists(os.path.join(STATE, u)) for u in units]
    status = 0 if all(enabled) else 1
    if not quiet:
        print("\n".join("enabled" if e else "disabled" for e in enabled))
else:
    print(f"rig systemctl stand-in: {verb} not supported", file=sys.stderr); status = 1
sys.exit(status)
"""

WAZO_SERVICE = r"""#!/bin/sh
# STAND-IN for wazo-service in a wazo-ha rig chroot (wazo_ha_rig/chroot_standins.py).
echo "wazo-service $*" >>/var/log/rig-standins.log
mkdir -p /var/lib/rig-wazo-service
case "$1" in
  start) touch /var/lib/rig-wazo-service/started ;;
  stop) rm -f /var/lib/rig-wazo-service/started ;;
  enable|disable) echo "$1" >/var/lib/rig-wazo-service/enabled ;;
  status) test -e /var/lib/rig-wazo-service/started ;;
  *) echo "usage: wazo-service start|stop|enable|disable|status" >&2; exit 2 ;;
esac
"""

WAZO_AUTH_CLI = r"""#!/bin/sh
# STAND-IN for wazo-auth-cli in a wazo-ha rig chroot: `token create` prints the provd stand-in's token.
echo "wazo-auth-cli $*" >>/var/log/rig-standins.log
if [ "$1 $2" = "token create" ]; then cat /var/lib/rig-standins/auth-token; exit 0; fi
echo "rig wazo-auth-cli stand-in: only 'token create'" >&2; exit 2
"""

ASTERISK = r"""#!/bin/sh
# STAND-IN for `asterisk -rx "core show calls"` in a wazo-ha rig chroot: no call in progress.
echo "asterisk $*" >>/var/log/rig-standins.log
if [ "$1 $2" = "-rx core show calls" ]; then printf '0 active calls\n0 calls processed\n'; exit 0; fi
echo "rig asterisk stand-in: only -rx 'core show calls'" >&2; exit 2
"""

NOOP = """#!/bin/sh
# STAND-IN in a wazo-ha rig chroot (wazo_ha_rig/chroot_standins.py): records the call, succeeds.
echo "$(basename "$0") $*" >>/var/log/rig-standins.log
"""


def install(root: Path, auth_token: str | None = None) -> None:
    """Put the stand-ins in the node rooted at ``root`` (``auth_token``: what ``wazo-auth-cli token create`` prints)."""
    bin_dir = root / "usr/local/sbin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    scripts = {
        "systemctl": SYSTEMCTL,
        "wazo-service": WAZO_SERVICE,
        "wazo-auth-cli": WAZO_AUTH_CLI,
        "asterisk": ASTERISK,
        "wazo-confgen": NOOP,
        "wazo-agentd-cli": NOOP,
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    if auth_token is not None:
        state = root / "var/lib/rig-standins"
        state.mkdir(parents=True, exist_ok=True)
        token = state / "auth-token"
        token.write_text(auth_token + "\n")
        token.chmod(0o600)


def started_pids(root: Path) -> list[int]:
    """PIDs of the services the systemctl stand-in started in this node (for teardown)."""
    run = root / "run/rig-systemctl"
    pids = []
    for path in run.glob("*.pid") if run.exists() else []:
        try:
            pids.append(int(path.read_text()))
        except ValueError:
            continue
    return pids
