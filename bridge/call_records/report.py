"""``bridge calls``: the call records as a table, or as JSON for scripts."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bridge.call_records.model import CallSummary, TurnRow


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _who(summary: CallSummary) -> str:
    call = summary.call
    return f"{call.caller} -> {call.callee}" if call.callee else call.caller


def summary_dict(summary: CallSummary) -> dict[str, Any]:
    duration = summary.duration_s
    return {
        **asdict(summary.call),
        "turns": summary.turns,
        "duration_s": None if duration is None else round(duration, 3),
    }


def calls_json(summaries: list[CallSummary]) -> str:
    return json.dumps([summary_dict(s) for s in summaries], indent=2)


def call_json(summary: CallSummary, turns: list[TurnRow]) -> str:
    return json.dumps({**summary_dict(summary), "turn_rows": [asdict(t) for t in turns]}, indent=2)


def calls_table(summaries: list[CallSummary]) -> str:
    header = ("CALL ID", "TRANSPORT", "WHO", "STARTED (UTC)", "DURATION", "TURNS", "END REASON")
    rows = [header]
    for s in summaries:
        duration = s.duration_s
        rows.append(
            (
                s.call.call_id,
                s.call.transport,
                _who(s),
                _when(s.call.started_at_s),
                "live?" if duration is None else f"{duration:.1f}s",
                str(s.turns),
                s.call.end_reason or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def call_text(summary: CallSummary, turns: list[TurnRow]) -> str:
    call = summary.call
    duration = summary.duration_s
    lines = [
        f"call {call.call_id} ({call.transport}) {_who(summary)}",
        f"  started {_when(call.started_at_s)} UTC, ended {_when(call.ended_at_s)}"
        + ("" if duration is None else f" ({duration:.1f}s)")
        + f", reason: {call.end_reason or '-'}",
        f"  turns {summary.turns}, barge-ins {call.barge_ins}, agent errors {call.agent_errors}"
        + (f", dtmf {call.dtmf}" if call.dtmf else ""),
    ]
    if call.recording_path:
        lines.append(f"  recording {call.recording_path}")
    for t in turns:
        head = (
            f"turn {t.turn_id} at {_when(t.at_s)}: speech {_ms(t.user_speech_ms)} ms, "
            f"latency {_ms(t.latency_ms)} ms"
        )
        if t.interrupted:
            head += f", interrupted after {_ms(t.heard_ms)} ms heard"
        if t.agent_error:
            head += f", agent error {t.agent_error}"
        lines.append(head)
        if t.user_text:
            lines.append(f"  user:      {t.user_text}")
        if t.assistant_text:
            lines.append(f"  assistant: {t.assistant_text}")
    return "\n".join(lines)
