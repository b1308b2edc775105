"""The service rig: throwaway real services for the tests and ``wazo-ha demo``.

PostgreSQL clusters run as ``postgres`` (:mod:`.postgres`), hosts as network
namespaces (:mod:`.netns`), an OpenSSH server (:mod:`.sshd`), sipp standing in
for Asterisk (:mod:`.sip`), a real monit (:mod:`.monit`), rows for Wazo's real
schema (:mod:`.wazo_data`) and the one way to synchronise, :func:`.waiting.wait_for`.

A test and demo tool: installed with the library so ``wazo-ha demo`` works from
``pip install .``, but imported by nothing in ``wazo_ha_core`` or
``wazo_ha_plugins``. The pytest fixtures built on it stay in ``tests/rig``.
"""
