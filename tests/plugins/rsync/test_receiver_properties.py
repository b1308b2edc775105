"""Properties of the forced command's parser, whatever text sshd hands it (hypothesis)."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from wazo_ha_plugins.rsync import receiver

ROOT = "/var/lib/wazo-ha/slave"
#: Characters no accepted option, path or name may hold: a shell, a newline, a quote or a NUL would
#: mean the parser let through something it cannot vouch for.
SAFE_OPTION_CHARACTERS = set(string.ascii_letters + string.digits + "-=.")
FORBIDDEN_LONG_NAMES = set(receiver.FORBIDDEN_LONG)

tokens = st.one_of(
    st.sampled_from(
        [
            "-logtprRe.iLsfxCIvu",
            "-logDtprRe.iLsfxCIvu",
            "-logtpXRe.iLsfxCIvu",
            "-logtpARe.iLsfxCIvu",
            "-rR",
            "-R",
            "--delete-delay",
            "--no-implied-dirs",
            "--timeout=30",
            "--bwlimit=10K",
            "--devices",
            "--specials",
            "--super",
            "--fake-super",
            "--chmod=u+s",
            "--xattrs",
            "--acls",
            "--sender",
            "--rsync-path=sh",
            ";",
            "\n",
            "$(id)",
            ".",
            ROOT,
        ]
    ),
    st.text(min_size=1, max_size=30),
    st.text(alphabet="-elogDtpRAXrvzcHSWxn.iLsfCIu", min_size=1, max_size=20),
)
requests = st.one_of(
    st.text(max_size=200),
    st.lists(tokens, max_size=8).map(lambda words: " ".join(["rsync", "--server", *words, ".", ROOT])),
    st.lists(tokens, max_size=10).map(" ".join),
)


def assert_safe_option(option: str) -> None:
    assert set(option) <= SAFE_OPTION_CHARACTERS, option
    if option.startswith("--"):
        assert option.partition("=")[0] not in FORBIDDEN_LONG_NAMES, option
    else:
        letters = option[1:].partition("e")[0]
        assert not set(letters) & set(receiver.FORBIDDEN_LETTERS), option
        assert set(letters) <= receiver.SHORT_LETTERS


@settings(max_examples=600, deadline=None)
@given(requests)
def test_any_request_is_accepted_safely_or_refused(request):
    try:
        options = receiver.check_request(request, ROOT)
    except receiver.Refused as refusal:
        assert "\n" not in str(refusal)
        return
    words = request.split()
    assert words[:2] == ["rsync", "--server"] and words[-2:] == [".", ROOT]
    assert "--sender" not in options
    for option in options:
        assert_safe_option(option)


@given(st.text(max_size=40))
def test_is_short_cluster_only_accepts_allowed_letters(option):
    if receiver.is_short_cluster(option):
        letters, _, capabilities = option[1:].partition("e")
        assert option.startswith("-") and not option.startswith("--")
        assert letters and set(letters) <= receiver.SHORT_LETTERS
        assert not set(letters) & set(receiver.FORBIDDEN_LETTERS)
        assert set(capabilities) <= set(string.ascii_letters + ".")


@given(st.text(max_size=40))
def test_is_long_option_only_accepts_the_listed_forms(option):
    if receiver.is_long_option(option):
        name, _, value = option.partition("=")
        assert option in receiver.LONG_FLAGS or name in ("--timeout", "--bwlimit")
        assert set(value) <= set("0123456789KMkm")
        assert receiver.forbidden_option(option) is None


policy_words = st.one_of(
    st.sampled_from(["--root", "--allow", "--allow-tree", "--protect", "--other", ROOT, "/a/b", "monitor", "..", ""]),
    st.text(max_size=20),
)


@settings(max_examples=400)
@given(st.lists(policy_words, max_size=8))
def test_parse_policy_accepts_only_plain_paths_and_names(argv):
    try:
        policy = receiver.parse_policy(argv)
    except receiver.Refused:
        return
    for path in [policy["root"], *policy["allow"], *policy["allow_tree"]]:
        assert path.startswith("/") and set(path) <= receiver.PATH_CHARACTERS
        assert "/../" not in path + "/" and "/./" not in path + "/"
    for name in policy["protect"]:
        assert name not in ("", ".", "..") and set(name) <= receiver.NAME_CHARACTERS
