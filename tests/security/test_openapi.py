"""The REST API against its OpenAPI document (qa_service/api/openapi.py): the document
describes every route and nothing else, and schemathesis fuzzes every operation on a
real server, logged in as a moderator: no 5xx, only documented status codes and content
types, bodies as documented, schema-violating input refused, authentication enforced.

QA_FUZZ_SEED=random explores with a new seed each run (the default seed keeps CI repeatable);
a failure prints the seed and a curl line to reproduce it."""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
from starlette.routing import Route

from qa_service.api.openapi import NOT_OPERATIONS, document, drift, openapi_path
from qa_service.services import questions

from ..conftest import MOD_PASSWORD
from ..support import SECOND

pytestmark = pytest.mark.integration

# Generated cases per operation and phase: the fuzz run stays near a minute per database on 2 cores.
MAX_EXAMPLES = 30
SEED = os.environ.get("QA_FUZZ_SEED", "20250601")
# Logging in would replace the moderator's session and logging out would end it for every
# later case: these two run without it.
ANONYMOUS = {"/api/login", "/api/logout"}


def test_the_document_is_valid_openapi_3_1() -> None:
    errors = [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in OPENAPI_31_VALIDATOR.iter_errors(document())
    ]
    assert errors == []


def test_every_route_is_documented_and_every_operation_is_routed(settings_factory) -> None:
    from qa_service.app import create_app

    app = create_app(settings_factory())  # touches nothing until it starts
    undocumented, unrouted = drift(app.routes)
    assert undocumented == set(), "routes missing from qa_service/api/openapi.py"
    assert unrouted == set(), "operations documented in qa_service/api/openapi.py that the app does not serve"
    skipped = {openapi_path(r.path) for r in app.routes if isinstance(r, Route) and r.path in NOT_OPERATIONS}
    assert skipped == NOT_OPERATIONS  # the exclusions name real routes, not stale ones


def test_the_server_serves_this_document(server) -> None:
    assert httpx.get(f"{server.base}/openapi.json").json() == document()


# ── a logged-in moderator on a server with questions in several states ─────
def _seed(ctx: Any, event_id: int, sample: dict[str, Any]) -> list[int]:
    """Questions 1-8: pending, on air, queued, queued, rejected, pending…, so small
    generated ids (and the documented examples) reach real rows."""
    speaker = sample["speakers"]["moscow"][1].id
    ids = []
    for n in range(8):
        payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": f"Question {n}?", "language": "en"}
        ids.append(int(questions.ask(ctx, event_id, f"viewer-{n:04d}", payload).question["id"]))
    for qid, action in zip(ids[1:5], ["approve", "approve", "approve", "reject"], strict=True):
        questions.moderate(ctx, event_id, qid, action, "mod2", expected_version=1, reason="off_topic")
    questions.moderate(ctx, event_id, ids[1], "on_air", "mod2", expected_version=None)
    return ids


@pytest.fixture
def staff(server, ctx, event_id, sample) -> dict[str, Any]:
    """A moderator's session cookie and CSRF token, passed explicitly with each case,
    so schemathesis knows them for the operation's credentials (and drops them to
    check that the operation then refuses)."""
    _seed(ctx, event_id, sample)
    r = httpx.post(f"{server.base}/api/login", json={"username": "mod1", "password": MOD_PASSWORD})
    assert r.status_code == 200, r.text
    return {"cookies": {"qa_session": r.cookies["qa_session"]}, "headers": {"X-CSRF-Token": r.json()["csrf_token"]}}


CONFIG = schemathesis.Config.from_dict(
    {
        **({} if SEED == "random" else {"seed": int(SEED)}),
        "request-timeout": 10 * SECOND,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "with-security-parameters": False,  # the moderator's real credentials are sent instead
            "database": "none",  # no .hypothesis directory in the checkout
        },
        "checks": {
            # Schema-valid requests may still be refused for domain reasons (a reject
            # without a reason, a queue order that does not match the queue: 400).
            "positive_data_acceptance": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_dict(document(), config=CONFIG)


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one server per operation, on purpose
def test_every_operation_conforms_to_the_document(case: Any, server, staff: dict[str, Any]) -> None:
    if case.operation.path in ANONYMOUS:
        case.call_and_validate(base_url=server.base)
    else:
        case.call_and_validate(base_url=server.base, headers=staff["headers"], cookies=staff["cookies"])


# ── authentication, operation by operation, from the document's examples ───
def _example_request(path: str, op: dict[str, Any]) -> tuple[str, Any]:
    url = path
    for p in op.get("parameters", []):
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", str(p["example"]))
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    return url, (body.get("examples") or [None])[0]


STAFF_OPERATIONS = [
    (method, path, op) for path, item in document()["paths"].items() for method, op in item.items() if op["security"]
]


def test_staff_operations_need_a_session_and_writes_a_csrf_token(server, staff) -> None:
    """No cookie: 401 auth.required. The cookie but no (or a wrong) X-CSRF-Token on a
    write: 403 auth.csrf, and nothing changes."""

    def state() -> Any:
        with httpx.Client(base_url=server.base, **staff) as client:
            snap = client.get("/api/moderation/snapshot").json()
        return [(q["id"], q["version"]) for q in snap["questions"]], snap["schedule"]["segments"]

    before = state()
    wrong = []
    for method, path, op in STAFF_OPERATIONS:
        url, body = _example_request(path, op)
        attempts = [("no session", {}, {}, 401, "auth.required")]
        if any("csrf" in requirement for requirement in op["security"]):
            attempts += [
                ("no csrf", staff["cookies"], {}, 403, "auth.csrf"),
                (
                    "wrong csrf",
                    staff["cookies"],
                    {"X-CSRF-Token": "x" + staff["headers"]["X-CSRF-Token"]},
                    403,
                    "auth.csrf",
                ),
            ]
        for label, cookies, headers, status, code in attempts:
            with httpx.Client(base_url=server.base, cookies=cookies, headers=headers) as client:
                r = client.request(method.upper(), url, json=body)
            got = (r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else None)
            if got != (status, code):
                wrong.append((label, method.upper(), url, got))
    assert wrong == []
    assert state() == before
