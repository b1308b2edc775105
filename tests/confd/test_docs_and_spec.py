"""What an operator copies from docs/confd.rst, and the OpenAPI file confd merges, match the code."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from importlib.resources import files
from pathlib import Path

import yaml

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "confd.rst"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def yaml_blocks(text: str) -> list[str]:
    """The bodies of the page's ``.. code-block:: yaml`` directives."""
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: yaml\n\n((?:(?:    .*)?\n)+)", text, re.MULTILINE):
        blocks.append("\n".join(line[4:] for line in match.group(1).splitlines()))
    return blocks


def test_documented_enabled_plugins_snippet_enables_this_plugin_and_disables_confds():
    (snippet,) = [block for block in yaml_blocks(DOCS_PAGE.read_text()) if "enabled_plugins" in block]

    config = yaml.safe_load(snippet)

    assert config == {"enabled_plugins": {"ha": False, "wazo_ha": True}}
    installed = {ep.name: ep.value for ep in entry_points(group="wazo_confd.plugins")}
    assert installed.get("wazo_ha") == "wazo_ha_confd.plugin:Plugin"


def load_spec() -> dict:
    # Where confd's load_all_api_specs looks: api.yml beside the entry point's module.
    return yaml.safe_load(files("wazo_ha_confd").joinpath("api.yml").read_text())


def operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def test_openapi_file_lists_the_three_operations_with_their_acls():
    spec = load_spec()

    found = operations(spec)

    assert set(found) == {("GET", "/ha"), ("PUT", "/ha"), ("GET", "/ha/status")}
    acls = {key: re.findall(r"`(confd\.[a-z.]+)`", operation["description"]) for key, operation in found.items()}
    assert acls == {
        ("GET", "/ha"): ["confd.ha.read"],
        ("PUT", "/ha"): ["confd.ha.update"],
        ("GET", "/ha/status"): ["confd.ha.status.read"],
    }
    assert {operation["operationId"] for operation in found.values()} == {"get_ha", "update_ha", "get_ha_status"}
    assert "204" in found[("PUT", "/ha")]["responses"]
    assert {"400", "409", "500"} <= set(found[("PUT", "/ha")]["responses"])


def test_openapi_references_resolve_within_the_file():
    spec = load_spec()
    text = yaml.safe_dump(spec)

    for reference in re.findall(r"\$ref: '?#/([^'\s]+)'?", text):
        section, name = reference.split("/")
        assert name in spec.get(section, {}), f"#/{reference} is not defined in api.yml"


def test_openapi_paths_are_the_routes_the_plugin_serves(make_node, start_confd):
    confd = start_confd(make_node())
    served = {
        (method, rule.rule.removeprefix("/1.1"))
        for rule in confd.app.url_map.iter_rules()
        if rule.rule.startswith("/1.1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }

    assert served == set(operations(load_spec()))
