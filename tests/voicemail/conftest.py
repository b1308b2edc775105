import pytest

from tests.rig.voicemail import VoicemailRig


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """A wazo-ha master (file sync: rsync), a slave (sshd, watch) and a phone in 10.203.19.0/24 (tag v)."""
    directory = tmp_path_factory.mktemp("voicemail-rig")
    with VoicemailRig(directory, stability=3.0) as rig:
        rig.start_watch()
        yield rig
        print("\n--- master follow log (tail) ---\n" + "\n".join(rig.follow_log().splitlines()[-30:]))
        print("\n--- slave watch log (tail) ---\n" + "\n".join(rig.watch_log().splitlines()[-30:]))
