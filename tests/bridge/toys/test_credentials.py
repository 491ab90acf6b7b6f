"""Toy authentication before the 101 (spec §2.3, §8 ES2–ES5, ES9; checklist items 1–7, 39)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from pathlib import Path
from typing import Any

import jwt
import pytest
from starlette.datastructures import Headers

from bridge.toys.credentials import (
    CLOCK_LEEWAY_S,
    METHOD_DEVICE_TOKEN,
    METHOD_INSECURE_DEV,
    METHOD_JWT,
    DeviceAuthenticator,
    DeviceAuthError,
    DeviceIdentity,
    DeviceSettings,
    normalize_mac,
    parse_rssi,
    token_fingerprint,
)

SECRET = "0123456789abcdef" * 4  # 64 bytes: no PyJWT short-key warning even for HS512
OTHER_SECRET = "fedcba9876543210" * 4
NOW_S = 1_800_000_000.0
MAC = "24:0A:C4:12:34:56"
OTHER_MAC = "24:0A:C4:65:43:21"
REVOKED_MAC = "AA:BB:CC:00:11:22"
KITCHEN_TOKEN = "kitchen-secret-0123456789"
ATTIC_TOKEN = "attic-secret-9876543210"
ELATO_CLAIMS: dict[str, Any] = {
    "sub": "user-1",
    "email": "parent@example.com",
    "aud": "authenticated",
    "role": "authenticated",
    "iat": int(NOW_S) - 3600,
}
DEVICES: dict[str, Any] = {
    "devices": [
        {
            "id": "toy-kitchen",
            "token": KITCHEN_TOKEN,
            "mac": MAC,
            "volume": 60,
            "pitch_factor": 1.2,
            "is_ota": True,
            "persona": "pirate",
        },
        {"id": "toy-attic", "token": ATTIC_TOKEN},
    ],
    "users": {
        "user-bound": {"mac": MAC, "volume": 80},
        "user-loud": {"volume": 150, "pitch_factor": 3.0},
        "user-quiet": {"volume": -5, "pitch_factor": 0.1},
    },
    "revoked": {"subs": ["user-9", "toy-attic"], "macs": [REVOKED_MAC]},
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def craft(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token built by hand, for shapes PyJWT refuses to produce."""
    parts = (json.dumps(header).encode(), json.dumps(claims).encode())
    return ".".join([*(b64url(part) for part in parts), b64url(signature)])


def sign_hs256(header: dict[str, Any], payload: bytes) -> str:
    """A correctly signed HS256 token around an arbitrary payload PyJWT would not encode."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def make_jwt(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def write_devices(directory: Path, document: object, name: str = "devices.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def fixed_clock() -> float:
    return NOW_S


@pytest.fixture
def devices_path(tmp_path: Path) -> Path:
    return write_devices(tmp_path, DEVICES)


@pytest.fixture
def auth(devices_path: Path) -> DeviceAuthenticator:
    """JWT secret and devices file both configured, as in production."""
    return DeviceAuthenticator(jwt_secret=SECRET, devices_file=devices_path, clock=fixed_clock)


@pytest.fixture
def jwt_only() -> DeviceAuthenticator:
    return DeviceAuthenticator(jwt_secret=SECRET, clock=fixed_clock)


def rejection(
    authenticator: DeviceAuthenticator,
    headers: dict[str, str],
    query_string: str = "",
    client_ip: str = "203.0.113.7",
) -> DeviceAuthError:
    with pytest.raises(DeviceAuthError) as caught:
        authenticator.authenticate(headers, query_string, client_ip)
    return caught.value


# ----------------------------------------------------------------------------- JWT


def test_elato_token_without_exp_is_accepted(jwt_only: DeviceAuthenticator) -> None:
    token = make_jwt(ELATO_CLAIMS)
    identity = jwt_only.authenticate(bearer(token, **{"X-Wifi-Rssi": "-55"}), "", "203.0.113.7")
    assert identity.sub == "user-1"
    assert identity.email == "parent@example.com"
    assert identity.method == METHOD_JWT
    assert identity.mac is None
    assert identity.rssi_dbm == -55
    assert identity.settings == DeviceSettings()
    assert identity.token_fingerprint == hashlib.sha256(token.encode()).hexdigest()[:8]


def test_token_with_future_exp_is_accepted(jwt_only: DeviceAuthenticator) -> None:
    token = make_jwt({**ELATO_CLAIMS, "exp": int(NOW_S) + 3600})
    assert jwt_only.authenticate(bearer(token)).sub == "user-1"


def test_exp_within_leeway_is_accepted(jwt_only: DeviceAuthenticator) -> None:
    token = make_jwt({**ELATO_CLAIMS, "exp": NOW_S - CLOCK_LEEWAY_S / 2})
    assert jwt_only.authenticate(bearer(token)).sub == "user-1"


def test_email_and_aud_are_optional(jwt_only: DeviceAuthenticator) -> None:
    identity = jwt_only.authenticate(bearer(make_jwt({"sub": "user-2"})))
    assert (identity.sub, identity.email) == ("user-2", None)


def test_aud_list_naming_us_is_accepted(jwt_only: DeviceAuthenticator) -> None:
    token = make_jwt({"sub": "user-2", "aud": ["other", "authenticated"]})
    assert jwt_only.authenticate(bearer(token)).sub == "user-2"


def test_configured_audience_replaces_the_default() -> None:
    custom = DeviceAuthenticator(jwt_secret=SECRET, audience="toys", clock=fixed_clock)
    assert custom.authenticate(bearer(make_jwt({"sub": "u", "aud": "toys"}))).sub == "u"
    assert rejection(custom, bearer(make_jwt(ELATO_CLAIMS))).reason == "token audience mismatch"


def test_exp_is_checked_against_the_injected_clock() -> None:
    now_s = [NOW_S]
    authenticator = DeviceAuthenticator(jwt_secret=SECRET, clock=lambda: now_s[0])
    token = make_jwt({"sub": "u", "exp": NOW_S + 60})
    assert authenticator.authenticate(bearer(token)).sub == "u"
    now_s[0] += 60 + CLOCK_LEEWAY_S + 1
    assert rejection(authenticator, bearer(token)).reason == "token expired"


RSA_LOOKING = craft({"alg": "RS256", "typ": "JWT"}, {"sub": "user-1"}, b"\x01" * 256)
JWT_REJECTIONS: dict[str, tuple[str, str]] = {
    "expired": (make_jwt({**ELATO_CLAIMS, "exp": int(NOW_S) - 3600}), "token expired"),
    "wrong secret": (make_jwt(ELATO_CLAIMS, OTHER_SECRET), "invalid token signature"),
    "alg none": (craft({"alg": "none", "typ": "JWT"}, ELATO_CLAIMS), "token algorithm not allowed"),
    "alg None": (craft({"alg": "None"}, ELATO_CLAIMS), "token algorithm not allowed"),
    "HS512": (make_jwt(ELATO_CLAIMS, algorithm="HS512"), "token algorithm not allowed"),
    "HS384": (make_jwt(ELATO_CLAIMS, algorithm="HS384"), "token algorithm not allowed"),
    "RS256": (RSA_LOOKING, "token algorithm not allowed"),
    "missing sub": (make_jwt({"email": "a@b.c", "aud": "authenticated"}), "token has no sub"),
    "empty sub": (make_jwt({**ELATO_CLAIMS, "sub": ""}), "token has no sub"),
    "blank sub": (make_jwt({**ELATO_CLAIMS, "sub": "  "}), "token has no sub"),
    "numeric sub": (make_jwt({**ELATO_CLAIMS, "sub": 42}), "token has no sub"),
    "bad aud": (make_jwt({**ELATO_CLAIMS, "aud": "anon"}), "token audience mismatch"),
    "aud list without us": (make_jwt({"sub": "u", "aud": ["anon"]}), "token audience mismatch"),
    "aud null": (make_jwt({"sub": "u", "aud": None}), "token audience mismatch"),
    "nbf in future": (make_jwt({"sub": "u", "nbf": NOW_S + 3600}), "token nbf is in the future"),
    "iat in future": (make_jwt({"sub": "u", "iat": NOW_S + 3600}), "token iat is in the future"),
    "exp not a number": (make_jwt({"sub": "u", "exp": "never"}), "token exp claim is not a number"),
    "exp NaN": (make_jwt({"sub": "u", "exp": float("nan")}), "token exp claim is not a number"),
    "exp bool": (make_jwt({"sub": "u", "exp": True}), "token exp claim is not a number"),
    "garbage": ("not-a-token", "malformed token"),
    "three dots": ("a.b.c", "malformed token"),
    "only dots": ("..", "malformed token"),
    "payload not an object": (sign_hs256({"alg": "HS256"}, b"[]"), "malformed token"),
}


@pytest.mark.parametrize(("token", "reason"), JWT_REJECTIONS.values(), ids=JWT_REJECTIONS.keys())
def test_bad_jwts_are_rejected_with_401(
    jwt_only: DeviceAuthenticator, token: str, reason: str
) -> None:
    error = rejection(jwt_only, bearer(token))
    assert (error.status, error.reason) == (401, reason)
    assert error.token_fingerprint == token_fingerprint(token)
    assert token not in str(error)


# ----------------------------------------------------------------------------- header parsing


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing Authorization header"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization is not a Bearer token"),
        ({"Authorization": "Basic xyz"}, "Authorization is not a Bearer token"),
        ({"Authorization": ""}, "Authorization is not a Bearer token"),
        ({"Authorization": "Bearer"}, "Authorization is not a Bearer token"),
        ({"Authorization": "Bearer a b"}, "Authorization is not a Bearer token"),
        ({"Authorization": "Token abc"}, "Authorization is not a Bearer token"),
        ({"Authorization": "Bearer " + "x" * 9000}, "token too long"),
        ({"X-Device-Mac": MAC}, "missing Authorization header"),
    ],
    ids=["missing", "basic", "basic xyz", "empty", "no token", "two", "token", "long", "mac"],
)
def test_malformed_authorization_is_rejected(
    jwt_only: DeviceAuthenticator, headers: dict[str, str], reason: str
) -> None:
    error = rejection(jwt_only, headers)
    assert (error.status, error.reason) == (401, reason)


@pytest.mark.parametrize("value", ["bearer {}", "BEARER {}", "Bearer  {}", " Bearer {} "])
def test_bearer_scheme_is_case_and_space_tolerant(
    jwt_only: DeviceAuthenticator, value: str
) -> None:
    headers = {"authorization": value.format(make_jwt(ELATO_CLAIMS))}
    assert jwt_only.authenticate(headers).sub == "user-1"


def test_starlette_headers_are_read_case_insensitively(jwt_only: DeviceAuthenticator) -> None:
    token = make_jwt(ELATO_CLAIMS).encode()
    headers = Headers(raw=[(b"authorization", b"Bearer " + token), (b"x-wifi-rssi", b"-60")])
    assert jwt_only.authenticate(headers).rssi_dbm == -60


def test_two_different_authorization_headers_are_rejected(
    jwt_only: DeviceAuthenticator,
) -> None:
    good, other = make_jwt(ELATO_CLAIMS).encode(), make_jwt({"sub": "user-2"}).encode()
    headers = Headers(
        raw=[(b"authorization", b"Bearer " + good), (b"authorization", b"Bearer " + other)]
    )
    with pytest.raises(DeviceAuthError, match="not a Bearer token"):
        jwt_only.authenticate(headers)


@pytest.mark.parametrize(
    "query_string", ["token={}", "access_token={}", "JWT={}", "v=1&auth={}", "to%6Ben={}"]
)
def test_token_only_in_query_string_is_rejected(
    jwt_only: DeviceAuthenticator, query_string: str
) -> None:
    token = make_jwt(ELATO_CLAIMS)
    error = rejection(jwt_only, {}, query_string.format(token))
    assert error.status == 401
    assert "query string is not accepted" in error.reason
    assert token not in str(error)


def test_query_string_token_is_ignored_next_to_a_header(jwt_only: DeviceAuthenticator) -> None:
    query_token = make_jwt({"sub": "someone-else"})
    identity = jwt_only.authenticate(bearer(make_jwt(ELATO_CLAIMS)), f"token={query_token}")
    assert identity.sub == "user-1"


# ----------------------------------------------------------------------------- MAC and RSSI


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("24:0A:C4:12:34:56", MAC),
        ("24:0a:c4:12:34:56", MAC),
        ("24-0A-C4-12-34-56", MAC),
        ("240AC4123456", MAC),
        (" 24:0A:C4:12:34:56 ", MAC),
        ("24:0A:C4:12:34", None),
        ("24:0A-C4:12:34:56", None),
        ("24:0A:C4:12:34:5G", None),
        ("24:0A:C4:12:34:56:78", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_mac(raw: str | None, expected: str | None) -> None:
    assert normalize_mac(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("-55", -55),
        (" -55 ", -55),
        ("0", 0),
        ("-127", -127),
        ("-128", None),
        ("5", None),
        ("abc", None),
        ("-55.5", None),
        ("-5_5", None),
        ("-٥٥", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_rssi(raw: str | None, expected: int | None) -> None:
    assert parse_rssi(raw) == expected


def test_unparseable_rssi_is_accepted_and_ignored(jwt_only: DeviceAuthenticator) -> None:
    headers = bearer(make_jwt(ELATO_CLAIMS), **{"X-Wifi-Rssi": "abc"})
    assert jwt_only.authenticate(headers).rssi_dbm is None


def test_mac_header_is_normalised_into_the_identity(jwt_only: DeviceAuthenticator) -> None:
    headers = bearer(make_jwt(ELATO_CLAIMS), **{"X-Device-Mac": "24-0a-c4-12-34-56"})
    assert jwt_only.authenticate(headers).mac == MAC


def test_malformed_mac_without_binding_is_treated_as_absent(
    jwt_only: DeviceAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    headers = bearer(make_jwt(ELATO_CLAIMS), **{"X-Device-Mac": "not-a-mac"})
    with caplog.at_level(logging.INFO, logger="bridge.toys.credentials"):
        identity = jwt_only.authenticate(headers)
    assert identity.mac is None
    assert "malformed X-Device-Mac" in caplog.text


def test_user_binding_accepts_the_bound_mac_in_any_spelling(auth: DeviceAuthenticator) -> None:
    headers = bearer(make_jwt({"sub": "user-bound"}), **{"X-Device-Mac": "240ac4123456"})
    identity = auth.authenticate(headers)
    assert (identity.mac, identity.settings.volume) == (MAC, 80)


def test_user_binding_accepts_an_absent_mac_header(auth: DeviceAuthenticator) -> None:
    assert auth.authenticate(bearer(make_jwt({"sub": "user-bound"}))).mac is None


@pytest.mark.parametrize(
    ("token", "mac", "reason"),
    [
        (make_jwt({"sub": "user-bound"}), OTHER_MAC, "does not match the registered MAC"),
        (KITCHEN_TOKEN, OTHER_MAC, "does not match the registered MAC"),
        (make_jwt({"sub": "user-bound"}), "garbage", "malformed X-Device-Mac"),
        (KITCHEN_TOKEN, "24:0A:C4", "malformed X-Device-Mac"),
    ],
    ids=["user mismatch", "device mismatch", "user malformed", "device malformed"],
)
def test_mac_binding_violations_are_rejected(
    auth: DeviceAuthenticator, token: str, mac: str, reason: str
) -> None:
    error = rejection(auth, bearer(token, **{"X-Device-Mac": mac}))
    assert error.status == 401
    assert reason in error.reason


def test_require_mac_rejects_absent_and_malformed_headers() -> None:
    strict = DeviceAuthenticator(jwt_secret=SECRET, require_mac=True, clock=fixed_clock)
    token = make_jwt(ELATO_CLAIMS)
    assert rejection(strict, bearer(token)).reason == "X-Device-Mac required"
    malformed = bearer(token, **{"X-Device-Mac": "nope"})
    assert rejection(strict, malformed).reason == "X-Device-Mac required"
    assert strict.authenticate(bearer(token, **{"X-Device-Mac": MAC})).mac == MAC


# ----------------------------------------------------------------------------- devices file


def test_device_token_is_accepted_with_its_settings(auth: DeviceAuthenticator) -> None:
    identity = auth.authenticate(bearer(KITCHEN_TOKEN, **{"X-Device-Mac": MAC}))
    assert identity.sub == "toy-kitchen"
    assert identity.method == METHOD_DEVICE_TOKEN
    assert identity.email is None
    assert identity.settings == DeviceSettings(60, 1.2, True, "pirate")
    assert identity.token_fingerprint == token_fingerprint(KITCHEN_TOKEN)


def test_device_tokens_work_without_a_jwt_secret(devices_path: Path) -> None:
    devices_only = DeviceAuthenticator(jwt_secret=None, devices_file=devices_path)
    assert devices_only.configured
    assert devices_only.authenticate(bearer(KITCHEN_TOKEN)).sub == "toy-kitchen"
    assert rejection(devices_only, bearer("x" * 24)).reason == "unknown device token"
    assert rejection(devices_only, bearer(make_jwt(ELATO_CLAIMS))).reason == "unknown device token"


def test_unknown_device_token_falls_through_to_the_jwt_check(auth: DeviceAuthenticator) -> None:
    near_miss = KITCHEN_TOKEN[:-1] + "X"
    error = rejection(auth, bearer(near_miss))
    assert error.reason == "malformed token"
    assert near_miss not in str(error)


def test_user_settings_are_clamped(auth: DeviceAuthenticator) -> None:
    loud = auth.authenticate(bearer(make_jwt({"sub": "user-loud"}))).settings
    quiet = auth.authenticate(bearer(make_jwt({"sub": "user-quiet"}))).settings
    assert (loud.volume, loud.pitch_factor) == (100, 2.0)
    assert (quiet.volume, quiet.pitch_factor) == (0, 0.5)


def test_device_settings_clamp_on_construction() -> None:
    assert DeviceSettings(volume=500, pitch_factor=9.0) == DeviceSettings(100, 2.0)
    assert DeviceSettings(volume=-1, pitch_factor=0.0) == DeviceSettings(0, 0.5)
    assert DeviceSettings(pitch_factor=float("nan")).pitch_factor == 1.0


def test_default_settings_fill_what_an_entry_leaves_out(devices_path: Path) -> None:
    defaults = DeviceSettings(volume=40, pitch_factor=1.5, persona="owl")
    authenticator = DeviceAuthenticator(
        jwt_secret=SECRET, devices_file=devices_path, default_settings=defaults
    )
    bound = authenticator.authenticate(bearer(make_jwt({"sub": "user-bound"}))).settings
    stranger = authenticator.authenticate(bearer(make_jwt({"sub": "user-new"}))).settings
    assert bound == DeviceSettings(80, 1.5, False, "owl")
    assert stranger == defaults


@pytest.mark.parametrize(
    ("token", "mac", "reason"),
    [
        (make_jwt({"sub": "user-9"}), None, "identity revoked"),
        (ATTIC_TOKEN, None, "identity revoked"),
        (make_jwt(ELATO_CLAIMS), REVOKED_MAC, "device MAC revoked"),
        (make_jwt(ELATO_CLAIMS), "aa-bb-cc-00-11-22", "device MAC revoked"),
    ],
    ids=["jwt sub", "device id", "mac", "mac other spelling"],
)
def test_revoked_identities_are_rejected(
    auth: DeviceAuthenticator, token: str, mac: str | None, reason: str
) -> None:
    headers = bearer(token) if mac is None else bearer(token, **{"X-Device-Mac": mac})
    assert rejection(auth, headers).reason == reason


def test_revoked_bound_mac_cannot_hide_by_omitting_the_header(tmp_path: Path) -> None:
    document = {
        "users": {"user-bound": {"mac": MAC}},
        "revoked": {"macs": [MAC]},
    }
    authenticator = DeviceAuthenticator(
        jwt_secret=SECRET, devices_file=write_devices(tmp_path, document)
    )
    error = rejection(authenticator, bearer(make_jwt({"sub": "user-bound"})))
    assert error.reason == "device MAC revoked"


def test_reload_applies_a_new_revocation(tmp_path: Path) -> None:
    path = write_devices(tmp_path, {"users": {}})
    authenticator = DeviceAuthenticator(jwt_secret=SECRET, devices_file=path)
    token = make_jwt({"sub": "user-5"})
    assert authenticator.authenticate(bearer(token)).sub == "user-5"
    write_devices(tmp_path, {"revoked": {"subs": ["user-5"]}})
    assert authenticator.authenticate(bearer(token)).sub == "user-5"  # not re-read yet
    authenticator.reload()
    assert rejection(authenticator, bearer(token)).reason == "identity revoked"


def test_reload_of_a_broken_file_raises_and_keeps_the_old_registry(tmp_path: Path) -> None:
    path = write_devices(tmp_path, {"revoked": {"subs": ["user-5"]}})
    authenticator = DeviceAuthenticator(jwt_secret=SECRET, devices_file=path)
    path.write_text("{ broken", encoding="utf-8")
    with pytest.raises(ValueError, match="invalid JSON"):
        authenticator.reload()
    assert rejection(authenticator, bearer(make_jwt({"sub": "user-5"}))).reason == (
        "identity revoked"
    )


def test_reload_picks_up_a_new_device(tmp_path: Path) -> None:
    path = write_devices(tmp_path, {})
    authenticator = DeviceAuthenticator(jwt_secret=None, devices_file=path)
    assert not authenticator.configured
    write_devices(tmp_path, {"devices": [{"id": "toy-new", "token": KITCHEN_TOKEN}]})
    authenticator.reload()
    assert authenticator.configured
    assert authenticator.authenticate(bearer(KITCHEN_TOKEN)).sub == "toy-new"


SHORT_TOKEN = "short-secret"
BAD_FILES: dict[str, tuple[str, str]] = {
    "not JSON": ("{ nope", "invalid JSON"),
    "top level list": ("[]", "must be a JSON object"),
    "unknown section": ('{"revoke": {"subs": ["u"]}}', "unknown key(s) 'revoke'"),
    "duplicate key": ('{"users": {}, "users": {}}', "duplicate key 'users'"),
    "NaN": ('{"users": {"u": {"pitch_factor": NaN}}}', "NaN is not a valid number"),
    "devices not a list": ('{"devices": {}}', "devices: must be a JSON array"),
    "device not an object": ('{"devices": ["x"]}', "devices[0]: must be a JSON object"),
    "device id missing": (
        json.dumps({"devices": [{"token": KITCHEN_TOKEN}]}),
        "devices[0].id: must be a non-empty string",
    ),
    "duplicate id": (
        json.dumps(
            {"devices": [{"id": "a", "token": KITCHEN_TOKEN}, {"id": "a", "token": ATTIC_TOKEN}]}
        ),
        "devices[1].id: duplicate device id 'a'",
    ),
    "duplicate token": (
        json.dumps(
            {"devices": [{"id": "a", "token": KITCHEN_TOKEN}, {"id": "b", "token": KITCHEN_TOKEN}]}
        ),
        "devices[1].token: same token as another device",
    ),
    "short token": (
        json.dumps({"devices": [{"id": "a", "token": SHORT_TOKEN}]}),
        "devices[0].token: must be at least 16 characters",
    ),
    "token with space": (
        json.dumps({"devices": [{"id": "a", "token": "has a space in the token"}]}),
        "devices[0].token: must be a string of visible ASCII",
    ),
    "token not a string": (
        json.dumps({"devices": [{"id": "a", "token": 1234567890123456789}]}),
        "devices[0].token: must be a string",
    ),
    "device unknown key": (
        json.dumps({"devices": [{"id": "a", "token": KITCHEN_TOKEN, "volumn": 3}]}),
        "devices[0]: unknown key(s) 'volumn'",
    ),
    "bad device mac": (
        json.dumps({"devices": [{"id": "a", "token": KITCHEN_TOKEN, "mac": "24:0A"}]}),
        "devices[0].mac: must be a MAC address",
    ),
    "volume string": (
        json.dumps({"users": {"u": {"volume": "60"}}}),
        "users['u'].volume: must be an integer",
    ),
    "volume float": (
        json.dumps({"users": {"u": {"volume": 60.5}}}),
        "users['u'].volume: must be an integer",
    ),
    "pitch bool": (
        json.dumps({"users": {"u": {"pitch_factor": True}}}),
        "users['u'].pitch_factor: must be a number",
    ),
    "is_ota string": (
        json.dumps({"users": {"u": {"is_ota": "yes"}}}),
        "users['u'].is_ota: must be true or false",
    ),
    "persona number": (
        json.dumps({"users": {"u": {"persona": 7}}}),
        "users['u'].persona: must be a string or null",
    ),
    "users a list": ('{"users": []}', "users: must be a JSON object"),
    "revoked subs a string": ('{"revoked": {"subs": "u"}}', "revoked.subs: must be a list"),
    "revoked bad mac": ('{"revoked": {"macs": ["zz"]}}', "revoked.macs[0]: must be a MAC"),
}


@pytest.mark.parametrize(("content", "problem"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_devices_file_fails_at_construction(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "toys.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        DeviceAuthenticator(jwt_secret=SECRET, devices_file=path)
    message = str(caught.value)
    assert str(path) in message
    assert problem in message
    assert KITCHEN_TOKEN not in message
    assert SHORT_TOKEN not in message


def test_missing_devices_file_fails_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ValueError, match=re.escape(f"devices file {path}: cannot read it")):
        DeviceAuthenticator(jwt_secret=SECRET, devices_file=path)


def test_non_utf8_devices_file_fails_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"users": {"\xe9": {}}}')
    with pytest.raises(ValueError, match="not valid UTF-8"):
        DeviceAuthenticator(jwt_secret=SECRET, devices_file=path)


# ----------------------------------------------------------------------------- configuration


def test_short_jwt_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes") as caught:
        DeviceAuthenticator(jwt_secret="too-short-secret")
    assert "too-short-secret" not in str(caught.value)


def test_empty_settings_values_count_as_unset() -> None:
    authenticator = DeviceAuthenticator(jwt_secret="", devices_file="")
    assert not authenticator.configured


def test_devices_file_without_devices_is_not_configured(tmp_path: Path) -> None:
    path = write_devices(tmp_path, {"users": {"u": {}}, "revoked": {"subs": ["x"]}})
    assert not DeviceAuthenticator(jwt_secret=None, devices_file=path).configured
    assert DeviceAuthenticator(jwt_secret=SECRET, devices_file=path).configured


def test_no_credentials_and_no_dev_flag_rejects_everything() -> None:
    closed = DeviceAuthenticator(jwt_secret=None)
    assert not closed.configured
    for client_ip in ("127.0.0.1", "10.0.0.5", "8.8.8.8"):
        error = rejection(closed, bearer(make_jwt(ELATO_CLAIMS)), client_ip=client_ip)
        assert (error.status, error.reason) == (401, "no device credentials configured")


# ----------------------------------------------------------------------------- insecure-dev


@pytest.fixture
def insecure() -> DeviceAuthenticator:
    return DeviceAuthenticator(jwt_secret=None, allow_insecure_dev=True)


@pytest.mark.parametrize("client_ip", ["127.0.0.1", "10.0.0.5", "192.168.1.20", "::1", "fd00::5"])
def test_insecure_dev_accepts_private_sources(
    insecure: DeviceAuthenticator, client_ip: str
) -> None:
    identity = insecure.authenticate({}, "", client_ip)
    assert identity.method == METHOD_INSECURE_DEV
    assert identity.sub == f"dev-{client_ip}"
    assert identity.token_fingerprint == ""


def test_insecure_dev_names_the_toy_by_its_mac(insecure: DeviceAuthenticator) -> None:
    headers = {"X-Device-Mac": "24:0a:c4:12:34:56", "X-Wifi-Rssi": "-70"}
    identity = insecure.authenticate(headers, "", "10.0.0.5")
    assert (identity.sub, identity.mac, identity.rssi_dbm) == (f"dev-{MAC}", MAC, -70)


@pytest.mark.parametrize("client_ip", ["8.8.8.8", "::ffff:8.8.8.8", "2001:4860::8888", "", "x"])
def test_insecure_dev_rejects_public_or_unknown_sources(
    insecure: DeviceAuthenticator, client_ip: str
) -> None:
    error = rejection(insecure, {}, client_ip=client_ip)
    assert (error.status, error.reason) == (
        401,
        "insecure-dev mode accepts private source addresses only",
    )


def test_insecure_dev_flag_is_ignored_once_credentials_exist() -> None:
    authenticator = DeviceAuthenticator(jwt_secret=SECRET, allow_insecure_dev=True)
    assert rejection(authenticator, {}, client_ip="127.0.0.1").reason == (
        "missing Authorization header"
    )


def test_emptying_the_devices_file_never_opens_insecure_dev(tmp_path: Path) -> None:
    path = write_devices(tmp_path, {"devices": [{"id": "toy", "token": KITCHEN_TOKEN}]})
    authenticator = DeviceAuthenticator(jwt_secret=None, devices_file=path, allow_insecure_dev=True)
    write_devices(tmp_path, {})
    authenticator.reload()
    assert not authenticator.configured
    error = rejection(authenticator, {}, client_ip="127.0.0.1")
    assert error.reason == "no device credentials configured"


def test_insecure_dev_ends_once_a_device_is_added(tmp_path: Path) -> None:
    path = write_devices(tmp_path, {})
    authenticator = DeviceAuthenticator(jwt_secret=None, devices_file=path, allow_insecure_dev=True)
    assert authenticator.authenticate({}, "", "127.0.0.1").method == METHOD_INSECURE_DEV
    write_devices(tmp_path, {"devices": [{"id": "toy", "token": KITCHEN_TOKEN}]})
    authenticator.reload()
    error = rejection(authenticator, {}, client_ip="127.0.0.1")
    assert error.reason == "missing Authorization header"


def test_insecure_dev_logs_a_warning_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bridge.toys.credentials"):
        DeviceAuthenticator(jwt_secret=None, allow_insecure_dev=True)
    assert "insecure-dev" in caplog.text


# ----------------------------------------------------------------------------- no leaks


def leak_cases(devices_path: Path) -> list[tuple[DeviceAuthenticator, dict[str, str], str]]:
    """Every kind of rejection that sees a token, with the token it saw."""
    full = DeviceAuthenticator(jwt_secret=SECRET, devices_file=devices_path, clock=fixed_clock)
    strict = DeviceAuthenticator(jwt_secret=SECRET, require_mac=True, clock=fixed_clock)
    tokens = [token for token, _ in JWT_REJECTIONS.values()]
    cases = [(full, bearer(token), token) for token in tokens]
    cases += [
        (full, bearer(ATTIC_TOKEN), ATTIC_TOKEN),
        (full, bearer(KITCHEN_TOKEN, **{"X-Device-Mac": OTHER_MAC}), KITCHEN_TOKEN),
        (full, bearer(KITCHEN_TOKEN, **{"X-Device-Mac": "bad"}), KITCHEN_TOKEN),
        (full, bearer(KITCHEN_TOKEN[:-1] + "X"), KITCHEN_TOKEN[:-1] + "X"),
        (strict, bearer(make_jwt(ELATO_CLAIMS)), make_jwt(ELATO_CLAIMS)),
    ]
    return cases


def test_no_rejection_reveals_the_token_or_the_secret(
    devices_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for authenticator, headers, token in leak_cases(devices_path):
        error = rejection(authenticator, headers)
        assert error.status == 401
        assert re.fullmatch(r"[0-9a-f]{8}", error.token_fingerprint or "")
        for text in (str(error), error.reason, repr(error)):
            assert token not in text
            assert SECRET not in text
    assert KITCHEN_TOKEN not in caplog.text
    assert SECRET not in caplog.text


def test_fingerprint_is_eight_hex_chars_of_sha256() -> None:
    fingerprint = token_fingerprint(KITCHEN_TOKEN)
    assert re.fullmatch(r"[0-9a-f]{8}", fingerprint)
    assert hmac.compare_digest(fingerprint, hashlib.sha256(KITCHEN_TOKEN.encode()).hexdigest()[:8])


# ----------------------------------------------------------------------------- identity


def make_identity(sub: str, mac: str | None) -> DeviceIdentity:
    return DeviceIdentity(sub, None, mac, None, METHOD_JWT, DeviceSettings(), "0" * 8)


def test_session_key_is_sub_without_a_mac() -> None:
    assert make_identity("user-1", None).session_key == "user-1"


def test_session_key_adds_the_mac_when_present() -> None:
    keys = {make_identity("user-1", mac).session_key for mac in (None, MAC, OTHER_MAC)}
    assert len(keys) == 3
    assert make_identity("user-1", MAC).session_key == f"user-1|{MAC}"


def test_same_toy_reconnecting_gets_the_same_session_key(auth: DeviceAuthenticator) -> None:
    headers = bearer(make_jwt(ELATO_CLAIMS), **{"X-Device-Mac": MAC})
    keys = {auth.authenticate(headers).session_key for _ in range(2)}
    assert keys == {f"user-1|{MAC}"}


def test_auth_error_defaults_to_401() -> None:
    error = DeviceAuthError("nope")
    assert (error.status, error.reason, str(error), error.token_fingerprint) == (
        401,
        "nope",
        "nope",
        None,
    )
    assert DeviceAuthError("slow down", status=429).status == 429
