"""Two-way voicemail (wazo_ha_core.voicemail.threeway): each rule case by case, then over random histories.

A history starts from a base both nodes agreed on; then the master and the
slave each live their own life (new messages, messages read into Old or
saved into a folder, deleted, greetings re-recorded or deleted), the way
app_voicemail does it (a folder is renumbered from msg0000 after a removal;
sometimes a gap is left, as a crash would). Both sides' plans are applied to
their listings and the results checked: equal on both sides, contiguous,
nothing lost, nothing twice, deletions and moves by the owner kept. An
interrupted master plan, replanned from where it stopped, ends with the same messages in the same folders.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_voicemail_merge import greeting, message
from wazo_ha_core.voicemail import FileInfo, parse_tree
from wazo_ha_core.voicemail.threeway import Base, apply_plan, file_steps, leftovers, merge

BOX = "default/1001"


def run(master: dict, slave: dict, base: dict | None, **kwargs):
    master_spool, slave_spool = parse_tree(master), parse_tree(slave)
    result = merge(master_spool, slave_spool, Base.of(parse_tree(base)) if base is not None else None, **kwargs)
    return result, apply_plan(master, slave, result.master), apply_plan(slave, master, result.slave)


def folders(listing: dict, box: str = BOX) -> dict[str, list[str]]:
    """folder -> the messages' keys in number order (the key is the part of msg_id after the origtime)."""
    shown: dict[str, list[str]] = {}
    spool = parse_tree(listing)
    for (context, number), mailbox in spool.mailboxes.items():
        if f"{context}/{number}" != box:
            continue
        for name, folder in mailbox.folders.items():
            numbers = sorted(folder.messages)
            assert numbers == list(range(len(numbers))), f"{name} not contiguous: {numbers}"
            shown[name] = [folder.messages[n].identity[1].split("-", 1)[1] for n in numbers]
    return shown


def listing(*parts: dict) -> dict:
    merged: dict = {}
    for part in parts:
        merged.update(part)
    return merged


BASE = listing(
    message("INBOX", 0, "a", origtime=100), message("INBOX", 1, "b", origtime=200), greeting("unavail", "v1")
)


# --- case by case --------------------------------------------------------------------------------


def test_unchanged_on_both_sides_plans_nothing():
    result, master, slave = run(BASE, BASE, BASE)
    assert result.master.empty and result.slave.empty and not result.conflicts
    assert master == BASE == slave


def test_a_message_new_on_the_master_is_copied_to_the_slave_under_the_next_number():
    master = listing(BASE, message("INBOX", 2, "c", origtime=300))
    result, after_master, after_slave = run(master, BASE, BASE)
    assert result.master.empty
    assert [op.kind for op in result.slave.messages] == ["copy"]
    assert folders(after_slave) == folders(after_master) == {"INBOX": ["a", "b", "c"]}


def test_a_message_new_on_the_slave_goes_to_the_master_after_the_masters_own_ones():
    master = listing(BASE, message("INBOX", 2, "m", origtime=900))
    slave = listing(BASE, message("INBOX", 2, "s", origtime=500))
    result, after_master, after_slave = run(master, slave, BASE)
    # The master's numbers stay; the slave's message follows them (and is renumbered on the slave).
    assert folders(after_master) == folders(after_slave) == {"INBOX": ["a", "b", "m", "s"]}
    assert result.master.figures("to_master")["to_master_copied"] == 1
    assert result.slave.figures("to_slave") == {
        "to_slave_copied": 1,
        "to_slave_deleted": 0,
        "to_slave_moved": 0,
        "to_slave_renumbered": 1,
        "to_slave_greetings": 0,
    }


def test_a_message_deleted_on_the_slave_is_deleted_on_the_master_and_the_folder_renumbered():
    slave = message("INBOX", 0, "b", origtime=200)  # "a" deleted, "b" renumbered by app_voicemail
    result, after_master, after_slave = run(BASE, slave, BASE)
    assert folders(after_master) == folders(after_slave) == {"INBOX": ["b"]}
    assert [op.kind for op in result.master.messages] == ["delete", "move"]
    assert result.slave.empty


def test_a_message_deleted_on_the_master_is_not_resurrected_by_the_slave():
    master = message("INBOX", 0, "a", origtime=100)
    _, after_master, after_slave = run(master, BASE, BASE)
    assert folders(after_master) == folders(after_slave) == {"INBOX": ["a"]}


def test_a_message_read_on_the_slave_moves_to_old_on_the_master():
    slave = listing(
        message("INBOX", 0, "b", origtime=200), message("Old", 0, "a", origtime=100), greeting("unavail", "v1")
    )
    _, after_master, after_slave = run(BASE, slave, BASE)
    assert folders(after_master) == folders(after_slave) == {"INBOX": ["b"], "Old": ["a"]}


def test_moved_differently_on_both_sides_the_masters_folder_wins_and_is_counted():
    master = listing(message("INBOX", 0, "b", origtime=200), message("Work", 0, "a", origtime=100))
    slave = listing(message("INBOX", 0, "b", origtime=200), message("Old", 0, "a", origtime=100))
    result, after_master, after_slave = run(master, slave, BASE)
    assert folders(after_master) == folders(after_slave) == {"INBOX": ["b"], "Work": ["a"]}
    assert len(result.conflicts) == 1 and "moved on both sides" in result.conflicts[0]


def test_deleted_on_one_side_and_moved_on_the_other_is_deleted():
    master = listing(message("INBOX", 0, "b", origtime=200), message("Old", 0, "a", origtime=100))
    slave = message("INBOX", 0, "b", origtime=200)
    _, after_master, after_slave = run(master, slave, BASE)
    assert folders(after_master) == folders(after_slave) == {"INBOX": ["b"]}


def test_two_moves_that_swap_folders_use_a_spare_number_and_end_contiguous():
    base = listing(message("INBOX", 0, "a", origtime=100), message("Old", 0, "c", origtime=50))
    slave = listing(message("Old", 0, "a", origtime=100), message("INBOX", 0, "c", origtime=50))
    result, after_master, _ = run(base, slave, base)
    assert folders(after_master) == {"INBOX": ["c"], "Old": ["a"]}
    assert all(op.kind == "move" for op in result.master.messages)


def test_a_greeting_re_recorded_on_the_slave_replaces_the_masters_unchanged_one():
    slave = listing(
        message("INBOX", 0, "a", origtime=100), message("INBOX", 1, "b", origtime=200), greeting("unavail", "v2")
    )
    result, after_master, _ = run(BASE, slave, BASE)
    assert after_master[f"{BOX}/unavail.wav"] == FileInfo("unavail-v2-wav")
    assert result.master.figures("x")["x_greetings"] == 1 and not result.conflicts


def test_a_greeting_deleted_on_the_master_is_deleted_on_the_slave_but_one_changed_on_both_keeps_the_masters():
    master = listing(message("INBOX", 0, "a", origtime=100), message("INBOX", 1, "b", origtime=200))
    _, _, after_slave = run(master, BASE, BASE)
    assert f"{BOX}/unavail.wav" not in after_slave
    both = listing(BASE, greeting("unavail", "m2"))
    result, after_master, after_slave = run(both, listing(BASE, greeting("unavail", "s2")), BASE)
    assert after_master[f"{BOX}/unavail.wav"] == after_slave[f"{BOX}/unavail.wav"] == FileInfo("unavail-m2-wav")
    assert "greeting unavail" in result.conflicts[0]


def test_a_greeting_recorded_in_fewer_formats_on_the_slave_leaves_no_old_format_behind():
    slave = listing(BASE, greeting("unavail", "v3", formats=("wav",)))
    del slave[f"{BOX}/unavail.gsm"]
    _, after_master, _ = run(BASE, slave, BASE)
    assert f"{BOX}/unavail.gsm" not in after_master and after_master[f"{BOX}/unavail.wav"] == FileInfo("unavail-v3-wav")


def test_without_a_base_nothing_counts_as_deleted_and_differing_greetings_keep_the_masters():
    master = listing(message("INBOX", 0, "a", origtime=100), greeting("busy", "m"))
    slave = listing(message("INBOX", 0, "s", origtime=50), greeting("busy", "s"), greeting("temp", "s"))
    result, after_master, after_slave = run(master, slave, None)
    assert folders(after_master) == folders(after_slave) == {"INBOX": ["a", "s"]}
    assert after_master[f"{BOX}/busy.wav"] == FileInfo("busy-m-wav") and f"{BOX}/temp.wav" in after_master
    assert len(result.conflicts) == 1


def test_a_folder_with_gaps_is_renumbered_from_msg0000_keeping_its_order():
    master = listing(
        message("INBOX", 0, "a", origtime=100),
        message("INBOX", 3, "b", origtime=200),
        message("INBOX", 7, "c", origtime=150),
    )
    _, after_master, after_slave = run(master, master, master)
    assert folders(after_master) == folders(after_slave) == {"INBOX": ["a", "b", "c"]}


def test_a_message_shown_twice_on_one_side_is_kept_once():
    master = listing(BASE, message("INBOX", 2, "a", origtime=100))  # "a" under 0000 and 0002
    _, after_master, _ = run(master, BASE, BASE)
    assert folders(after_master) == {"INBOX": ["a", "b"]}


def test_slave_messages_beyond_maxmsg_are_left_out_and_reported():
    slave = listing(BASE, message("INBOX", 2, "s1", origtime=300), message("INBOX", 3, "s2", origtime=400))
    result, after_master, _ = run(BASE, slave, BASE, max_messages=3)
    assert folders(after_master) == {"INBOX": ["a", "b", "s1"]}
    assert result.overflow == [f"{BOX}/INBOX: slave message msg0003"]


def test_bad_input_is_not_merged_and_not_removed():
    slave = listing(BASE, message("INBOX", 2, "bad", origtime=300), {f"{BOX}/INBOX/msg0003.wav": FileInfo("orphan")})
    slave[f"{BOX}/INBOX/msg0002.txt"] = FileInfo("x", "this is not [message] text")
    spool = parse_tree(slave)
    assert any("msg0002.txt" in p for p in spool.mailboxes[("default", "1001")].problems)
    assert any("msg0003: sound file(s) without metadata" in p for p in spool.mailboxes[("default", "1001")].problems)
    result, after_master, after_slave = run(BASE, slave, BASE)
    assert result.master.empty and folders(after_master) == {"INBOX": ["a", "b"]}
    assert leftovers(slave, spool, Base.of(parse_tree(BASE))) == []  # unknown junk is never cleaned up
    assert after_slave[f"{BOX}/INBOX/msg0003.wav"] == FileInfo("orphan")


def test_the_base_survives_json_and_a_malformed_one_is_refused_naming_the_problem():
    base = Base.of(parse_tree(BASE))
    assert Base.from_json(base.to_json()) == base
    with pytest.raises(ValueError, match="not JSON"):
        Base.from_json("{")
    with pytest.raises(ValueError, match="malformed"):
        Base.from_json('{"version": 1, "mailboxes": [{"context": "default"}]}')


def test_file_steps_keep_a_moved_message_visible_txt_linked_last_and_unlinked_first():
    result, _, _ = run(BASE, message("INBOX", 0, "b", origtime=200), BASE)
    move = next(op for op in result.master.messages if op.kind == "move")
    steps = [(action, path.rsplit(".", 1)[1]) for action, path, _, _ in file_steps(move)]
    assert steps == [
        ("link", "gsm"),
        ("link", "wav"),
        ("link", "txt"),
        ("unlink", "txt"),
        ("unlink", "wav"),
        ("unlink", "gsm"),
    ]


# --- random histories ----------------------------------------------------------------------------

FOLDER_CHOICES = ("INBOX", "Old", "Work")
GREETING_NAMES = ("unavail", "busy", "greet")


class Side:
    """One node's mailbox as app_voicemail keeps it: folder -> list of keys in number order."""

    def __init__(self, folders: dict[str, list[str]], greetings: dict[str, str], gaps: dict[str, int] | None = None):
        self.folders = {f: list(keys) for f, keys in folders.items()}
        self.greetings = dict(greetings)
        self.gaps = dict(gaps or {})  # folder -> extra offset before its last message (a crash left a hole)

    def listing(self, times: dict[str, int]) -> dict:
        files: dict = {}
        for folder, keys in self.folders.items():
            for index, key in enumerate(keys):
                number = index + (self.gaps.get(folder, 0) if index == len(keys) - 1 else 0)
                files.update(message(folder, number, key, origtime=times[key]))
        for name, version in self.greetings.items():
            files.update(greeting(name, version))
        return files

    def keys(self) -> dict[str, str]:
        return {key: folder for folder, keys in self.folders.items() for key in keys}


def live(side: Side, rng: random.Random, label: str, steps: int, times: dict[str, int], log: dict) -> None:
    for step in range(steps):
        action = rng.choice(["new", "new", "move", "delete", "greeting", "ungreet", "gap"])
        present = side.keys()
        if action == "new":
            key = f"{label}{step}"
            times[key] = rng.randint(1, 10_000)
            side.folders.setdefault("INBOX", []).append(key)
            log["new"].add(key)
        elif action in ("move", "delete") and present:
            key = rng.choice(sorted(present))
            side.folders[present[key]].remove(key)  # app_voicemail closes the gap
            if action == "delete":
                log["deleted"].add(key)
            else:
                folder = rng.choice([f for f in FOLDER_CHOICES if f != present[key]])
                side.folders.setdefault(folder, []).append(key)
                log["moved"][key] = folder
        elif action == "greeting":
            side.greetings[rng.choice(GREETING_NAMES)] = f"{label}{step}"
        elif action == "ungreet" and side.greetings:
            del side.greetings[rng.choice(sorted(side.greetings))]
        elif action == "gap":
            side.gaps[rng.choice(FOLDER_CHOICES)] = rng.randint(1, 3)
        side.folders = {f: keys for f, keys in side.folders.items() if keys}


def history(seed: int):
    rng = random.Random(seed)
    times: dict[str, int] = {}
    base_folders: dict[str, list[str]] = {}
    for index in range(rng.randint(0, 6)):
        key = f"b{index}"
        times[key] = rng.randint(1, 10_000)
        base_folders.setdefault(rng.choice(FOLDER_CHOICES), []).append(key)
    base = Side(base_folders, {name: "base" for name in GREETING_NAMES if rng.random() < 0.5})
    master, slave = Side(base.folders, base.greetings), Side(base.folders, base.greetings)
    logs = {}
    for side, label in ((master, "m"), (slave, "s")):
        logs[label] = {"new": set(), "deleted": set(), "moved": {}}
        live(side, rng, label, rng.randint(0, 8), times, logs[label])
    return base, master, slave, times, logs, rng


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_random_histories_end_equal_contiguous_and_lose_nothing(seed):
    base, master, slave, times, logs, rng = history(seed)
    base_listing, master_listing, slave_listing = base.listing(times), master.listing(times), slave.listing(times)
    result, after_master, after_slave = run(master_listing, slave_listing, base_listing, max_messages=9999)
    shown_master, shown_slave = folders(after_master), folders(after_slave)  # contiguous, else AssertionError
    assert shown_master == shown_slave
    assert after_master == after_slave  # greetings too, and every message's files
    shown = [key for keys in shown_master.values() for key in keys]
    assert len(shown) == len(set(shown)), "a message shows twice"
    deleted = logs["m"]["deleted"] | logs["s"]["deleted"]
    expected = (set(base.keys()) | logs["m"]["new"] | logs["s"]["new"]) - deleted
    assert set(shown) == expected, "a message was lost or resurrected"
    where = {key: folder for folder, keys in shown_master.items() for key in keys}
    for label, other in (("m", "s"), ("s", "m")):
        for key, folder in logs[label]["moved"].items():
            side = master if label == "m" else slave
            if key in where and key not in logs[other]["moved"] and side.keys().get(key) == folder:
                assert where[key] == folder, f"{key} moved to {folder} on {label} but ends in {where[key]}"
    # Nothing more to do afterwards: the result is its own base.
    again = merge(parse_tree(after_master), parse_tree(after_slave), Base.of(parse_tree(after_master)))
    assert again.master.empty and again.slave.empty
    # An interrupted master plan, replanned from the tree it left (its leftovers removed), ends the same.
    steps = [(op, step) for op in result.master.messages for step in file_steps(op)]
    if steps:
        cut = rng.randint(0, len(steps))
        partial = dict(master_listing)
        for _op, (action, path, source, _digest) in steps[:cut]:
            if action == "unlink":
                partial.pop(path, None)
            else:
                partial[path] = (partial if action == "link" else slave_listing)[source]
        spool = parse_tree(partial)
        for identity_key in expected & set(master.keys()):
            assert any(identity_key in str(m.identity) for box in spool.mailboxes.values() for m in _messages(box)), (
                f"{identity_key} invisible after an interruption"
            )
        base_model = Base.of(parse_tree(base_listing))
        for path in leftovers(partial, spool, base_model, parse_tree(slave_listing)):
            del partial[path]
        rerun = merge(parse_tree(partial), parse_tree(slave_listing), base_model, max_messages=9999)
        # The same messages in the same folders, contiguous (an interrupted renumbering may change the order).
        finished = folders(apply_plan(partial, slave_listing, rerun.master))
        assert {f: sorted(keys) for f, keys in finished.items()} == {f: sorted(k) for f, k in shown_master.items()}


def _messages(box):
    return [m for folder in box.folders.values() for m in folder.messages.values()]
