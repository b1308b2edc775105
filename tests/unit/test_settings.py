"""Library settings: defaults, YAML + conf.d merge, paths under root, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from wazo_ha_core.errors import SettingsError
from wazo_ha_core.settings import OPTIONS, Settings, deep_merge, default_tree


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_when_the_default_file_is_absent(monkeypatch):
    monkeypatch.delenv("WAZO_HA_CONFIG", raising=False)
    monkeypatch.setattr("wazo_ha_core.settings.DEFAULT_CONFIG_FILE", "/nonexistent/wazo-ha/config.yml")
    settings = Settings.load()
    assert settings.get("paths.ha_conf") == "/etc/xivo/ha.conf"
    assert settings.path("ha_conf") == Path("/etc/xivo/ha.conf")
    assert settings.sources == []


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="file not found") as caught:
        Settings.load(tmp_path / "nope.yml")
    assert str(tmp_path / "nope.yml") in str(caught.value)


def test_conf_d_overrides_in_name_order_and_deep_merge(tmp_path):
    main = write(
        tmp_path / "config.yml", "root: /srv/sandbox\ntimeouts: {connect: 3}\nplugin_config: {x: {a: 1, b: 2}}\n"
    )
    write(tmp_path / "conf.d" / "20-late.yml", "timeouts: {connect: 9}\n")
    write(tmp_path / "conf.d" / "10-early.yml", "timeouts: {connect: 7, command: 30}\nplugin_config: {x: {b: 3}}\n")
    write(tmp_path / "conf.d" / "ignored.txt", "root: [not, yaml, settings]\n")
    settings = Settings.load(main)
    assert settings.get("timeouts.connect") == 9
    assert settings.get("timeouts.command") == 30
    assert settings.plugin_config("x") == {"a": 1, "b": 3}
    assert settings.plugin_config("unknown") == {}
    assert settings.path("ha_conf") == Path("/srv/sandbox/etc/xivo/ha.conf")
    assert settings.resolve("/etc/asterisk") == Path("/srv/sandbox/etc/asterisk")
    assert settings.sources == [str(main), str(tmp_path / "conf.d/10-early.yml"), str(tmp_path / "conf.d/20-late.yml")]


def test_env_var_selects_the_file(tmp_path, monkeypatch):
    main = write(tmp_path / "c.yml", "root: /x\n")
    monkeypatch.setenv("WAZO_HA_CONFIG", str(main))
    assert Settings.load().root == Path("/x")


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("timeouts: {connect: soon}\n", "timeouts.connect", "must be a positive number, got 'soon'"),
        ("timeouts: {connect: 0}\n", "timeouts.connect", "positive number"),
        ("timeouts: {connect: true}\n", "timeouts.connect", "positive number"),
        ("paths: {ha_conf: etc/ha.conf}\n", "paths.ha_conf", "absolute path"),
        ("paths: {nonsense: /x}\n", "paths.nonsense", "unknown setting"),
        ("rooot: /x\n", "rooot", "unknown setting"),
        ("root: relative\n", "root", "absolute path"),
        ("plugins: {replication: pg_dump}\n", "plugins.replication", "list of names"),
        ("plugins: {service_managers: [a, a]}\n", "plugins.service_managers", "twice"),
        ("plugin_config: {x: [1]}\n", "plugin_config.x", "mapping"),
        ("store: {schema: public}\n", "store.schema", "other than 'public'"),
        ("store: {schema: 'a;drop'}\n", "store.schema", "identifier"),
        ("local_addresses: 10.0.0.1\n", "local_addresses", "list of names"),
    ],
)
def test_bad_values_name_file_key_and_reason(tmp_path, text, key, reason):
    path = write(tmp_path / "config.yml", text)
    with pytest.raises(SettingsError) as caught:
        Settings.load(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(path) in str(caught.value) and key in str(caught.value)


def test_bad_value_in_conf_d_names_that_file(tmp_path):
    main = write(tmp_path / "config.yml", "root: /x\n")
    bad = write(tmp_path / "conf.d" / "50-site.yml", "timeouts: {command: -1}\n")
    with pytest.raises(SettingsError) as caught:
        Settings.load(main)
    assert caught.value.source == str(bad)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("root: [unclosed\n", "invalid YAML: line 2"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("\tbad: tab\n", "invalid YAML"),
    ],
)
def test_unparsable_files(tmp_path, text, reason):
    path = write(tmp_path / "config.yml", text)
    with pytest.raises(SettingsError, match=reason.replace("(", r"\(")):
        Settings.load(path)


def test_empty_file_means_defaults(tmp_path):
    assert Settings.load(write(tmp_path / "config.yml", "")).tree == default_tree()


def test_every_option_has_documentation_and_a_valid_default():
    assert len({option.key for option in OPTIONS}) == len(OPTIONS)
    for option in OPTIONS:
        assert option.doc.endswith("."), option.key
    Settings.from_tree({})


def test_deep_merge_does_not_mutate_inputs():
    base = {"a": {"b": 1}, "l": [1]}
    override = {"a": {"c": 2}, "l": [2]}
    assert deep_merge(base, override) == {"a": {"b": 1, "c": 2}, "l": [2]}
    assert base == {"a": {"b": 1}, "l": [1]}


def test_settings_reference_in_docs_is_current():
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("gen", root / "docs" / "gen_settings_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (root / "docs" / "settings_reference.rst").read_text()
    assert committed == module.render(), "run: python docs/gen_settings_reference.py"
