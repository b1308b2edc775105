"""Settings an attacker or a careless operator could shape: names, paths, root confinement, file owner and mode.

Every refusal is a SettingsError naming the setting (or the file) and the
value; loading has no side effect, so "nothing written" holds by construction.
"""

from __future__ import annotations

import os
import posixpath
import pwd
import stat
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from wazo_ha_core import setting_checks
from wazo_ha_core.errors import SettingsError
from wazo_ha_core.settings import Settings

TEXT = st.text(st.characters(max_codepoint=0x3000, exclude_categories=("Cs",)), max_size=40)


def config(tmp_path: Path, text: str, name: str = "config.yml") -> Path:
    path = tmp_path / "etc" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)
    return path


def refused(path: Path) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        Settings.load(path)
    return caught.value


# --- names and paths that reach pg_hba.conf, SQL, authorized_keys ----------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "key", "value"),
    [
        ('slave_db: {database: "asterisk\\nhost all all 0.0.0.0/0 trust\\n#"}', "slave_db.database", "asterisk\\n"),
        ("slave_db: {database: all}", "slave_db.database", "'all'"),
        ('slave_db: {database: "asterisk\\""}', "slave_db.database", "asterisk"),
        ('slave_db: {role: "wazo\\n"}', "slave_db.role", "wazo"),
        ("slave_db: {role: replication}", "slave_db.role", "replication"),
        ('slave_db: {grant_roles: ["asterisk\\"; DROP TABLE x; --"]}', "slave_db.grant_roles", "DROP"),
        ("slave_db: {listen_addresses: [\"*', ssl = 'off\"]}", "slave_db.listen_addresses", "ssl"),
        ('file_sync: {tenant_sounds_excluded: ["recording\\n"]}', "file_sync.tenant_sounds_excluded", "recording"),
        ("file_sync: {tenant_sounds_excluded: [a/b]}", "file_sync.tenant_sounds_excluded", "a/b"),
        ("file_sync: {tenant_sounds_excluded: ['..']}", "file_sync.tenant_sounds_excluded", ".."),
        ('file_sync: {directories: ["/var/lib/asterisk/moh\\n"]}', "file_sync.directories", "moh"),
        ('file_sync: {directories: ["/var/lib/\\u2028x"]}', "file_sync.directories", "lib"),
        ('schedules: {command: "/usr/bin/wazo-ha\\n* * * * * root id"}', "schedules.command", "wazo-ha"),
        ('schedules: {command: "/usr/bin/wazo-ha\'"}', "schedules.command", "wazo-ha"),
        ('notifications: {mail_to: "root\\nBcc: attacker@example.com"}', "notifications.mail_to", "Bcc"),
        ("paths: {pg_hba: /etc/postgresql/../../../tmp/pg_hba.conf}", "paths.pg_hba", "tmp"),
    ],
)
def test_hostile_values_are_refused_with_key_and_value(tmp_path, yaml_text, key, value):
    error = refused(config(tmp_path, yaml_text + "\n"))
    assert error.key == key and value in error.reason
    assert len(error.reason) < 300


def test_names_wazo_uses_are_accepted(tmp_path):
    loaded = Settings.load(
        config(
            tmp_path,
            "slave_db: {database: asterisk, role: wazo_ha_replication, grant_roles: [asterisk, wazo-admin]}\n"
            "file_sync: {tenant_sounds_excluded: [monitor, recording, acd.old]}\n",
        )
    )
    assert loaded.get("slave_db.grant_roles") == ["asterisk", "wazo-admin"]


# --- root confinement -------------------------------------------------------------------------------


def test_resolve_refuses_a_path_that_leaves_root(tmp_path):
    loaded = Settings.from_tree({"root": str(tmp_path / "sandbox")})
    assert loaded.resolve("/etc/../var/x") == tmp_path / "sandbox/var/x"
    assert loaded.resolve("/") == tmp_path / "sandbox"
    with pytest.raises(SettingsError) as caught:
        loaded.resolve("/etc/../../../etc/shadow", key="plugin_config.provd.token_file")
    assert caught.value.key == "plugin_config.provd.token_file"
    assert "/etc/../../../etc/shadow" in caught.value.reason and "outside root" in caught.value.reason


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["..", ".", "", "etc", "a..b", "..x", "x"]), max_size=8))
def test_resolved_paths_never_leave_root(parts):
    root = "/srv/sandbox"
    absolute = "/" + "/".join(parts)
    joined = setting_checks.normalised_under(root, absolute)
    lexical = posixpath.normpath(posixpath.join(root, absolute.lstrip("/")))
    if joined is None:
        assert not (lexical + "/").startswith(root + "/")
    else:
        assert joined == lexical and (joined + "/").startswith(root + "/") and ".." not in joined.split("/")


# --- the configuration files: owner and mode ----------------------------------------------------------


def test_world_writable_conf_d_file_is_refused_with_path_and_mode(tmp_path):
    main = config(tmp_path, "timeouts: {connect: 3}\n")
    override = config(tmp_path, "schedules: {command: /tmp/evil}\n", name="conf.d/50-site.yml")
    override.chmod(0o666)
    error = refused(main)
    assert error.source == str(override) and "0666" in error.reason and "writable" in error.reason


def test_group_writable_main_file_is_refused(tmp_path):
    main = config(tmp_path, "timeouts: {connect: 3}\n")
    main.chmod(0o664)
    error = refused(main)
    assert error.source == str(main) and "0664" in error.reason


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_file_owned_by_another_user_is_refused(tmp_path):
    main = config(tmp_path, "timeouts: {connect: 3}\n")
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(main, nobody, -1)
    error = refused(main)
    assert error.source == str(main) and f"uid {nobody}" in error.reason


def test_world_writable_directories_are_refused(tmp_path):
    main = config(tmp_path, "timeouts: {connect: 3}\n")
    conf_d = main.parent / "conf.d"
    conf_d.mkdir()
    conf_d.chmod(0o777)
    assert refused(main).source == str(conf_d)
    conf_d.chmod(0o755)
    main.parent.chmod(0o1777)  # even sticky: anyone could create conf.d there
    try:
        assert refused(main).source == str(main.parent)
    finally:
        main.parent.chmod(0o755)


def test_conf_d_symlink_is_followed_only_to_a_trusted_file(tmp_path):
    main = config(tmp_path, "timeouts: {connect: 3}\n")
    (main.parent / "conf.d").mkdir()
    shared = config(tmp_path, "timeouts: {connect: 7}\n", name="shared.yml")
    link = main.parent / "conf.d" / "10-shared.yml"
    link.symlink_to(shared)
    assert Settings.load(main).get("timeouts.connect") == 7
    shared.chmod(0o646)
    error = refused(main)
    assert error.source == str(link) and "0646" in error.reason
    # A trusted file in a directory anyone may write: it could be swapped under the link.
    shared.chmod(0o644)
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    (loose / "shared.yml").write_text("timeouts: {connect: 7}\n")
    link.unlink()
    link.symlink_to(loose / "shared.yml")
    error = refused(main)
    assert error.source == str(link) and str(loose) in error.reason and "0777" in error.reason


def test_private_files_as_the_demo_writes_them_are_accepted(tmp_path):
    main = config(tmp_path, "timeouts: {connect: 3}\n")
    main.chmod(0o600)
    assert stat.S_IMODE(main.stat().st_mode) == 0o600
    assert Settings.load(main).get("timeouts.connect") == 3


# --- the validators, for any text ---------------------------------------------------------------------


@hypothesis_settings(max_examples=500, deadline=None)
@given(TEXT)
def test_accepted_sql_names_are_one_plain_pg_hba_word(text):
    if setting_checks.sql_name_problem(text) is None:
        assert text.isascii() and text.split() == [text] and '"' not in text and len(text) <= 63
        assert text.lower() not in ("all", "replication", "sameuser", "samerole")
    else:
        assert setting_checks.shown(text) in setting_checks.sql_name_problem(text)


@hypothesis_settings(max_examples=500, deadline=None)
@given(TEXT)
def test_accepted_file_names_stay_one_directory_level(text):
    if setting_checks.file_name_problem(text) is None:
        assert "/" not in text and text not in (".", "..") and text.isprintable() and text.split() == [text]


@hypothesis_settings(max_examples=500, deadline=None)
@given(TEXT.map(lambda text: "/" + text))
def test_accepted_paths_have_no_line_breaks_and_stay_under_root(text):
    if setting_checks.absolute_path_problem(text) is None:
        assert len(text.splitlines()) <= 1
        assert not any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in text)
        assert setting_checks.normalised_under("/srv/root", text) is not None


@hypothesis_settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from(["\n", "\r", "\x00", "\x1b", "\x85", "\u2028"]))
def test_any_control_character_is_refused(text, control):
    for position in (0, len(text) // 2, len(text)):
        value = text[:position] + control + text[position:]
        assert setting_checks.control_problem(value)
        assert setting_checks.absolute_path_problem("/" + value)
        assert setting_checks.file_name_problem(value)
        assert setting_checks.sql_name_problem(value)
