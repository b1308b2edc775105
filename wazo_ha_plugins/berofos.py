"""ServiceManager ``berofos``: switch the bero*fos ISDN failover relays.

Reads the relays from ``config_file`` (``/etc/bnfos.conf``, one INI section
per relay: ``[fos1]``, ``[fos2]``…). Take over runs ``bnfos --set mode=0 -f
<section>`` for each (lines A-D, to this slave); give back runs ``mode=1``
(A-B, back to the master), in reverse order. No config file, or one without
sections → nothing to switch, not an error. A config without the ``bnfos``
program → a clear error.

The file holds the relays' admin passwords (``login=admin:…``): the plugin
never logs its content, passes only the section name on the command line and
warns when the file is readable by everyone.

The relay's mode is remembered per section in the plugin's state, so a second
take over does not talk to the relays again.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import stat

from wazo_ha_core import PluginError, ServiceManager, ServiceState

from .commands import failure_detail, run_command

TAKE_OVER_MODE, GIVE_BACK_MODE = 0, 1


class Berofos(ServiceManager):
    default_config = {"config_file": "/etc/bnfos.conf", "bnfos": "bnfos"}

    def __init__(self, context):
        super().__init__(context)
        self.config_file = context.settings.resolve(self.config["config_file"])
        self.timeout = float(context.settings.get("timeouts.command"))

    def start(self) -> None:
        self._switch(TAKE_OVER_MODE, self.sections())

    def stop(self) -> None:
        self._switch(GIVE_BACK_MODE, list(reversed(self.sections())))

    def status(self) -> ServiceState:
        sections = self.sections()
        if not sections:
            return ServiceState(None, f"no relay in {self.config_file}: nothing to switch")
        modes = {section: self.context.state.get(f"mode.{section}") for section in sections}
        if all(mode == TAKE_OVER_MODE for mode in modes.values()):
            return ServiceState(True, f"{len(sections)} relay(s) switched to this node")
        if all(mode == GIVE_BACK_MODE for mode in modes.values()):
            return ServiceState(False, f"{len(sections)} relay(s) switched to the master")
        return ServiceState(None, "relay modes unknown or mixed: " + ", ".join(f"{s}={m}" for s, m in modes.items()))

    def sections(self) -> list[str]:
        """The relays' section names, in file order; ``[]`` when there is no config file."""
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(self.config_file, encoding="utf-8") as handle:
                parser.read_file(handle)
            mode = self.config_file.stat().st_mode
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise PluginError(f"berofos: cannot read {self.config_file}: {exc}") from None
        except configparser.Error as exc:
            # The parser's message may quote a line holding a password: keep only where it is.
            line = getattr(exc, "lineno", None)
            where = f" at line {line}" if line else ""
            raise PluginError(f"berofos: {self.config_file} is not a valid INI file{where}") from None
        if mode & stat.S_IROTH:
            self.log.warning("%s holds relay passwords and is readable by everyone: chmod 600 it", self.config_file)
        return parser.sections()

    def _switch(self, mode: int, sections: list[str]) -> None:
        if not sections:
            self.log.info("no relay configured in %s: nothing to switch", self.config_file)
            return
        binary = shutil.which(self.config["bnfos"])
        if binary is None:
            raise PluginError(
                f"berofos: {self.config_file} lists {len(sections)} relay(s) but the bnfos command "
                f"{self.config['bnfos']!r} is not installed; install bnfos or set plugin_config.{self.name}.bnfos"
            )
        what = "take over" if mode == TAKE_OVER_MODE else "give back"
        for section in sections:
            key = f"mode.{section}"
            if self.context.state.get(key) == mode:
                continue
            argv = [binary, "--set", f"mode={mode}", "-f", section]
            result = run_command(argv, self.timeout, f"berofos {what}: relay [{section}]")
            if result.returncode != 0:
                raise PluginError(
                    f"berofos {what}: relay [{section}]: `{shlex.join(argv)}` failed: {failure_detail(result)}"
                )
            self.context.state.set(key, mode)
            self.log.info("berofos %s: relay [%s] set to mode=%d", what, section, mode)
