"""What the health probes (``icmp``, ``sip``, ``tcp``) check the same way: their numbers and their target.

Each error names the setting (``plugin_config.<plugin>.<key>``) and the bad value.
"""

from __future__ import annotations

import ipaddress

from wazo_ha_core import PluginError


def positive_seconds(plugin: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise PluginError(f"plugin_config.{plugin}.{key} must be a positive number of seconds, got {value!r}")
    return float(value)


def port_number(plugin: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise PluginError(f"plugin_config.{plugin}.port must be a port number, got {value!r}")
    return value


def target_address(probe: str, target: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The probed address: an IP address, never a name (no DNS lookup in a health round)."""
    try:
        return ipaddress.ip_address(target)
    except ValueError:
        raise PluginError(f"{probe} probe: target must be an IP address, got {target!r}") from None
