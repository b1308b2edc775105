"""Benchmark of the rsync file-sync plugin against plain ``rsync -a`` over the same sshd.

A 20,000-file / 500 MB tree is mirrored twice over one throwaway sshd on
loopback: by the plugin (restricted key, forced-command receiver in its mount
namespace, ``-aR --delete-after --stats``) and by plain ``rsync -a`` with an
unrestricted key and the same ssh options. Both a first sync (empty slave)
and a no-change sync are timed; the no-change runs are repeated and the
median kept. Runs are paired (one plain, one plugin) and the order inside a pair
alternates, so that neither always runs second, after the other's writes; the
ratio printed is the median of the pairs' ratios, which drift on a shared
machine cancels out of. Prints the ratios (targets: at most 1.1 times for both,
no-change under 1 s).

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

from tests.rig.sshd import ROOT_PASSWORD, Sshd
from wazo_ha_core import PluginContext, Settings
from wazo_ha_plugins.rsync import RsyncBackend

PEER = "127.0.0.1"
SYNCED_DIR = "/var/lib/asterisk/moh"


class _State:
    def get(self, key, default=None):
        return default

    def set(self, key, value):
        pass

    def delete(self, key):
        pass


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
        master, slave, baseline, aside = tmp / "master", tmp / "slave", tmp / "baseline", tmp / "set-aside"
        for directory in (master, slave, baseline):
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
            "rsync", "wazo_ha.file_sync", settings.plugin_config("rsync"), settings, _State(), logging.getLogger("b")
        )
        plugin = RsyncBackend(context)
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

        def ours():
            result = plugin.sync(PEER, [SYNCED_DIR])
            assert result.figures["rsync_exit"] == 0, result

        def pairs(count: int, before=lambda: None) -> tuple[list[float], list[float]]:
            """``count`` paired runs, the order inside a pair alternating; (plain times, plugin times)."""
            times_plain, times_ours = [], []
            for index in range(count):
                before()
                runs = [(times_plain, plain), (times_ours, ours)]
                for times, action in runs if index % 2 == 0 else reversed(runs):
                    times.append(timed(action))
            return times_plain, times_ours

        def emptied() -> None:
            for destination in (baseline, Path(f"{slave}{SYNCED_DIR}")):
                set_aside(destination, aside)

        def paired_ratio(times_plain: list[float], times_ours: list[float]) -> float:
            return statistics.median(o / p for p, o in zip(times_plain, times_ours, strict=True))

        firsts_plain, firsts_ours = pairs(options.first_repeat, emptied)  # one run is too noisy here
        first_plain, first_ours = statistics.median(firsts_plain), statistics.median(firsts_ours)
        same = subprocess.run(["diff", "-r", "-q", f"{master}{SYNCED_DIR}", f"{slave}{SYNCED_DIR}"], check=False)
        assert same.returncode == 0, "the plugin's mirror differs from the source"
        nochange_plain, nochange_ours = pairs(options.repeat)
        median_plain, median_ours = statistics.median(nochange_plain), statistics.median(nochange_ours)
        first_ratio = paired_ratio(firsts_plain, firsts_ours)
        nochange_ratio = paired_ratio(nochange_plain, nochange_ours)

        print(f"tree: {options.files} files, {options.megabytes} MB, over sshd on {PEER}:{sshd.port}")
        print(
            f"first sync:     plain rsync -a {first_plain:7.3f} s   plugin {first_ours:7.3f} s   "
            f"ratio {first_ratio:5.2f}x  (target <= 1.10; median of {options.first_repeat} pairs)"
        )
        print(
            f"no-change sync: plain rsync -a {median_plain:7.3f} s   plugin {median_ours:7.3f} s   "
            f"ratio {nochange_ratio:5.2f}x  (target <= 1.10; median of {options.repeat} pairs)"
        )
        print(f"no-change sync under 1 s: {'yes' if median_ours < 1 else 'NO'} ({median_ours:.3f} s)")
        print(
            "pairs (plain s / plugin s): first "
            + ", ".join(f"{p:.2f}/{o:.2f}" for p, o in zip(firsts_plain, firsts_ours, strict=True))
        )
        print(
            "                        no-change "
            + ", ".join(f"{p:.3f}/{o:.3f}" for p, o in zip(nochange_plain, nochange_ours, strict=True))
        )
        return 0
    finally:
        sshd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
