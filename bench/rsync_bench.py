"""Benchmark of the rsync file-sync plugin against plain ``rsync -a`` over the same sshd.

A 20,000-file / 500 MB tree is mirrored over one throwaway sshd on loopback by
three runners: the plugin (restricted key, forced-command receiver in its mount
namespace, ``-rlptgoR --delete-delay --stats``), plain ``rsync -a`` (the issue's
baseline: no deletions) and today's ``xivo-sync`` command (``rsync -aR
--delete-after``, a mirror like ours), both with an unrestricted key and the
same ssh options. A first sync (empty slave) and a no-change sync are timed,
each in rounds where every runner runs once, the order rotating from round to
round, so that none always runs right after another's writes; a ratio is the
median over the rounds of the plugin's time / the other's in the same round,
which drift on a shared machine cancels out of. Targets: at most 1.1 times
plain ``rsync -a`` for both, no-change under 1 s.

Run as root: ``tox -e bench`` (or ``python bench/rsync_bench.py [--files N --megabytes M]``).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rig.plugin_loading import MemoryState
from tests.rig.sshd import ROOT_PASSWORD, Sshd
from wazo_ha_core import PluginContext, Settings
from wazo_ha_plugins.rsync import RsyncBackend

PEER = "127.0.0.1"
SYNCED_DIR = "/var/lib/asterisk/moh"


def make_tree(base: Path, files: int, total_bytes: int) -> None:
    """``files`` files in 100-file directories, random sizes averaging ``total_bytes / files``."""
    rng = random.Random(4)
    average = total_bytes // files
    blob = os.urandom(2 * average + 1)
    for index in range(files):
        directory = base / f"d{index // 100:04d}"
        if index % 100 == 0:
            directory.mkdir(parents=True)
        size = rng.randint(1, 2 * average)
        offset = rng.randint(0, len(blob) - size)
        (directory / f"f{index:05d}.wav").write_bytes(blob[offset : offset + size])


def set_aside(directory: Path, store: Path) -> None:
    """Move a directory's content out of the way and leave it empty (the receiver confines writes to it).

    A rename, not a deletion: deleting 500 MB makes the filesystem free (and,
    mounted with ``discard``, trim) those blocks during the next timed run,
    which then measures the disk rather than the transfer. ``store`` is
    deleted once all runs are over.
    """
    if not directory.exists():
        return
    store.mkdir(exist_ok=True)
    directory.rename(store / f"{len(list(store.iterdir()))}")
    directory.mkdir()


def timed(action) -> float:
    os.sync()  # the previous run's dirty pages must not be flushed on the next run's clock
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="no-change runs of each (median kept)")
    parser.add_argument("--first-repeat", type=int, default=5, help="first syncs of each (median kept)")
    options = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root (it starts sshd)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="wazo-ha-bench-rsync-"))
    sshd = Sshd.start()
    try:
        master, slave, baseline, todays = tmp / "master", tmp / "slave", tmp / "baseline", tmp / "today"
        aside = tmp / "set-aside"
        for directory in (master, slave, baseline, todays):
            directory.mkdir()
        print(f"bench: building {options.files} files / {options.megabytes} MB ...", flush=True)
        make_tree(master / SYNCED_DIR.lstrip("/"), options.files, options.megabytes * 1024 * 1024)

        os.environ["WAZO_HA_BENCH_PASSWORD"] = ROOT_PASSWORD
        tree = {
            "root": str(master),
            "file_sync": {"directories": [SYNCED_DIR], "tenant_sounds_dir": None},
            "plugin_config": {
                "rsync": {
                    "port": sshd.port,
                    "authorized_keys_file": str(sshd.authorized_keys),
                    "receiver_path": f"{tmp}/slave-bin/rsync-receiver",
                    "remote_root": str(slave),
                    "password_env": "WAZO_HA_BENCH_PASSWORD",
                }
            },
        }
        settings = Settings.from_tree(tree)
        context = PluginContext(
            "rsync",
            "wazo_ha.file_sync",
            settings.plugin_config("rsync"),
            settings,
            MemoryState(),
            logging.getLogger("bench"),
        )
        plugin = RsyncBackend(context)
        plugin.pin_host_keys(PEER, sshd.host_key.with_suffix(".pub").read_text())  # as `host-key pin` does
        plugin.init(PEER)

        # The baseline: an unrestricted key, the same ssh options, plain rsync -a.
        plain_key = tmp / "plain_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(plain_key)], check=True)
        with open(sshd.authorized_keys, "a") as keys:
            keys.write(plain_key.with_suffix(".pub").read_text())
        known_hosts = settings.resolve(plugin.config["known_hosts_file"])
        ssh = f"ssh -F /dev/null -i {plain_key} -p {sshd.port} -o BatchMode=yes -o IdentitiesOnly=yes"
        ssh += f" -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts}"
        source = f"{master}{SYNCED_DIR}/"

        def plain():
            subprocess.run(["rsync", "-a", "-e", ssh, source, f"root@{PEER}:{baseline}/"], check=True)

        def today():
            # Today's xivo-sync command (WAZO-FACTS): a mirror, with deletions, over the unrestricted key.
            relative = f"{master}/.{SYNCED_DIR}"
            subprocess.run(
                ["rsync", "-aR", "--delete-after", "-e", ssh, relative, f"root@{PEER}:{todays}/"], check=True
            )

        def ours():
            result = plugin.sync(PEER, [SYNCED_DIR])
            assert result.figures["rsync_exit"] == 0, result

        runners = {"plain": plain, "today": today, "plugin": ours}

        def rounds(count: int, before=lambda: None) -> dict[str, list[float]]:
            """``count`` rounds of every runner, the order rotating from round to round; times per runner."""
            times: dict[str, list[float]] = {name: [] for name in runners}
            names = list(runners)
            for index in range(count):
                before()
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    times[name].append(timed(runners[name]))
            return times

        def emptied() -> None:
            for destination in (baseline, Path(f"{todays}{SYNCED_DIR}"), Path(f"{slave}{SYNCED_DIR}")):
                set_aside(destination, aside)

        def paired_ratio(times: dict[str, list[float]], against: str) -> float:
            """Median over the rounds of the plugin's time / the other runner's in the same round."""
            return statistics.median(o / p for p, o in zip(times[against], times["plugin"], strict=True))

        first = rounds(options.first_repeat, emptied)  # one run is too noisy here
        same = subprocess.run(["diff", "-r", "-q", f"{master}{SYNCED_DIR}", f"{slave}{SYNCED_DIR}"], check=False)
        assert same.returncode == 0, "the plugin's mirror differs from the source"
        nochange = rounds(options.repeat)

        print(f"tree: {options.files} files, {options.megabytes} MB, over sshd on {PEER}:{sshd.port}")
        for label, times, count in (
            ("first sync", first, options.first_repeat),
            ("no-change", nochange, options.repeat),
        ):
            medians = "   ".join(f"{name} {statistics.median(values):6.3f} s" for name, values in times.items())
            print(f"{label:<10} {medians}   (median of {count} rounds)")
            print(
                f"{label:<10} plugin / plain rsync -a  {paired_ratio(times, 'plain'):5.2f}x  (target <= 1.10)   "
                f"plugin / today's rsync -aR --delete-after  {paired_ratio(times, 'today'):5.2f}x"
            )
        median_ours = statistics.median(nochange["plugin"])
        print(f"no-change sync under 1 s: {'yes' if median_ours < 1 else 'NO'} ({median_ours:.3f} s)")
        for label, times in (("first", first), ("no-change", nochange)):
            rows = zip(*times.values(), strict=True)
            print(
                f"rounds, {label} (plain/today/plugin s): "
                + ", ".join("/".join(f"{t:.3f}" for t in row) for row in rows)
            )
        return 0
    finally:
        sshd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
