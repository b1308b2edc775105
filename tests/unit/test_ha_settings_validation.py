"""HA settings validation: every rejection names the field and the value; accepted values are normalised."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wazo_ha_core.config import HASettings, normalise_address, validate_ha_body
from wazo_ha_core.errors import ValidationError
from wazo_ha_core.setting_checks import shown

LOCAL = ["10.0.0.1", "2001:db8::1"]


def rejected(body, local=LOCAL) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate_ha_body(body, local)
    return caught.value.errors


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"node_type": "master", "remote_address": "10.0.0.2"}, HASettings("master", "10.0.0.2")),
        ({"node_type": "slave", "remote_address": "2001:DB8:0::0002"}, HASettings("slave", "2001:db8::2")),
        ({"node_type": "master", "remote_address": "::ffff:10.0.0.2"}, HASettings("master", "10.0.0.2")),
        ({"node_type": "master", "remote_address": "fe80::2%eth0"}, HASettings("master", "fe80::2%eth0")),
        ({"node_type": "disabled"}, HASettings("disabled", "")),
        ({"node_type": "disabled", "remote_address": None}, HASettings("disabled", "")),
        ({"node_type": "disabled", "remote_address": ""}, HASettings("disabled", "")),
        ({"node_type": "disabled", "remote_address": "10.0.0.2"}, HASettings("disabled", "10.0.0.2")),
    ],
)
def test_accepted_bodies_are_normalised(body, expected):
    assert validate_ha_body(body, LOCAL) == expected


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("10.0.0.2;reboot", "hostnames are not accepted"),
        ("wazo-slave.example.com", "hostnames are not accepted"),
        ("", "empty string"),
        (" 10.0.0.2", "whitespace"),
        ("10.0.0.2\n", "whitespace"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("169.254.1.2", "link-local"),
        ("fe80::2", "without a zone"),
        ("fe80::2%eth0;id", "invalid zone"),
        ("10.0.0.2%eth0", "invalid zone"),
        ("2001:db8::5%eth0", "zone is only meaningful"),
        ("10.0.0.1", "this node"),
        ("2001:DB8::1", "this node"),
        ("::ffff:10.0.0.1", "this node"),
        ("10.0.0.256", "hostnames are not accepted"),
    ],
)
def test_bad_remote_address_names_field_and_value(address, fragment):
    errors = rejected({"node_type": "master", "remote_address": address})
    assert list(errors) == ["remote_address"]
    assert fragment in errors["remote_address"]
    assert repr(address) in errors["remote_address"]


def test_remote_address_required_unless_disabled():
    for node_type in ("master", "slave"):
        assert rejected({"node_type": node_type}) == {"remote_address": f"is required when node_type is '{node_type}'"}
        assert "required" in rejected({"node_type": node_type, "remote_address": None})["remote_address"]
        assert "empty string" in rejected({"node_type": node_type, "remote_address": ""})["remote_address"]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"node_type": "primary", "remote_address": "10.0.0.2"}, "node_type", "'primary'"),
        ({"node_type": "Master", "remote_address": "10.0.0.2"}, "node_type", "'Master'"),
        ({"node_type": 1, "remote_address": "10.0.0.2"}, "node_type", "int 1"),
        ({"node_type": None}, "node_type", "NoneType None"),
        ({"remote_address": "10.0.0.2"}, "node_type", "is required"),
        ({"node_type": "master", "remote_address": 167772162}, "remote_address", "int 167772162"),
        ({"node_type": "master", "remote_address": ["10.0.0.2"]}, "remote_address", "list"),
        ({"node_type": "master", "remote_address": "10.0.0.2", "peer": "x"}, "peer", "unknown field 'peer'"),
    ],
)
def test_wrong_types_and_unknown_keys(body, field, fragment):
    errors = rejected(body)
    assert field in errors
    assert fragment in errors[field]


def test_every_problem_is_reported_at_once():
    errors = rejected({"node_type": "boss", "remote_address": "localhost", "extra": 1})
    assert set(errors) == {"node_type", "remote_address", "extra"}


@pytest.mark.parametrize("body", [None, [], "master", 42, ["node_type", "master"]])
def test_body_must_be_an_object(body):
    assert "must be an object" in rejected(body)["body"]


def test_validation_error_message_names_fields():
    with pytest.raises(ValidationError) as caught:
        validate_ha_body({"node_type": "master", "remote_address": "10.0.0.2;reboot"}, LOCAL)
    assert "remote_address" in str(caught.value)
    assert "10.0.0.2;reboot" in str(caught.value)


# --- properties over random input -------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_random_strings_never_crash_and_only_addresses_pass(text):
    try:
        address = normalise_address(text, LOCAL)
    except ValueError as exc:
        assert shown(text) in str(exc)  # the value, cut to a sane length
        return
    # Accepted: it really is an address, canonical, stable, and carries no stray character.
    parsed = ipaddress.ip_address(address.partition("%")[0])
    assert not (parsed.is_loopback or parsed.is_unspecified or parsed.is_multicast)
    assert normalise_address(address, LOCAL) == address
    assert address == address.strip() and ";" not in address and " " not in address


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_link_local
        or str(ip) in ("255.255.255.255", "10.0.0.1", "2001:db8::1")
    )


@settings(max_examples=500, deadline=None)
@given(st.ip_addresses())
def test_random_addresses_accepted_iff_usable(ip):
    body = {"node_type": "master", "remote_address": str(ip)}
    if _forbidden(ip):
        assert "remote_address" in rejected(body)
    else:
        result = validate_ha_body(body, LOCAL)
        expected = ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped else ip
        assert result.remote_address == str(expected)


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(v=6), st.sampled_from([str.upper, str.lower, lambda s: s]))
def test_ipv6_spelling_does_not_matter(ip, spelling):
    if _forbidden(ip):
        return
    a = validate_ha_body({"node_type": "slave", "remote_address": spelling(ip.exploded)}, LOCAL)
    b = validate_ha_body({"node_type": "slave", "remote_address": ip.compressed}, LOCAL)
    assert a == b


def test_own_addresses_detected_from_interfaces():
    from wazo_ha_core.config import detect_local_addresses

    addresses = detect_local_addresses()
    assert "127.0.0.1" in addresses
    usable = [a for a in addresses if not ipaddress.ip_address(a.partition("%")[0]).is_loopback]
    for address in usable:
        if "%" in address:
            continue
        with pytest.raises(ValueError, match="address of this node"):
            normalise_address(address, addresses)


# --- any Python value: settings or a ValidationError with short messages -------------------------

MESSAGE_BOUND = 300  # per field: the fixed text plus values cut to at most 80 characters


class BadRepr:
    def __repr__(self):
        raise RuntimeError("repr refused")

    __str__ = __repr__


class BadEq(str):
    """A key that hashes like 'node_type' but breaks every comparison."""

    def __hash__(self):
        return hash("node_type")

    def __eq__(self, other):
        raise RuntimeError("eq refused")


def deep_list(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


ODD_VALUES = [
    10**5000,
    -(10**5000),
    deep_list(100_000),
    "x" * 10_000_000,
    "10.0.0.2\n",
    float("nan"),
    float("inf"),
    b"\xff" * 1000,
    BadRepr(),
    BadEq("node_type"),
    {BadRepr()},
]

ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**4400, max_value=10**5000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.binary(max_size=50)
    | st.text(max_size=300)
    | st.sampled_from(["master", "slave", "disabled", "10.0.0.2", "10.0.0.2\n", "fe80::1%eth0\n"])
    | st.builds(BadRepr),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["node_type", "remote_address", "x"]) | st.text(max_size=5), children, max_size=4
        )
        | st.tuples(children, children)
    ),
    max_leaves=20,
)


def check_outcome(body):
    try:
        result = validate_ha_body(body, LOCAL)
    except ValidationError as exc:
        assert exc.errors
        for field, message in exc.errors.items():
            assert len(field) <= 60 and len(message) <= MESSAGE_BOUND, (field, message[:400])
        return None
    assert isinstance(result, HASettings)
    return result


@pytest.mark.parametrize("value", ODD_VALUES, ids=lambda value: type(value).__name__)
@pytest.mark.parametrize("where", ["body", "node_type", "remote_address", "key"])
def test_odd_values_are_a_short_validation_error(value, where):
    try:
        hash(value)
        hashable = True
    except TypeError:
        hashable = False
    if where == "key" and not hashable:
        pytest.skip("not a dict key")
    body = {
        "body": value,
        "node_type": {"node_type": value, "remote_address": "10.0.0.2"},
        "remote_address": {"node_type": "master", "remote_address": value},
        "key": {value: 1} if hashable else None,
    }[where]
    assert check_outcome(body) is None


def test_many_unknown_fields_are_summed_up():
    errors = rejected({f"field{n}": n for n in range(100_000)} | {"node_type": "disabled"})
    assert len(errors) <= 10 and "100000 unknown fields" in errors["body"]


@settings(max_examples=400, deadline=None)
@given(ANY_VALUE)
def test_any_python_value_is_settings_or_a_short_validation_error(value):
    check_outcome(value)
    check_outcome({"node_type": "master", "remote_address": value})
    check_outcome({"node_type": value, "remote_address": "10.0.0.2"})
