"""The wazo-confd plugin: ``/1.1/ha`` and ``/1.1/ha/status`` served through wazo-ha.

wazo-confd loads it from the entry point ``wazo_confd.plugins: wazo_ha`` when a
site sets ``enabled_plugins: {ha: false, wazo_ha: true}`` (docs/confd.rst).
Install it with the ``confd`` extra: ``pip install wazo-ha[confd]``.

* :mod:`.plugin` — what confd calls: ``Plugin().load(dependencies)``;
* :mod:`.service` — one engine, one edit at a time, ``ha_edited`` after an effective edit;
* :mod:`.resources` — the HTTP resources, in confd's shapes and error format;
* :mod:`.auth` — who may call them: confd's own decorators inside confd, or wazo-auth's contract;
* :mod:`.answers` — confd's error format (a JSON list of strings);
* :mod:`.bus` — the ``ha_edited`` event.
"""
