"""The default plugins shipped with wazo-ha, one module per tool.

Each module imports only public names of :mod:`wazo_ha_core` and is
registered by an entry point in ``setup.cfg``.
"""
