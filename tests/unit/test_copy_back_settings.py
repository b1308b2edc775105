"""Hostile values for the copy-back and switchover settings: refused at load, naming the setting and the value
(never a password), and nothing changed (loading writes nothing); values a site really uses are accepted."""

from __future__ import annotations

import pytest

from wazo_ha_core.errors import SettingsError
from wazo_ha_core.settings import Settings

from .test_settings_hardening import config, refused


@pytest.mark.parametrize(
    ("yaml_text", "value"),
    [
        ("copy_back: {directories: [/]}", "'/'"),
        ('copy_back: {directories: ["/var/lib/x y"]}', "x y"),
        ("copy_back: {directories: [\"/var/lib/x';id;'\"]}", "id;"),
        ('copy_back: {directories: ["/var/lib/wazo\\nextra"]}', "wazo"),
        ("copy_back: {directories: [/var/lib/../../etc]}", ".."),
        ("copy_back: {directories: [/var/lib/wazo/a, /var/lib/wazo/a/b]}", "/var/lib/wazo/a"),
        ("copy_back: {directories: [/var/spool/asterisk]}", "copy_back.voicemail_dir"),
        ("copy_back: {directories: [/var/lib/wazo-ha]}", "copy_back.staging_dir"),
        # Mirrored master → slave with --delete-after: the slave's new files would be deleted before copy-back.
        ("copy_back: {directories: [/var/lib/asterisk/moh/extra]}", "file_sync.directories"),
    ],
)
def test_hostile_copy_back_directories_are_refused(tmp_path, yaml_text, value):
    error = refused(config(tmp_path, yaml_text + "\n"))
    assert error.key == "copy_back.directories" and value in error.reason, error.reason
    assert len(error.reason) < 300


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mysql://wazo@10.0.0.2/asterisk", "mysql://"),  # another dialect: another plugin loaded
        ("sqlite:///relative/state.db", "sqlite:///relative"),  # relative to wherever cron runs
        ("sqlite:////var/lib/../../etc/shadow", ".."),
        ("postgresql://wazo@10.0.0.2/asterisk; DROP", "DROP"),
        ("postgresql://10.0.0.2/asterisk\n", "asterisk"),
        ("x" * 10_000, "xxx"),
    ],
)
def test_hostile_peer_store_urls_are_refused_naming_the_value(tmp_path, url, shown):
    error = refused(config(tmp_path, f"switchover: {{peer_store_url: {url!r}}}\n".replace("\\n", "\\n")))
    assert error.key == "switchover.peer_store_url" and shown in error.reason, error.reason
    assert len(error.reason) < 300


@pytest.mark.parametrize(
    "url",
    ["postgresql://wazo:s3cret@10.0.0.2/asterisk", "postgresql://10.0.0.2/asterisk?password=s3cret&sslmode=require"],
)
def test_a_password_in_the_peer_store_url_is_refused_and_never_shown(tmp_path, url):
    error = refused(config(tmp_path, f"switchover: {{peer_store_url: '{url}'}}\n"))
    assert error.key == "switchover.peer_store_url" and "password" in error.reason
    assert "s3cret" not in str(error)


@pytest.mark.parametrize(
    "text",
    [
        "copy_back: {directories: [/var/lib/wazo/faxes, /srv/recordings-extra]}",
        "switchover: {peer_store_url: 'postgresql://wazo_ha@10.0.0.2:5432/asterisk?sslmode=verify-full'}",
        "switchover: {peer_store_url: 'postgresql+psycopg2://wazo_ha@[2001:db8::2]/asterisk'}",
        "switchover: {peer_store_url: 'sqlite:////var/lib/wazo-ha/state.db'}",
        "copy_back: {retry_min: 30, retry_max: 600, gap: 120}",
    ],
)
def test_values_a_site_uses_are_accepted(tmp_path, text):
    Settings.load(config(tmp_path, text + "\n"))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("copy_back: {retry_min: 600, retry_max: 60}", "copy_back.retry_max"),
        ("copy_back: {gap: 60}", "copy_back.gap"),  # a check a minute: a 60 s gap would owe at every check
        ("copy_back: {retry_min: 0}", "copy_back.retry_min"),
        ("copy_back: {automatic: 'yes'}", "copy_back.automatic"),
    ],
)
def test_retry_and_gap_settings_that_cannot_work_are_refused(tmp_path, text, key):
    with pytest.raises(SettingsError) as caught:
        Settings.load(config(tmp_path, text + "\n"))
    assert caught.value.key == key
