"""The ``auth`` message (spec §3.1) as the firmware reads it, and ArduinoJson's number rules.

The firmware reads four fields with ``as<T>()``: a missing or mistyped field silently becomes
0 / 0.0 / false on the device, so the emulator reports it instead of guessing.
"""

from __future__ import annotations

from typing import Any

#: the four fields the firmware reads, with the JSON types it needs (bool excluded from numbers)
AUTH_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "volume_control": (int,),
    "pitch_factor": (int, float),
    "is_ota": (bool,),
    "is_reset": (bool,),
}
#: our server clamps volume to this range (spec: "clamped to 0-100 (ours)")
VOLUME_RANGE = (0, 100)
#: personas may set a pitch in this range; 1.0 bypasses the pitch shifter
PITCH_RANGE = (0.5, 2.0)


def is_json_int(value: object) -> bool:
    """A JSON integer (Python's bool is an int, but ``true`` is not an integer in JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


def outside(value: object, bounds: tuple[float, float]) -> bool:
    """True for a JSON number outside ``bounds``; other values are reported elsewhere."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not bounds[0] <= value <= bounds[1]


def as_int(value: object) -> int:
    """ArduinoJson's ``as<int>()``: numbers truncate, anything else reads as 0."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return 0


def as_float(value: object) -> float:
    """ArduinoJson's ``as<float>()``: anything but a number reads as 0.0."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0


def auth_problems(message: dict[str, Any]) -> list[str]:
    """What is wrong with an ``auth`` message for the current firmware (empty: nothing)."""
    problems: list[str] = []
    for name, types in AUTH_FIELD_TYPES.items():
        if name not in message:
            problems.append(f"missing {name}")
            continue
        value = message[name]
        is_bool = isinstance(value, bool)
        if not isinstance(value, types) or (is_bool and bool not in types):
            problems.append(f"{name} has the wrong JSON type: {value!r}")
    problems.extend(_range_problems(message))
    return problems


def _range_problems(message: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    volume = message.get("volume_control")
    if outside(volume, VOLUME_RANGE):
        problems.append(f"volume_control out of range: {volume}")
    pitch = message.get("pitch_factor")
    if outside(pitch, PITCH_RANGE):
        problems.append(f"pitch_factor out of range: {pitch}")
    if message.get("is_reset") is True:
        problems.append("is_reset is true (the device reboots; spec: always false)")
    return problems
