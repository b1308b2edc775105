"""Voicemail copy-back plan (wazo_ha_core.voicemail): case by case, then over random histories."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wazo_ha_core.voicemail import FOLDERS, FileInfo, apply_to_listing, parse_tree, plan_copy_back
from wazo_ha_core.voicemail.layout import message_identity, parse_metadata

BOX = "default/1001"


def metadata(origtime: int, callerid: str = '"Alice" <1002>', duration: int = 7, msg_id: str | None = None) -> str:
    """A msgNNNN.txt as app_voicemail writes it (fields in its order, msg_id since Asterisk 12)."""
    lines = [
        ";",
        "; Message Information file",
        ";",
        "[message]",
        "origmailbox=1001",
        "context=default",
        "macrocontext=",
        "exten=1001",
        "rdnis=unknown",
        "priority=2",
        "callerchan=PJSIP/1002-00000001",
        f"callerid={callerid}",
        "origdate=Thu Dec  3 10:00:00 AM UTC 2026",
        f"origtime={origtime}",
        "category=",
    ]
    if msg_id is not None:
        lines.append(f"msg_id={msg_id}")
    lines += ["flag=", f"duration={duration}", ""]
    return "\n".join(lines)


def message(folder: str, number: int, key: str, formats=("wav", "gsm"), box: str = BOX, origtime: int = 1000):
    """The files of one message: .txt (identity from ``key``) plus one sound file per format."""
    files = {
        f"{box}/{folder}/msg{number:04d}.txt": FileInfo(f"txt-{key}", metadata(origtime, msg_id=f"{origtime}-{key}"))
    }
    for ext in formats:
        files[f"{box}/{folder}/msg{number:04d}.{ext}"] = FileInfo(f"{ext}-{key}")
    return files


def greeting(name: str, version: str, formats=("wav", "gsm"), box: str = BOX):
    return {f"{box}/{name}.{ext}": FileInfo(f"{name}-{version}-{ext}") for ext in formats}


def merged(master: dict, slave: dict, taken_over: dict | None = None, **kwargs):
    plan = plan_copy_back(
        parse_tree(master), parse_tree(slave), parse_tree(taken_over) if taken_over is not None else None, **kwargs
    )
    return plan, apply_to_listing(master, slave, plan)


# --- layout -----------------------------------------------------------------------------------


def test_layout_groups_files_by_message_and_reads_greetings():
    listing = {
        **message("INBOX", 0, "a", formats=("wav", "WAV", "gsm")),
        **message("Old", 0, "b"),
        **greeting("unavail", "1"),
    }
    box = parse_tree(listing).mailboxes[("default", "1001")]
    assert set(box.folders) == {"INBOX", "Old"}
    assert set(box.folders["INBOX"].messages[0].files) == {"txt", "wav", "WAV", "gsm"}
    assert box.folders["INBOX"].messages[0].identity == ("msg_id", "1000-a")
    assert box.greetings == {"unavail": {"wav": "unavail-1-wav", "gsm": "unavail-1-gsm"}}
    assert box.problems == []


def test_identity_without_msg_id_uses_origin_time_caller_and_duration():
    fields = parse_metadata(metadata(1234, callerid="<1003>", duration=12))
    assert message_identity(fields) == ("fields", "1001", "1234", "<1003>", "12")


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({f"{BOX}/INBOX/msg0000.wav": FileInfo("x")}, "without metadata"),
        (
            {f"{BOX}/INBOX/msg0000.txt": FileInfo("t", "not ini at all"), f"{BOX}/INBOX/msg0000.wav": FileInfo("x")},
            "INI",
        ),
        (
            {f"{BOX}/INBOX/msg0000.txt": FileInfo("t", "[other]\na=1\n"), f"{BOX}/INBOX/msg0000.wav": FileInfo("x")},
            "[message]",
        ),
        (
            {
                f"{BOX}/INBOX/msg0000.txt": FileInfo("t", "[message]\nflag=\n"),
                f"{BOX}/INBOX/msg0000.wav": FileInfo("x"),
            },
            "origtime",
        ),
        ({f"{BOX}/INBOX/msg0000.txt": FileInfo("t", metadata(1, msg_id="1-a"))}, "without a sound file"),
        ({f"{BOX}/Spam/msg0000.wav": FileInfo("x")}, "ignored"),
    ],
)
def test_bad_slave_message_is_reported_and_not_copied(files, reason):
    plan, after = merged({}, files)
    assert plan.copies == []
    assert any(reason in p for p in plan.problems), plan.problems
    assert after == {}


@pytest.mark.parametrize("path", ["../etc/passwd", "default/1001/INBOX/msg0000.wav\n", "default/10\udcff01/INBOX/x"])
def test_unexpected_paths_are_reported(path):
    spool = parse_tree({path: FileInfo("x")})
    assert spool.mailboxes == {}
    assert len(spool.problems) == 1 and "unexpected path" in spool.problems[0]


def test_bad_max_messages_is_refused_naming_the_value():
    with pytest.raises(ValueError, match=r"max_messages must be an integer from 1 to 9999, got 0"):
        plan_copy_back(parse_tree({}), parse_tree({}), max_messages=0)
    with pytest.raises(ValueError, match=r"max_messages\[\('default', '1001'\)\].*'many'"):
        plan_copy_back(parse_tree({}), parse_tree({}), max_messages_by_mailbox={("default", "1001"): "many"})


# --- messages ---------------------------------------------------------------------------------


def test_new_message_on_slave_goes_to_the_same_folder():
    master = message("INBOX", 0, "a")
    slave = {**message("INBOX", 0, "a"), **message("INBOX", 1, "b", origtime=2000)}
    plan, after = merged(master, slave)
    assert [(m.folder, m.slave_number, m.master_number) for m in plan.messages] == [("INBOX", 1, 1)]
    assert plan.already_on_master == 1
    assert after == {**master, **message("INBOX", 1, "b", origtime=2000)}


def test_same_message_on_both_is_not_copied_even_under_another_number_or_folder():
    master = {**message("Old", 0, "z"), **message("Old", 1, "a")}
    slave = message("INBOX", 0, "a")  # the owner moved it to Old on the master: not resurrected in INBOX
    plan, after = merged(master, slave)
    assert plan.copies == [] and plan.already_on_master == 1
    assert after == master


def test_number_clash_renumbers_all_files_of_the_message_together():
    master = {**message("INBOX", 0, "a"), **message("INBOX", 1, "b")}
    slave = {**message("INBOX", 0, "c", formats=("wav", "WAV", "gsm")), **message("INBOX", 1, "d", origtime=900)}
    plan, after = merged(master, slave)
    # d is older than c: it takes the first free number
    assert [(m.slave_number, m.master_number) for m in plan.messages] == [(1, 2), (0, 3)]
    assert plan.renumbered == 2
    assert {k: v for k, v in after.items() if "msg0003" in k} == {
        k.replace("msg0000", "msg0003"): v for k, v in message("INBOX", 0, "c", formats=("wav", "WAV", "gsm")).items()
    }
    assert after[f"{BOX}/INBOX/msg0002.txt"] == slave[f"{BOX}/INBOX/msg0001.txt"]


def test_folder_missing_on_master_is_created():
    plan, after = merged(message("INBOX", 0, "a"), message("Urgent", 0, "u"))
    assert plan.directories == [f"{BOX}/Urgent"]
    assert set(after) >= set(message("Urgent", 0, "u"))


def test_mailbox_missing_on_master_is_created():
    plan, after = merged({}, message("INBOX", 0, "a", box="default/1002"))
    assert plan.directories == ["default/1002/INBOX"]
    assert after == message("INBOX", 0, "a", box="default/1002")


def test_gaps_on_master_are_filled_first_and_nothing_moves():
    master = {**message("INBOX", 0, "a"), **message("INBOX", 2, "b")}
    plan, after = merged(master, {**message("INBOX", 0, "c"), **message("INBOX", 1, "d", origtime=2000)})
    assert [m.master_number for m in plan.messages] == [1, 3]
    assert all(after[k] == v for k, v in master.items())


def test_full_folder_reports_overflow_instead_of_dropping():
    master = {**message("INBOX", 0, "a"), **message("INBOX", 1, "b")}
    slave = {**message("INBOX", 0, "c"), **message("INBOX", 1, "d", origtime=2000)}
    plan, after = merged(master, slave, max_messages=3)
    assert [m.master_number for m in plan.messages] == [2]
    assert sorted(set(after) - set(master)) == [f"{BOX}/INBOX/msg0002.{ext}" for ext in ("gsm", "txt", "wav")]
    assert [(o.folder, o.slave_number, o.max_messages) for o in plan.overflow] == [("INBOX", 1, 3)]
    plan, _ = merged(master, slave, max_messages=10, max_messages_by_mailbox={("default", "1001"): 2})
    assert plan.messages == [] and len(plan.overflow) == 2


def test_apply_refuses_a_stale_plan_that_would_overwrite():
    master = message("INBOX", 0, "a")
    slave = message("INBOX", 0, "b")
    plan = plan_copy_back(parse_tree(master), parse_tree(slave))
    newer_master = {**master, **message("INBOX", 1, "late")}
    with pytest.raises(ValueError, match="refusing to overwrite 'default/1001/INBOX/msg0001"):
        apply_to_listing(newer_master, slave, plan)


# --- greetings --------------------------------------------------------------------------------


def test_greeting_rerecorded_on_slave_replaces_the_unchanged_master_one():
    before = greeting("unavail", "1")
    plan, after = merged(before, greeting("unavail", "2"), taken_over=before)
    assert plan.conflicts == []
    assert {c.expected_digest for c in plan.copies} == {"unavail-1-wav", "unavail-1-gsm"}
    assert after == greeting("unavail", "2")


def test_greeting_changed_on_master_only_stays():
    before = greeting("busy", "1")
    plan, after = merged(greeting("busy", "m"), before, taken_over=before)
    assert plan.copies == [] and plan.conflicts == []
    assert after == greeting("busy", "m")


def test_greeting_changed_on_both_sides_is_a_conflict():
    before = greeting("greet", "1")
    plan, after = merged(greeting("greet", "m"), greeting("greet", "s"), taken_over=before)
    assert [(c.greeting, c.reason) for c in plan.conflicts] == [("greet", "changed on the master and on the slave")]
    assert after == greeting("greet", "m")


def test_greeting_differing_without_the_take_over_state_is_a_conflict():
    plan, after = merged(greeting("temp", "m"), greeting("temp", "s"))
    assert len(plan.conflicts) == 1 and after == greeting("temp", "m")


def test_new_greeting_on_slave_is_copied_when_master_has_none():
    plan, after = merged({}, greeting("temp", "s"))
    assert all(c.expected_digest is None for c in plan.copies)
    assert after == greeting("temp", "s")


def test_greeting_with_a_format_only_the_master_has_is_a_conflict():
    before = greeting("unavail", "1", formats=("wav", "gsm"))
    plan, after = merged(before, greeting("unavail", "2", formats=("wav",)), taken_over=before)
    assert "formats gsm" in plan.conflicts[0].reason and after == before


# --- random histories -------------------------------------------------------------------------

KEYS = [f"k{i}" for i in range(12)]
BOXES = ["default/1001", "default/1002"]
FORMATS = st.lists(st.sampled_from(["wav", "WAV", "gsm"]), min_size=1, max_size=3, unique=True)


@st.composite
def side(draw, keys):
    """One node's spool: per mailbox and folder, a contiguous run of messages drawn from ``keys``."""
    listing: dict[str, FileInfo] = {}
    for box in BOXES:
        chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=6))
        by_folder: dict[str, int] = {}
        for key in chosen:
            folder = draw(st.sampled_from(FOLDERS[:4]))
            number = by_folder.get(folder, 0)
            by_folder[folder] = number + 1
            formats = draw(FORMATS)
            listing.update(message(folder, number, key, formats=formats, box=box, origtime=draw(st.integers(0, 5))))
        for name in draw(st.lists(st.sampled_from(["unavail", "busy"]), unique=True)):
            listing.update(greeting(name, draw(st.sampled_from(["1", "2", "3"])), box=box))
    return listing


def consistent(listing, canon):
    """Same digest → same file on every node (a message's content does not depend on the node)."""
    out = {}
    for path, info in listing.items():
        canon.setdefault(info.digest, info)
        out[path] = canon[info.digest]
    return out


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_plan_over_random_histories(data):
    taken_over = data.draw(side(KEYS[:6]), label="taken_over")
    master = data.draw(side(KEYS[:8]), label="master")
    slave = data.draw(side(KEYS), label="slave")
    max_messages = data.draw(st.integers(1, 8), label="max_messages")
    # origtime is part of the key on one side but drawn per side: make a key's metadata identical on both
    canon: dict[str, FileInfo] = {}
    taken_over, master, slave = (consistent(x, canon) for x in (taken_over, master, slave))
    plan = plan_copy_back(parse_tree(master), parse_tree(slave), parse_tree(taken_over), max_messages=max_messages)
    after = apply_to_listing(master, slave, plan)
    replaced = {c.dst for c in plan.copies if c.expected_digest is not None}

    # never removes or changes a master file; a greeting only when unchanged since the take-over
    for path, info in master.items():
        assert path in after
        if path in replaced:
            name = path.rsplit("/", 1)[1]
            assert "/msg" not in path and taken_over.get(path) == info, name
        else:
            assert after[path] == info
    result = parse_tree(after)
    assert result.problems == []
    slave_spool, master_spool = parse_tree(slave), parse_tree(master)
    overflowed = {(o.mailbox, o.folder, o.slave_number) for o in plan.overflow}
    for key, slave_box in slave_spool.mailboxes.items():
        box = result.mailboxes.get(key)
        if box is None:  # only an unchanged greeting, which the master has since removed
            assert not slave_box.folders
            continue
        assert box.problems == []
        identities = [m.identity for f in box.folders.values() for m in f.messages.values()]
        assert len(identities) == len(set(identities)), "a message shows twice"
        master_box = master_spool.mailboxes.get(key)
        for folder in slave_box.folders.values():
            for msg in folder.messages.values():
                if (slave_box.path, folder.name, msg.number) in overflowed:
                    assert msg.identity not in identities
                    assert set(range(max_messages)) <= set(box.folders[folder.name].messages), "overflow with room"
                else:
                    assert msg.identity in identities, "a slave message is lost"
        for folder in box.folders.values():
            # every message's files share one number: the whole set of the source is under it
            for msg in folder.messages.values():
                assert "txt" in msg.files and len(msg.files) >= 2
            numbers = sorted(folder.messages)
            master_numbers = (
                sorted(master_box.folders[folder.name].messages)
                if master_box and folder.name in master_box.folders
                else []
            )
            if master_numbers == list(range(len(master_numbers))):
                assert numbers == list(range(len(numbers))), "numbering not contiguous from msg0000"
    for move in plan.messages:
        (slave_msg,) = [
            m
            for m in slave_spool.mailboxes[tuple(move.mailbox.split("/"))].folders[move.folder].messages.values()
            if m.number == move.slave_number
        ]
        landed = result.mailboxes[tuple(move.mailbox.split("/"))].folders[move.folder].messages[move.master_number]
        assert landed.files == slave_msg.files and landed.identity == slave_msg.identity
        assert move.master_number < max_messages, "beyond the folder's maxmsg"
    # a greeting reaches the master only when re-recorded on the slave since the take-over
    for copy in plan.copies:
        if "/msg" not in copy.dst:
            box, name = copy.src.rsplit("/", 1)
            stem = name.split(".")[0]
            slave_version = {p: i for p, i in slave.items() if p.startswith(f"{box}/{stem}.")}
            before_version = {p: i for p, i in taken_over.items() if p.startswith(f"{box}/{stem}.")}
            assert slave_version != before_version, f"{copy.src} copied though not re-recorded"
