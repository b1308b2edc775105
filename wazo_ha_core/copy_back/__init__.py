"""Copy-back: what the slave recorded while serving (voicemail, recordings, history rows) brought to the master.

:mod:`.files` merges files pulled from the slave into the master's trees;
:mod:`.run` is the operation (``wazo-ha copy-back``): lock, plugins, journal.
See docs/copy_back.rst.
"""
