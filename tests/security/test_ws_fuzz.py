"""Fuzzing the websocket message format: the parser either gives a Request or a
documented ProtocolError, and a live socket fed hostile frames answers each with a
client error (never ``server.error``) and stays usable."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from qa_service.hub import protocol
from qa_service.security import Signer

from ..support import WsClient, start_server, ws_client

MAX_BYTES = 64 * 1024
PARSER_CODES = {
    "frame.binary",
    "frame.empty",
    "frame.too_large",
    "message.malformed",
    "message.invalid",
    "message.invalid_id",
    "message.missing_type",
    "message.invalid_payload",
    "message.too_deep",
    "message.number_too_large",
}
FUZZ = hsettings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ── strategies ─────────────────────────────────────────────────────────────
ANY_CHAR = st.characters(exclude_categories=[])  # lone surrogates, controls, unassigned, everything
WEIRD_CHARS = st.sampled_from(
    ["\u200b", "\u202e", "\ufeff", "\u0301", "\x00", "\x7f", "\u2028", "\ud800", "\udfff", "\U0010ffff", "\ufffe"]
)
WEIRD_TEXT = st.text(ANY_CHAR | WEIRD_CHARS, max_size=40)
DIGITS = st.integers(1, 6000).map(lambda n: "9" * n)
HUGE_INTS = st.integers(min_value=-(2**200), max_value=2**200) | st.sampled_from([2**31, 2**63, 2**64, -(2**63) - 1])
LEAVES = st.none() | st.booleans() | HUGE_INTS | st.floats() | WEIRD_TEXT
JSON_VALUES = st.recursive(
    LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(WEIRD_TEXT, inner, max_size=4), max_leaves=25
)
TYPES = (
    st.sampled_from(["hello", "ping", "snapshot", "question.ask", "host.next", "host.on_air", "reply", "__proto__", ""])
    | WEIRD_TEXT
)
IDS = st.none() | WEIRD_TEXT | st.text(min_size=60, max_size=70) | HUGE_INTS | st.lists(st.integers(), max_size=2)


def _dumps(value: object, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)  # NaN and Infinity come out as such: not JSON


def _nest(depth: int, inner: str, kind: str) -> str:
    if kind == "list":
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + inner + "}" * depth


ENVELOPES = st.builds(
    lambda t, i, p, a: _dumps({"type": t, "id": i, "payload": p}, a), TYPES, IDS, JSON_VALUES, st.booleans()
)
TEXTS = st.one_of(
    st.text(ANY_CHAR | WEIRD_CHARS, max_size=200),
    st.builds(_dumps, JSON_VALUES, st.booleans()),
    ENVELOPES,
    ENVELOPES.flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),  # cut short
    st.builds(
        lambda d, k, t: '{"type": "ping", "id": "x", "payload": {"n": ' + _nest(d, t, k) + "}}",
        st.integers(0, 5000),
        st.sampled_from(["list", "object"]),
        st.sampled_from(["1", "[]", "{}", '"s"', "null"]),
    ),
    st.builds(
        lambda sign, digits, tail: '{"type":"ping","payload":{"n":' + sign + digits + tail + "}}",
        st.sampled_from(["", "-"]),
        DIGITS,
        st.sampled_from(["", ".5", "e999", "e-999", ".0e5"]),
    ),
    st.builds(lambda n: '{"type":"ping","id":"' + "\\ud800" * n + '"}', st.integers(1, 3)),
    st.builds(lambda c: '{"type":"ping","payload":{"x":' + c + "}}", st.sampled_from(["NaN", "Infinity", "-Infinity"])),
)
MESSAGES = st.one_of(
    TEXTS.map(lambda t: {"type": "websocket.receive", "text": t}),
    st.binary(max_size=200).map(lambda b: {"type": "websocket.receive", "bytes": b}),
    st.just({"type": "websocket.receive"}),
    st.just({"type": "websocket.receive", "text": None, "bytes": None}),
)


# ── the parser alone ───────────────────────────────────────────────────────
def _check_parse(message: dict[str, Any]) -> None:
    try:
        req = protocol.parse(message, MAX_BYTES)
    except protocol.ProtocolError as exc:
        assert exc.code in PARSER_CODES, exc.code
        reply = protocol.error(exc.request_id, exc.code, exc.message, exc.details)
    else:
        assert isinstance(req, protocol.Request)
        assert isinstance(req.type, str) and req.type
        assert isinstance(req.payload, dict)
        assert req.id is None or (isinstance(req.id, str) and len(req.id) <= protocol.MAX_ID_CHARS)
        reply = protocol.ok(req.id, req.payload)  # echoing anything it holds must still be sendable
    protocol.dumps(reply).encode("utf-8")  # a reply frame is always valid UTF-8


@FUZZ
@given(MESSAGES)
def test_parse_gives_a_request_or_a_protocol_error(message: dict[str, Any]) -> None:
    _check_parse(message)


@FUZZ
@given(JSON_VALUES, st.booleans())
def test_parse_handles_any_json_value(value: object, ascii_only: bool) -> None:
    _check_parse({"type": "websocket.receive", "text": _dumps(value, ascii_only)})
    _check_parse({"type": "websocket.receive", "text": _dumps({"type": "ping", "payload": value}, ascii_only)})


@FUZZ
@given(st.binary(max_size=300) | TEXTS.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_rest_bodies_parse_or_refuse(body: bytes) -> None:
    """REST bodies (api/common.json_body) go through the same parser."""
    try:
        protocol.load_json(body)
    except protocol.ProtocolError as exc:
        assert exc.code in {"message.malformed", "message.too_deep", "message.number_too_large"}


# ── a live server ──────────────────────────────────────────────────────────
def _frame(type_: object, payload: object = None, rid: object = "f", **extra: object) -> str:
    return json.dumps({"type": type_, "id": rid, "payload": {} if payload is None else payload} | extra)


HOSTILE_NUMBERS: list[object] = [2**64, 2**31, -(2**63), 0, -1, 1.5, 1e308, True, "1", None, [], {"$gt": 0}]
HOSTILE_STRINGS: list[object] = [
    "\u202eevil",
    "\u200b",
    "a" * 5000,
    "\x00",
    "\u2028x",
    "en\n",
    "xx",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    5,
    ["en"],
    {"$ne": None},
]
COMMON_FRAMES: list[str | bytes] = [
    b"\x00\xff\x81",
    b"",
    "",
    "null",
    "[]",
    '"\\ud800"',
    "1e999",
    "{",
    '{"type": "ping", "id": "\\ud800"}',
    '{"type": "ping", "id": "\\u202e\\u0000"}',
    '{"type": "ping", "id": "' + "x" * 65 + '"}',
    '{"type": "ping", "id": 12}',
    '{"id": "x"}',
    '{"type": "", "id": "x"}',
    '{"type": "ping", "payload": []}',
    '{"type": "ping", "payload": {"x": NaN}}',
    '{"type": "ping", "payload": {"x": ' + "9" * 5000 + "}}",
    '{"type": "ping", "payload": {"x": -' + "1" * 25 + "}}",
    '{"type": "ping", "payload": ' + "[" * 3000 + "]" * 3000 + "}",
    '{"type": "ping", "payload": ' + '{"a":' * 40 + "1" + "}" * 40 + "}",
    '{"type": "ping", "payload": {"__proto__": {"admin": true}}}',
    _frame("hello", {"resume": {"viewer:x": 2**64, "schedule": -1}}),
    _frame("\u0000"),
    _frame("question.ask\u200b"),
    _frame("t" * 3000),
    _frame("snapshot", {"junk": [1, 2, 3]}),
]


def _hostile_viewer_frames(speaker: int, rng: random.Random) -> list[str | bytes]:
    frames = list(COMMON_FRAMES)
    good = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": "A question?", "language": "en"}
    frames += [_frame("question.ask", good | {"client_id": uuid.uuid4().hex, "speaker_id": v}) for v in HOSTILE_NUMBERS]
    for key in ("text", "language", "display_name", "country", "client_id"):
        frames += [_frame("question.ask", good | {"client_id": uuid.uuid4().hex, key: v}) for v in HOSTILE_STRINGS]
    # And some random mixtures of the above, reproducibly.
    keys = ["client_id", "speaker_id", "text", "language", "display_name", "country", "viewer_token", "resume"]
    for _ in range(60):
        payload = {k: rng.choice(HOSTILE_NUMBERS + HOSTILE_STRINGS) for k in rng.sample(keys, rng.randint(1, 6))}
        frames.append(_frame(rng.choice(["question.ask", "hello", "snapshot", "ping", "host.on_air"]), payload))
    return frames


def _hostile_host_frames(rng: random.Random) -> list[str | bytes]:
    frames = list(COMMON_FRAMES)
    for action in ("host.on_air", "host.answer", "host.skip"):
        frames += [_frame(action, {"question_id": v}) for v in HOSTILE_NUMBERS + HOSTILE_STRINGS]
        frames += [_frame(action, {"question_id": 1, "version": v}) for v in HOSTILE_NUMBERS]
    frames += [_frame("host.next", {"question_id": 2**64}), _frame("host.next", payload=[]), _frame("host.next")]
    for _ in range(30):
        payload = {k: rng.choice(HOSTILE_NUMBERS + HOSTILE_STRINGS) for k in ("question_id", "version")}
        frames.append(_frame(rng.choice(["host.on_air", "host.answer", "host.skip", "host.next"]), payload))
    return frames


def _feed(c: WsClient, frames: list[str | bytes]) -> list[dict[str, Any]]:
    """Send each frame and collect its one reply."""
    replies = []
    for frame in frames:
        c.send_raw(frame)
        reply = c.next_reply()
        replies.append(reply)
        assert (reply.get("error") or {}).get("code") != "server.error", (frame[:80], reply)
    return replies


@pytest.mark.integration
def test_hostile_frames_never_get_a_server_error(settings_factory, settings, sample) -> None:
    rng = random.Random(20240611)
    speaker = int(sample["speakers"]["moscow"][1].id)
    studio = sample["studios"]["moscow"]
    # Generous limits: every frame reaches the parser and the handlers, none is cut as a flood.
    server = start_server(settings_factory(messages_per_second=10_000, questions_per_minute=10_000))
    try:
        with ws_client(f"{server.ws_base}/ws/viewer") as viewer:
            assert viewer.request("hello")["ok"]
            replies = _feed(viewer, _hostile_viewer_frames(speaker, rng))
            assert any(not r["ok"] for r in replies)
            # Still usable: it answers, and a normal question goes through.
            assert viewer.request("ping")["payload"] == {"pong": True}
            ask = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": "Still there?", "language": "en"}
            assert viewer.request("question.ask", ask)["ok"]
        token = Signer(settings.secret_key).host_token(studio.id, studio.host_token_version)
        with ws_client(f"{server.ws_base}/ws/host?token={token}") as host:
            assert host.request("hello")["ok"]
            _feed(host, _hostile_host_frames(rng))
            assert host.request("ping")["payload"] == {"pong": True}
            assert host.request("snapshot")["ok"]
    finally:
        server.stop()


def test_tokens_that_are_not_even_ascii_are_forged_tokens() -> None:
    # A lone surrogate arrives fine through JSON ("\ud800") but cannot be encoded:
    # the token readers said server.error (with a traceback in the log) before.
    signer = Signer("k" * 40)
    assert signer.read_viewer_token("\ud800") is None
    assert signer.read_viewer_token("é" * 10) is None
    assert signer.read_host_token("\ud800abc") is None
    viewer_id, token = signer.new_viewer()
    assert signer.read_viewer_token(token) == viewer_id  # a real one still reads


@pytest.mark.integration
def test_hello_with_a_surrogate_token_starts_a_new_viewer(server) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        c.send_raw('{"type": "hello", "id": "h", "payload": {"viewer_token": "\\ud800"}}')
        reply = c.next_reply()
        assert reply["ok"], reply
        assert reply["payload"]["viewer_token"] != "\ud800"
