"""``wazo-ha``: the operator's command line, one module per group of commands.

``main`` assembles the parser from the modules listed in
:data:`wazo_ha_core.cli.main.COMMAND_MODULES`; each module has a
``register(commands, common)`` that adds its sub-commands. ``common`` runs a
command with the library's error handling and exit codes, and is what the
legacy script names (``xivo-sync``, ...) call too.
"""

from .main import main

__all__ = ["main"]
