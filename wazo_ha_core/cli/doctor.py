"""``doctor``: every prerequisite checked, PASS / WARN / FAIL with the fix; exit 1 on any FAIL."""

from __future__ import annotations

from .common import EXIT_FAILED, EXIT_OK, UsageError, print_json

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine


def register(commands, common) -> None:
    doctor = commands.add_parser(
        "doctor", parents=[common], help="check every HA prerequisite (PASS/WARN/FAIL with the fix)"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument(
        "--as",
        dest="planned_role",
        choices=("master", "slave"),
        help="before enabling: check what this role needs (with --peer)",
    )
    doctor.add_argument("--peer", metavar="ADDRESS", help="with --as: the other node's address")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args, engine: HAEngine) -> int:
    role, peer = getattr(args, "planned_role", None), getattr(args, "peer", None)
    if (role is None) != (peer is None):
        raise UsageError("--as and --peer go together: wazo-ha doctor --as master|slave --peer ADDRESS")
    from ..config import HASettings
    from ..doctor import FAIL, worst

    reports = engine.doctor(HASettings(role, peer) if role else None)
    verdict = worst(reports)
    if args.json:
        print_json({"verdict": verdict, "checks": [report.as_dict() for report in reports]})
    else:
        width = max((len(report.name) for report in reports), default=0)
        for report in reports:
            print(f"{report.status}  {report.name:<{width}}  {report.detail}")
            if report.fix:
                print(f"      {'':<{width}}  fix: {report.fix}")
        counts = {status: sum(r.status == status for r in reports) for status in ("PASS", "WARN", "FAIL")}
        print(f"\n{verdict}: {counts['PASS']} passed, {counts['WARN']} warned, {counts['FAIL']} failed")
    return EXIT_FAILED if verdict == FAIL else EXIT_OK
