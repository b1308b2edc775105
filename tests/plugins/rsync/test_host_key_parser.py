"""Property tests: whatever text reaches ``host-key pin`` or ``--host-key-fingerprint``, known_hosts stays well formed.

Real keys from ssh-keygen, mixed with arbitrary text and with the characters
that split or hide lines (CR, vertical tab, form feed, U+2028, NEL…). Either
the text is refused whole with an error naming the bad value, cut short, or
the only lines written are ``pattern type base64``, one per real key.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wazo_ha_core import PluginError
from wazo_ha_plugins.rsync import hostkeys

PATTERN = "[192.0.2.10]:2222"
OTHER_HOST_LINE = "[192.0.2.99]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherHostLineKeptAsIsByEveryPin000000"
KNOWN_HOSTS_LINE = re.compile(r"\[192\.0\.2\.10\]:2222 (ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/]+=*")
TRICKY = ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\x00", " ", "\t", "#", "SHA256:", "=", "\n"]


@pytest.fixture(scope="module")
def sample_lines(tmp_path_factory) -> list[str]:
    """One public key line per type, each followed by its fingerprint as ``host-key show`` prints it."""
    directory = tmp_path_factory.mktemp("keys")
    lines = []
    for key_type, bits in (("ed25519", []), ("ecdsa", ["-b", "256"]), ("rsa", ["-b", "2048"])):
        path = directory / key_type
        subprocess.run(["ssh-keygen", "-q", "-t", key_type, *bits, "-N", "", "-f", str(path)], check=True)
        key_type_name, blob = path.with_suffix(".pub").read_text().split()[:2]
        [key] = hostkeys.parse_key_text(f"{key_type_name} {blob}", "sample")
        lines.append(f"{key_type_name} {blob} {key.fingerprint}")
    return lines


def mutated(line: str, data) -> str:
    """``line`` with a tricky or arbitrary character inserted somewhere."""
    position = data.draw(st.integers(0, len(line)))
    insert = data.draw(st.one_of(st.sampled_from(TRICKY), st.characters()))
    return line[:position] + insert + line[position:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_input_writes_a_malformed_known_hosts_line(sample_lines, data):
    pieces = data.draw(
        st.lists(
            st.one_of(
                st.sampled_from(sample_lines),
                st.sampled_from(sample_lines).map(lambda line: mutated(line, data)),
                st.text(max_size=120),
                st.sampled_from(TRICKY),
            ),
            max_size=6,
        )
    )
    text = data.draw(st.sampled_from(["\n", "\r\n", "", " "])).join(pieces)
    with tempfile.TemporaryDirectory() as directory:
        known_hosts = Path(directory) / "known_hosts"
        known_hosts.write_text(OTHER_HOST_LINE + "\n")
        try:
            keys = hostkeys.parse_key_text(text, "host keys given")
        except PluginError as exc:
            message = str(exc)
            assert message.startswith("host keys given"), message
            assert len(message) < 400, "the bad value is cut, not echoed whole"
            assert known_hosts.read_text() == OTHER_HOST_LINE + "\n"
            return
        hostkeys.pin_keys(known_hosts, PATTERN, keys)
        written = known_hosts.read_text()
    assert written.endswith("\n")
    [other, *ours] = written[:-1].split("\n")
    assert other == OTHER_HOST_LINE
    assert len(ours) == len(keys) >= 1
    for line in ours:
        assert KNOWN_HOSTS_LINE.fullmatch(line), line
        assert " ".join(line.split()[1:]) in "\n".join(sample_lines), "only real keys get pinned"


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.text(max_size=300), st.sampled_from(TRICKY).map(lambda c: "SHA256:" + "A" * 43 + c)))
def test_a_fingerprint_is_43_base64_characters_or_a_clear_error(value):
    try:
        parsed = hostkeys.parse_fingerprint(value)
    except PluginError as exc:
        message = str(exc)
        assert message.startswith("--host-key-fingerprint: ") and "is not a SHA256 fingerprint" in message
        assert len(message) < 300
        return
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", parsed)
    assert parsed == value.strip()
