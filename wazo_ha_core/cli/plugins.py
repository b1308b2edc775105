"""``plugins``: each extension point, each plugin, loaded or why not."""

from __future__ import annotations

from .common import EXIT_FAILED, EXIT_OK, print_json

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine


def register(commands, common) -> None:
    plugins = commands.add_parser("plugins", parents=[common], help="each extension point and its plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(handler=cmd_plugins)


def cmd_plugins(args, engine: HAEngine) -> int:
    from ..settings import PLUGIN_NAMESPACES

    reports = engine.loader.inventory()
    if args.json:
        print_json([report.__dict__ | {"ok": report.ok} for report in reports])
    else:
        for group, namespace in PLUGIN_NAMESPACES.items():
            print(f"{namespace}  (plugins.{group})")
            rows = [report for report in reports if report.group == group]
            if not rows:
                print("    (no plugin installed or enabled)")
            for report in rows:
                state = "enabled " if report.enabled else "disabled"
                if not report.ok:
                    verdict = f"ERROR: {report.error}"
                else:
                    verdict = "loaded" if report.enabled else "installed"
                print(f"    {report.name:<16} {state}  {verdict}")
    failed = [report for report in reports if report.enabled and not report.ok]
    return EXIT_FAILED if failed else EXIT_OK
