"""Prometheus metrics as a text file for node_exporter's textfile collector.

Rewritten atomically from the journal after every event, so it is always
whole and always consistent with ``wazo-ha history``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .compat import write_atomically
from .journal import Event

log = logging.getLogger(__name__)


class MetricsFile:
    def __init__(self, path: Path, store):
        self.path = path
        self.store = store

    @classmethod
    def from_settings(cls, settings, store) -> MetricsFile:
        return cls(settings.path("metrics_file"), store)

    def on_event(self, event: Event) -> None:
        """Journal listener: a failure to write metrics is logged, never raised."""
        try:
            write_atomically(self.path, self.render().encode(), 0o644)
        except Exception as exc:
            log.warning("could not write metrics to %s: %s", self.path, exc)

    def render(self) -> str:
        lines: list[str] = []

        def gauge(name: str, help_text: str, value: float, kind: str = "gauge") -> None:
            lines.append(f"# HELP wazo_ha_{name} {help_text}")
            lines.append(f"# TYPE wazo_ha_{name} {kind}")
            lines.append(f"wazo_ha_{name} {float(value)!r}")

        replication = self._last_success("replication")
        gauge(
            "last_replication_timestamp_seconds",
            "End of the last successful replication (copied or skipped), 0 if none.",
            replication.ended_at.timestamp() if replication else 0,
        )
        gauge(
            "last_replication_duration_seconds",
            "Duration of the last successful replication.",
            replication.duration if replication else 0,
        )
        gauge(
            "last_replication_bytes",
            "Bytes copied by the last successful replication.",
            float(replication.figures.get("bytes", 0)) if replication else 0,
        )
        gauge(
            "last_replication_user_statuses_to_master",
            "Users' status groups (DND, forwards, ...) the last successful replication carried back from the slave.",
            float(replication.figures.get("statuses_to_master", 0)) if replication else 0,
        )
        sync = self._last_success("sync")
        gauge(
            "last_sync_timestamp_seconds",
            "End of the last successful file sync, 0 if none.",
            sync.ended_at.timestamp() if sync else 0,
        )
        held = float(sync.figures.get("voicemail_copy_back_owed", 0)) if sync else 0
        gauge(
            "voicemail_held",
            "Differences between the slave's voicemail spool and the master's the last sync found (the spool was "
            "then left out of the mirror until a copy-back); 0 when mirrored.",
            held if sync is not None and sync.figures.get("voicemail") == "held" else 0,
        )
        for figure in ("copied", "deleted", "moved", "renumbered", "greetings"):
            gauge(
                f"last_sync_voicemail_to_slave_{figure}",
                f"Voicemail messages (greetings) the last sync's mirror {figure} on the slave.",
                float(sync.figures.get(f"voicemail_to_slave_{figure}", 0)) if sync else 0,
            )
        copy_back = self.store.last_event(("copy-back",), ("ok",))
        gauge(
            "last_copy_back_timestamp_seconds",
            "End of the last copy-back that left nothing on the slave (outcome ok), 0 if none.",
            copy_back.ended_at.timestamp() if copy_back else 0,
        )
        last_copy_back = self.store.last_event(("copy-back",), ("ok", "partial", "failed"))
        gauge(
            "copy_back_pending",
            "1 while the last copy-back failed or left items on the slave (conflicts, problems), else 0.",
            1 if last_copy_back is not None and last_copy_back.outcome != "ok" else 0,
        )
        for figure, help_text in (
            ("files", "Files the last copy-back put on the master."),
            ("messages", "Voicemail messages the last copy-back put on the master."),
            (
                "voicemail_messages_deleted",
                "Voicemail messages the last copy-back deleted on the master (by their owners on the slave).",
            ),
            (
                "voicemail_messages_moved",
                "Voicemail messages the last copy-back moved to another folder on the master.",
            ),
            ("rows_copied", "History rows (cel, queue_log) the last copy-back appended on the master."),
        ):
            value = last_copy_back.figures.get(figure, 0) if last_copy_back is not None else 0
            gauge(f"last_copy_back_{figure}", help_text, float(value))
        owed = self.store.plugin_state("core.copy_back").get("auto") or {}  # copy_back.auto.STATE_OWNER
        gauge(
            "copy_back_owed",
            "1 while a copy-back is owed to this master (the slave served since the last verified one), else 0.",
            1 if owed.get("owed_since") is not None else 0,
        )
        gauge(
            "copy_back_owed_since_timestamp_seconds",
            "Since when a copy-back is owed, 0 if none.",
            owed.get("owed_since") or 0,
        )
        gauge(
            "copy_back_failed_attempts",
            "Automatic copy-back attempts that failed in a row (0 after a success).",
            owed.get("attempts") or 0,
        )
        gauge(
            "copy_back_last_attempt_timestamp_seconds",
            "Start of the last automatic or manual copy-back attempt the check knows of, 0 if none.",
            owed.get("last_attempt_at") or 0,
        )
        last_switch = self.store.last_event(("failover", "failback"), ("ok",))
        gauge(
            "master_up",
            "1 while the master serves as this node last saw it (no failover in force), else 0.",
            0 if last_switch is not None and last_switch.kind == "failover" else 1,
        )
        failovers = self.store.count_events("failover", "ok")
        gauge("failovers_total", "Failovers this node performed.", failovers, kind="counter")
        paused = self.store.plugin_state("core.watch").get("paused")
        gauge(
            "paused", "1 while the watch is paused (wazo-ha pause): it observes but does not act.", 1 if paused else 0
        )
        return "\n".join(lines) + "\n"

    def _last_success(self, kind: str) -> Event | None:
        return self.store.last_event((kind,), ("ok", "skipped"))
