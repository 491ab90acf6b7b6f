"""``bridge calls``: the call records as a table, or as JSON for scripts."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bridge.call_records.model import CallDetail, CallSummary, ToolCallRow, TurnRow

#: a tool call's result and arguments are cut to this many characters in the text report
SHOWN_CHARS = 120


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _who(summary: CallSummary) -> str:
    call = summary.call
    return f"{call.caller} -> {call.callee}" if call.callee else call.caller


def _shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """One line of at most ``limit`` characters (and "..."): a report line, not the data."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def summary_dict(summary: CallSummary) -> dict[str, Any]:
    duration = summary.duration_s
    return {
        **asdict(summary.call),
        "twilio_status": summary.twilio_status,
        "twilio_duration_s": summary.twilio_duration_s,
        "answered_by": summary.answered_by,
        "turns": summary.turns,
        "duration_s": None if duration is None else round(duration, 3),
    }


def calls_json(summaries: list[CallSummary]) -> str:
    return json.dumps([summary_dict(s) for s in summaries], indent=2)


def call_json(detail: CallDetail) -> str:
    """Everything stored about the call, nothing shortened."""
    return json.dumps(
        {
            **summary_dict(detail.summary),
            "turn_rows": [asdict(t) for t in detail.turns],
            "tool_calls": [asdict(c) for c in detail.tool_calls],
        },
        indent=2,
    )


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
                s.call.end_reason or s.twilio_status or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _call_lines(summary: CallSummary) -> list[str]:
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
    if summary.twilio_status or summary.twilio_duration_s is not None:
        twilio = f"  twilio status {summary.twilio_status or '-'}"
        if summary.twilio_duration_s is not None:
            twilio += f", duration {summary.twilio_duration_s:.0f}s"
        lines.append(twilio)
    if summary.answered_by:
        lines.append(f"  answered by {summary.answered_by}")
    if call.transferred_to:
        lines.append(f"  transferred to {call.transferred_to}")
    if call.recording_path:
        lines.append(f"  recording {call.recording_path}")
    return lines


def _turn_lines(turn_id: int, turn: TurnRow | None) -> list[str]:
    if turn is None:  # tool calls of a turn whose row is gone (or was never written)
        return [f"turn {turn_id}: (no turn record)"]
    head = (
        f"turn {turn.turn_id} at {_when(turn.at_s)}: speech {_ms(turn.user_speech_ms)} ms, "
        f"latency {_ms(turn.latency_ms)} ms"
    )
    if turn.interrupted:
        head += f", interrupted after {_ms(turn.heard_ms)} ms heard"
    if turn.agent_error:
        head += f", agent error {turn.agent_error}"
    lines = [head]
    if turn.dtmf:
        lines.append(f"  keypad:    {turn.dtmf}")
    if turn.user_text:
        lines.append(f"  user:      {turn.user_text}")
    if turn.assistant_text:
        lines.append(f"  assistant: {turn.assistant_text}")
    return lines


def tool_call_line(tool: ToolCallRow) -> str:
    """``tool order_status {"order_id": "42"} 312 ms -> {"status": "shipped"...}``."""
    line = f"  tool {tool.name} {_shorten(tool.arguments)}"
    if tool.duration_ms is None:
        return line + " (no end recorded)"
    line += f" {tool.duration_ms:.0f} ms"
    if tool.error:
        return line + f" error: {_shorten(tool.error)}"
    return line + f" -> {_shorten(tool.result)}"


def call_text(detail: CallDetail) -> str:
    lines = _call_lines(detail.summary)
    turns = {t.turn_id: t for t in detail.turns}
    tools: dict[int, list[ToolCallRow]] = {}
    for tool in detail.tool_calls:
        tools.setdefault(tool.turn_id, []).append(tool)
    for turn_id in sorted(turns.keys() | tools.keys()):
        lines.extend(_turn_lines(turn_id, turns.get(turn_id)))
        for tool in tools.get(turn_id, []):
            lines.append(tool_call_line(tool))
            if tool.speech_cancelled:
                lines.append("    (answer not spoken: the caller interrupted)")
    return "\n".join(lines)
