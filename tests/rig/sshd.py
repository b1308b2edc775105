"""Moved to :mod:`wazo_ha_rig.sshd` (installable, so ``wazo-ha demo`` uses the same code); re-exported here."""

from wazo_ha_rig.sshd import *  # noqa: F403
