"""``doctor``: every prerequisite checked, PASS / WARN / FAIL with the fix; exit 1 on any FAIL."""

from __future__ import annotations

from .common import EXIT_FAILED, EXIT_OK, print_json

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine


def register(commands, common) -> None:
    doctor = commands.add_parser(
        "doctor", parents=[common], help="check every HA prerequisite (PASS/WARN/FAIL with the fix)"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args, engine: HAEngine) -> int:
    reports = engine.doctor()
    from ..doctor import FAIL, worst

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
