"""The `--config` path and `schedules.command` in cron lines and `ExecStart=`: read back exactly, never split.

Each written line is read back the way its real consumer reads it: a cron
command goes through cron's ``%`` processing (crontab(5): the command ends at
the first unescaped ``%``, ``\\%`` is a literal ``%``) and then the real
``/bin/sh -c``; an ``ExecStart=`` value through :func:`systemd_argv`, a reader
of the documented rules (systemd.service "Command lines", systemd.syntax
"Quoting"), and ``systemd-analyze verify`` where it is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wazo_ha_core import schedules
from wazo_ha_core.config import DISABLED, HASettings
from wazo_ha_core.errors import EditStepError
from wazo_ha_core.schedules import ScheduleStep
from wazo_ha_core.settings import Settings

MASTER = HASettings("master", "10.0.0.2")
SLAVE = HASettings("slave", "10.0.0.2")
HOSTILE_DIR = "site 100% $HOME `id` 'q' \"dq\" \\ ; & %n ${X}"
# Printable text only: control characters are refused before anything is written (tested below).
WORDS = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), max_codepoint=0x2FFF), max_size=30)


# --- the consumers' rules ------------------------------------------------------------------


def cron_percent(command: str) -> str:
    """What cron hands to the shell (vixie cron, crontab(5)): up to the first unescaped %, \\% -> %."""
    out, escaped = [], False
    for char in command:
        if escaped:
            if char == "%":
                out[-1] = "%"  # the backslash is replaced by the percent sign
            else:
                out.append(char)
            escaped = False
            continue
        if char == "%":
            break  # the rest is the command's standard input
        out.append(char)
        escaped = char == "\\"
    return "".join(out)


def sh_argv(command: str) -> list[str]:
    """The argv the real /bin/sh builds from ``command`` (a Python stand-in for the program prints it)."""
    result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, check=True, timeout=30)
    return json.loads(result.stdout)


_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "s": " "}


def systemd_argv(line: str) -> list[str]:
    """An ``ExecStart=`` value read as systemd documents it; raises on anything it would expand."""
    # 1. specifiers, on the whole line: %% is a percent sign; any other would be replaced.
    text, i = [], 0
    while i < len(line):
        if line[i] == "%":
            if line[i + 1 : i + 2] != "%":
                raise ValueError(f"specifier %{line[i + 1 : i + 2]} would be expanded")
            i += 1
        text.append(line[i])
        i += 1
    line = "".join(text)
    # 2. words: whitespace separated; single or double quotes; C escapes.
    words, i = [], 0
    while True:
        while i < len(line) and line[i] in " \t":
            i += 1
        if i == len(line):
            break
        word, quote = [], None
        while i < len(line):
            char = line[i]
            if quote is None and char in " \t":
                break
            if char == "\\":
                nxt = line[i + 1]
                if nxt == "x":
                    word.append(chr(int(line[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                word.append(_C_ESCAPES.get(nxt, nxt))  # \\ \" \' stand for themselves
                i += 2
                continue
            if quote is None and char in "\"'":
                quote = char
            elif char == quote:
                quote = None
            else:
                word.append(char)
            i += 1
        if quote is not None:
            raise ValueError("unbalanced quotes")
        words.append("".join(word))
    # 3. environment variables, per word: $$ is a dollar sign; $NAME and ${NAME} would be substituted.
    result = []
    for word in words:
        if "$" in word.replace("$$", ""):
            raise ValueError(f"variable in {word!r} would be substituted")
        result.append(word.replace("$$", "$"))
    return result


# --- files written by the step ----------------------------------------------------------------


@pytest.fixture
def argv_printer(tmp_path):
    """An executable that prints its argv as JSON: the `wazo-ha` the schedules run, here."""
    script = tmp_path / "bin" / "print argv 100%s"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv))\n")
    script.chmod(0o755)
    return script


def load(tmp_path, directory: str, **schedule_settings) -> Settings:
    config = tmp_path / directory / "config.yml"
    config.parent.mkdir()
    tree = {"root": str(tmp_path / "root"), "schedules": {"systemctl": ["true"], **schedule_settings}}
    config.write_text(json.dumps(tree))  # JSON is YAML
    return Settings.load(config)


def test_cron_lines_run_exactly_the_configured_argv(tmp_path, argv_printer):
    settings = load(tmp_path, HOSTILE_DIR, command=str(argv_printer))
    ScheduleStep(settings).apply(DISABLED, MASTER)
    cron = (tmp_path / "root/etc/cron.d/xivo-ha-master").read_text()
    lines = [line for line in cron.splitlines() if line.startswith("* * * * * root ")]
    assert len(lines) == 3 and len(cron.splitlines()) == 6  # header, SHELL, PATH and exactly three jobs
    for line, action in zip(lines, (["replicate"], ["sync"], ["copy-back", "--auto"]), strict=True):
        command = line.removeprefix("* * * * * root ")
        expected = [str(argv_printer), "--config", settings.sources[0], *action, "--quiet"]
        assert sh_argv(cron_percent(command)) == expected


def test_units_run_exactly_the_configured_argv(tmp_path, argv_printer):
    settings = load(tmp_path, HOSTILE_DIR, command=str(argv_printer), kind="systemd")
    ScheduleStep(settings).apply(DISABLED, SLAVE)
    unit = tmp_path / "root/etc/systemd/system/wazo-ha-watch.service"
    (line,) = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    expected = [str(argv_printer), "--config", settings.sources[0], "watch", "--quiet"]
    assert systemd_argv(line.removeprefix("ExecStart=")) == expected
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
        )
        assert verify.returncode == 0, verify.stderr
        assert "wazo-ha-watch.service" not in verify.stderr, verify.stderr


@pytest.mark.parametrize("kind", ["cron", "systemd"])
def test_a_config_path_with_a_newline_is_refused_and_nothing_written(tmp_path, kind):
    settings = load(tmp_path, "site\n* * * * * root touch owned\n#", kind=kind)
    with pytest.raises(EditStepError, match=r"--config: must not contain a newline"):
        ScheduleStep(settings).apply(DISABLED, MASTER)
    assert not (tmp_path / "root").exists() or not any(p.is_file() for p in (tmp_path / "root").rglob("*"))


# --- the encoders, for any printable words ------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, max_size=4))
def test_cron_command_round_trips_through_cron_and_sh(words):
    argv = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *words]
    assert sh_argv(cron_percent(schedules.cron_command(argv))) == words


@settings(max_examples=300, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=6))
def test_systemd_command_round_trips(words):
    argv = ["/usr/bin/wazo-ha", *words]
    line = schedules.systemd_command(argv)
    assert "\n" not in line
    assert systemd_argv(line) == argv


def test_systemd_reader_follows_the_documented_rules():
    assert systemd_argv('/bin/a "b c" \'d e\' f\\x20g %% $$ "\\\\"') == ["/bin/a", "b c", "d e", "f g", "%", "$", "\\"]
    for expanded in ("/bin/a %n", "/bin/a $HOME", "/bin/a ${X}"):
        with pytest.raises(ValueError):
            systemd_argv(expanded)


def test_cron_reader_follows_crontab5():
    assert cron_percent("a \\% b % stdin") == "a % b "
    assert cron_percent("a \\\\% b") == "a \\\\"


if os.geteuid() != 0:  # the schedules are root's: the tests only make sense where the files are as on a node
    pytestmark = pytest.mark.skip("needs root")
