"""The OpenAPI 3.1 document of the REST API, written from the handlers in this package.

It is the contract the security tests fuzz against (tests/security/test_openapi.py):
path parameters with their ranges, the JSON bodies each handler reads, every status
it may answer with and the one error body. :func:`drift` compares it with an app's
routes, so a route added without being described (or described and removed) fails
a test instead of going unfuzzed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Route

from .. import __version__

MAX_ID = 2**31 - 1  # ids are PostgreSQL INTEGER: 1..2147483647
MAX_INDEX = 100_000  # a position in a studio's queue
ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
VERSION: dict[str, Any] = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_ID,
    "description": "the version of the question you saw; another one is refused (409 question.stale_version)",
}
QUEUE_VERSION: dict[str, Any] = {
    "type": ["integer", "null"],
    "minimum": 0,
    "maximum": MAX_ID,
    "description": "the studio's queue version you saw; another one is refused (409 queue.stale_version)",
}
LANGUAGE: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
    "description": "a language code such as 'en' or 'pt-BR' (the region is dropped)",
}
ACTIONS = ["approve", "enqueue", "dequeue", "on_air", "skip", "answer", "reject", "reopen", "merge"]
SEGMENT_STATUSES = ["upcoming", "live", "ended", "auto"]

# Paths of the app that are not REST operations: probes, this document, the pages.
NOT_OPERATIONS = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/", "/embed", "/moderate", "/host/{token}", "/report", "/staff", "/admin"}
)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(required: Iterable[str] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


STRING = {"type": "string"}
INT = {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}
STRINGS = {"type": "array", "items": STRING}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}


def _list(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


SCHEMAS: dict[str, Any] = {
    "Error": _object(
        ["error"],
        error=_object(
            ["code", "message", "details"],
            code={"type": "string", "pattern": r"^[a-z_]+(\.[a-z_]+)+$", "description": "dotted, stable"},
            message=STRING,
            details={"type": "object"},
        ),
    ),
    "Staff": _object(["user", "role", "csrf_token"], user=STRING, role=STRING, csrf_token=STRING),
    "Event": _object(
        ["id", "slug", "name", "moderator_language", "viewer_languages"],
        id=ID,
        slug=STRING,
        name=STRING,
        moderator_language=STRING,
        viewer_languages=STRINGS,
    ),
    "Studio": _object(
        ["id", "slug", "name", "city", "country", "timezone", "host_languages"],
        id=ID,
        slug=STRING,
        name=STRING,
        city=STRING,
        country=STRING,
        timezone=STRING,
        host_languages=STRINGS,
    ),
    "Segment": _object(
        ["id", "studio_id", "title", "starts_at", "ends_at", "status", "status_manual", "version"],
        id=ID,
        studio_id=ID,
        title=STRING,
        starts_at=TIME,
        ends_at=TIME,
        status={"enum": ["upcoming", "live", "ended"]},
        status_manual={"type": "boolean"},
        version=INT,
    ),
    "Speaker": _object(
        ["id", "segment_id", "name", "title", "organisation", "languages"],
        id=ID,
        segment_id=ID,
        name=STRING,
        title=STRING,
        organisation=STRING,
        languages=STRINGS,
    ),
    "Schedule": _object(
        ["event", "studios", "segments", "speakers"],
        event=_ref("Event"),
        studios={"type": "array", "items": _ref("Studio")},
        segments={"type": "array", "items": _ref("Segment")},
        speakers={"type": "array", "items": _ref("Speaker")},
    ),
    "Translation": _object(
        ["language", "text", "engine", "model_version", "edited_by"],
        language=STRING,
        text=STRING,
        engine=STRING,
        model_version=STRING,
        edited_by=_nullable(STRING),
    ),
    "Question": _object(
        [
            "id",
            "speaker_id",
            "segment_id",
            "studio_id",
            "viewer",
            "text",
            "language",
            "detected_language",
            "display_name",
            "country",
            "status",
            "version",
            "queue_position",
            "reject_reason",
            "merged_into",
            "merged_count",
            "merged_ids",
            "starred",
            "votes",
            "feed_hidden",
            "similar_to",
            "translation_state",
            "translation_error",
            "translation_problem",
            "translations",
            "created_at",
            "updated_at",
        ],
        id=ID,
        speaker_id=ID,
        segment_id=ID,
        studio_id=ID,
        viewer={"type": "string", "description": "the first 8 characters of the asker's anonymous id"},
        text=STRING,
        language=STRING,
        detected_language=_nullable(STRING),
        display_name=_nullable(STRING),
        country=_nullable({"type": "string", "pattern": "^[A-Z]{2}$"}),
        status={"enum": ["pending", "approved", "queued", "on_air", "answered", "rejected", "merged"]},
        version=INT,
        queue_position=_nullable({"type": "number"}),
        reject_reason=_nullable(STRING),
        merged_into=_nullable(ID),
        merged_count={
            "type": "integer",
            "minimum": 0,
            "description": "questions merged into this one, directly or through another merged one",
        },
        merged_ids={"type": "array", "items": ID, "description": "those questions' ids, ascending"},
        starred={"type": "boolean"},
        votes={"type": "integer", "minimum": 0, "description": "the audience's upvotes on the public feed"},
        feed_hidden={"type": "boolean", "description": "hidden from the public feed by a moderator (not rejected)"},
        similar_to={
            "type": "array",
            "items": ID,
            "description": "earlier open questions of the same studio that read alike (best first, at most 3)",
        },
        translation_state=STRING,
        translation_error=_nullable(
            {"type": "string", "description": "why it is untranslated and what fixes it, in English, for people"}
        ),
        translation_problem=_nullable(_ref("TranslationProblem")),
        translations={"type": "object", "additionalProperties": _ref("Translation")},
        created_at=TIME,
        updated_at=TIME,
    ),
    "TranslationProblem": _object(
        ["code", "pairs", "command"],
        code={
            "enum": ["no_model", "too_long", "engine_failed", "gone"],
            "description": "no_model: no language pack for pairs; too_long: longer than the model takes; "
            "engine_failed: the engine failed on every try; gone: its speaker, studio or event was removed",
        },
        pairs={
            "type": "array",
            "items": {"type": "array", "items": STRING, "minItems": 2, "maxItems": 2},
            "description": "no_model: the [source, target] pairs a language pack would close",
        },
        command=_nullable({"type": "string", "description": "no_model: the command that installs them"}),
    ),
    "HostQuestion": _object(
        [
            "id",
            "speaker_id",
            "text",
            "language",
            "display_name",
            "country",
            "status",
            "version",
            "queue_position",
            "merged_count",
            "votes",
            "translations",
        ],
        id=ID,
        speaker_id=ID,
        text=STRING,
        language=STRING,
        display_name=_nullable(STRING),
        country=_nullable(STRING),
        status={"enum": ["queued", "on_air", "answered"]},
        version=INT,
        queue_position=_nullable({"type": "number"}),
        merged_count={"type": "integer", "minimum": 0, "description": "similar questions merged into this one"},
        votes={"type": "integer", "minimum": 0, "description": "the audience's upvotes on the public feed"},
        translations={
            "type": "object",
            "additionalProperties": _object(["text", "engine"], text=STRING, engine=STRING),
        },
    ),
    "TranslationStatus": _nullable(
        {"type": "object", "description": "what the translation workers last reported; null before any did"}
    ),
    "ModeratorSnapshot": _object(
        ["schedule", "questions", "queue_versions", "translation"],
        schedule=_ref("Schedule"),
        questions={"type": "array", "items": _ref("Question")},
        queue_versions={"type": "object", "additionalProperties": INT, "description": "studio id -> queue version"},
        translation=_ref("TranslationStatus"),
    ),
    "HostSnapshot": _object(
        ["studio", "queue_version", "schedule", "questions", "translation"],
        studio=_ref("Studio"),
        queue_version=INT,
        schedule=_ref("Schedule"),
        questions={"type": "array", "items": _ref("HostQuestion")},
        translation=_ref("TranslationStatus"),
    ),
    "AuditEntry": _object(
        ["id", "question_id", "segment_id", "actor", "action", "before", "after", "at"],
        id=ID,
        question_id=_nullable(ID),
        segment_id=_nullable(ID),
        actor=STRING,
        action=STRING,
        before=_nullable({"type": "object"}),
        after=_nullable({"type": "object"}),
        at=TIME,
    ),
    "QueueOrder": _object(
        ["studio_id", "order"], studio_id=ID, order={"type": "array", "items": ID, "description": "next on air first"}
    ),
    "Report": _object(
        [
            "generated_at",
            "event",
            "running",
            "marathon",
            "totals",
            "studios",
            "speakers",
            "languages",
            "countries",
            "timeline",
            "funnel",
            "time_to_air",
            "most_voted",
            "workload",
        ],
        generated_at=TIME,
        event=_object(["id", "slug", "name"], id=ID, slug=STRING, name=STRING),
        running={"type": "boolean", "description": "the marathon runs now (the page refreshes itself)"},
        marathon=_object(["starts_at", "ends_at"], starts_at=_nullable(TIME), ends_at=_nullable(TIME)),
        totals=_object(["questions", "askers", "votes"], questions=COUNT, askers=COUNT, votes=COUNT),
        studios=_list(_object(["id", "name", "city", "count"], id=ID, name=STRING, city=STRING, count=COUNT)),
        speakers=_object(
            ["items", "other"],
            items=_list(_object(["id", "name", "studio_id", "count"], id=ID, name=STRING, studio_id=ID, count=COUNT)),
            other=COUNT,
        ),
        languages=_ref("ReportTop"),
        countries={**_ref("ReportTop"), "description": "ISO 3166 codes the askers' browsers stated; unknown: none"},
        timeline=_object(
            ["start", "bucket_minutes", "labels", "studios", "languages"],
            start=_nullable(TIME),
            bucket_minutes=COUNT,
            labels=_list(TIME),
            studios=_list(_object(["studio_id", "counts"], studio_id=ID, counts=_list(COUNT))),
            languages=_list(_object(["key", "counts"], key=STRING, counts=_list(COUNT))),
        ),
        funnel=_object(
            ["asked", "approved", "on_air", "answered", "pending", "rejected", "merged", "hidden"],
            asked=COUNT,
            approved={**COUNT, "description": "approved, queued, on air or answered now"},
            on_air={**COUNT, "description": "on air or answered now"},
            answered=COUNT,
            pending=COUNT,
            rejected=COUNT,
            merged=COUNT,
            hidden={**COUNT, "description": "hidden because their asker was banned (not in asked)"},
        ),
        time_to_air=_object(
            ["count", "median_seconds", "p90_seconds", "histogram"],
            count=COUNT,
            median_seconds=_nullable({"type": "number"}),
            p90_seconds=_nullable({"type": "number"}),
            histogram=_list(
                _object(
                    ["from_minutes", "to_minutes", "count"],
                    from_minutes=COUNT,
                    to_minutes=_nullable(COUNT),
                    count=COUNT,
                )
            ),
        ),
        most_voted=_list(
            _object(
                ["id", "text", "language", "votes", "status", "speaker_id", "studio_id"],
                id=ID,
                text=STRING,
                language=STRING,
                votes=COUNT,
                status=STRING,
                speaker_id=ID,
                studio_id=ID,
            )
        ),
        workload=_object(
            ["kinds", "moderators", "hosts", "per_hour"],
            kinds=STRINGS,
            moderators=_list(
                _object(
                    ["actor", "total", "by_kind"],
                    actor={**_nullable(STRING), "description": "null: the other moderators together"},
                    total=COUNT,
                    by_kind={"type": "object", "additionalProperties": COUNT},
                )
            ),
            hosts={**COUNT, "description": "actions of the studios' host displays (not in moderators)"},
            per_hour=_object(
                ["start", "bucket_minutes", "labels", "moderators"],
                start=_nullable(TIME),
                bucket_minutes=COUNT,
                labels=_list(TIME),
                moderators=_list(_object(["actor", "counts"], actor=_nullable(STRING), counts=_list(COUNT))),
            ),
        ),
    ),
    "ReportTop": _object(
        ["items", "other"],
        items=_list(_object(["key", "count"], key=STRING, count=COUNT)),
        other={**COUNT, "description": "the rest together"},
        unknown=COUNT,
    ),
}

_ERRORS = {
    "400": "refused: the body, a parameter or the request is invalid (the code says which)",
    "401": "not logged in, or the session ended (auth.required)",
    "403": "the role may not do this (auth.forbidden), or the X-CSRF-Token header is missing or wrong (auth.csrf)",
    "404": "no such question, studio, segment or host link (the code says which)",
    "409": "a stale version: someone changed it meanwhile; reload (the code says what)",
    "413": "the request body is over the limit (request.too_large)",
    "429": "too many requests or connections from your address; see Retry-After",
    "503": "the database or the message bus is unreachable (service.unavailable); see Retry-After",
}
_RETRY_AFTER = {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def _error(status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERRORS[status],
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if status in ("429", "503"):
        response["headers"] = _RETRY_AFTER
    return response


def _operation(
    summary: str,
    ok: dict[str, Any],
    errors: Iterable[str],
    *,
    auth: str | None = "write",
    body: dict[str, Any] | None = None,
    body_required: bool = True,
    parameters: list[dict[str, Any]] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """One operation. ``auth``: None (anyone), "read" (the session cookie) or "write"
    (the cookie and the X-CSRF-Token header; a moderator's role)."""
    statuses = set(errors) | {"429", "503"}
    if auth:
        statuses.add("401")
    if auth == "write":
        statuses.add("403")
    if body is not None:
        statuses |= {"400", "413"}
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "done", "content": {"application/json": {"schema": ok}}},
            **{s: _error(s) for s in sorted(statuses)},
        },
    }
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
    op["security"] = {None: [], "read": [{"session": []}], "write": [{"session": [], "csrf": []}]}[auth]
    return op


def _path(name: str, schema: dict[str, Any], example: object, description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
        "example": example,
    }


def _body(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "examples": [example]}


QUESTION_ID = _path("question_id", ID, 1, "the question's id")
QUESTION_OPS = ["400", "404", "409"]  # event not loaded or bad body; unknown question; stale version


def _versioned(*required: str, **properties: Any) -> dict[str, Any]:
    return _object(["version", *required], version=VERSION, **properties)


PATHS: dict[str, dict[str, Any]] = {
    "/api/login": {
        "post": _operation(
            "Log in as staff",
            _ref("Staff"),
            ["401"],
            auth=None,
            body=_body(
                _object(["username", "password"], username=STRING, password={"type": "string", "maxLength": 1000}),
                {"username": "moderator", "password": "correct horse battery staple"},
            ),
            description="Sets the session cookie (HttpOnly, SameSite=Lax). Send csrf_token back as the "
            "X-CSRF-Token header with every write. Attempts are limited per address and per account.",
        )
    },
    "/api/logout": {
        "post": _operation(
            "Log out: ends the session on the server (its open sockets close with 4401)",
            {"type": "object", "maxProperties": 0},
            [],
            auth=None,
        )
    },
    "/api/me": {
        "get": _operation("The logged-in user and the CSRF token to send with writes", _ref("Staff"), [], auth="read")
    },
    "/api/schedule": {
        "get": _operation(
            "The public programme: event, studios, segments, speakers", _ref("Schedule"), ["400", "404"], auth=None
        )
    },
    "/api/moderation/snapshot": {
        "get": _operation(
            "Everything a moderator console starts from", _ref("ModeratorSnapshot"), ["400", "403", "404"], auth="read"
        )
    },
    "/api/moderation/audit": {
        "get": _operation(
            "The newest moderation actions (who did what, when), newest first",
            _object(["actions"], actions={"type": "array", "items": _ref("AuditEntry")}),
            ["400", "403"],
            auth="read",
            parameters=[
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "default": 200},
                    "description": "how many; values outside 1..1000 are clamped to it",
                },
                {"name": "question_id", "in": "query", "schema": ID, "description": "only this question's"},
            ],
        )
    },
    "/api/questions/{question_id}/translations/{language}": {
        "put": _operation(
            "Replace a question's translation into one language by hand (machines never overwrite it)",
            _ref("Question"),
            QUESTION_OPS,
            parameters=[QUESTION_ID, _path("language", LANGUAGE, "ru")],
            body=_body(
                _versioned("text", text={"type": "string", "minLength": 1, "maxLength": 1500}),
                {"version": 1, "text": "Какие планы на экспорт?"},
            ),
        )
    },
    "/api/questions/{question_id}/star": {
        "post": _operation(
            "Star or unstar a question",
            _ref("Question"),
            QUESTION_OPS,
            parameters=[QUESTION_ID],
            body=_body(_versioned("starred", starred={"type": "boolean"}), {"version": 1, "starred": True}),
        )
    },
    "/api/questions/{question_id}/feed": {
        "post": _operation(
            "Hide a question from the public feed, or show it again",
            _ref("Question"),
            QUESTION_OPS,
            parameters=[QUESTION_ID],
            body=_body(_versioned("hidden", hidden={"type": "boolean"}), {"version": 1, "hidden": True}),
            description="The question is not rejected: its asker, the queue and the host display are not affected.",
        )
    },
    "/api/questions/{question_id}/undo": {
        "post": _operation(
            "Undo the last life-cycle request on a question",
            _ref("Question"),
            QUESTION_OPS,
            parameters=[QUESTION_ID],
            body=_body(_versioned(), {"version": 2}),
            description="Refused with 409 undo.stale if the question changed since, undo.illegal if the life cycle "
            "does not go back that way, studio.on_air_taken if another question is on air; 400 undo.nothing.",
        )
    },
    "/api/questions/{question_id}/ban": {
        "post": _operation(
            "Hide the asker's future questions from moderators and hosts",
            _object(
                ["banned", "address_banned_until"],
                banned={"type": "string", "description": "the asker's short id"},
                address_banned_until=_nullable(TIME),
            ),
            ["400", "404"],
            parameters=[QUESTION_ID],
            body=_body(
                _object(
                    address_minutes={
                        "type": ["integer", "null"],
                        "minimum": 0,
                        "maximum": 43_200,
                        "description": "also ban the asker's address (by keyed hash) this long; 0: no address ban; "
                        "default QA_ADDRESS_BAN_MINUTES",
                    }
                ),
                {"address_minutes": 60},
            ),
            body_required=False,
            description="Bans the asker's viewer token for the event, and their address for address_minutes, "
            "so a viewer who drops its token is still caught meanwhile.",
        )
    },
    "/api/questions/{question_id}/unban": {
        "post": _operation(
            "Take back the ban of this question's asker",
            _object(["banned"], banned={"const": False}),
            ["400", "404"],
            parameters=[QUESTION_ID],
            description="Removes the event's ban of the asker's viewer token and the ban of the address this "
            "question came from (if any); audited as unban. Questions hidden meanwhile stay hidden; the asker's "
            "next questions reach the moderators.",
        )
    },
    "/api/questions/{question_id}/retranslate": {
        "post": _operation(
            "Translate a question again by machine",
            _ref("Question"),
            QUESTION_OPS,
            parameters=[QUESTION_ID],
            body=_body(_versioned(language=_nullable(LANGUAGE)), {"version": 1, "language": "ru"}),
            description="language, if given, corrects the source language first (hand edits are then dropped).",
        )
    },
    "/api/questions/{question_id}/{action}": {
        "post": _operation(
            "Apply a life-cycle action to a question",
            _ref("Question"),
            QUESTION_OPS,
            parameters=[QUESTION_ID, _path("action", {"enum": ACTIONS}, "approve")],
            body=_body(
                _versioned(
                    reason={
                        "type": ["string", "null"],
                        "maxLength": 200,
                        "description": "reject needs one (not blank; shown to the asker; at most 200 characters, "
                        "no control characters); other actions ignore it",
                    },
                    into={**ID, "type": ["integer", "null"], "description": "required by merge: the question to keep"},
                    enqueue={
                        "type": ["boolean", "null"],
                        "default": True,
                        "description": "approve: also queue it (default)",
                    },
                ),
                {"version": 1},
            ),
            description="on_air takes a queued question, or an approved one (queued first: one request, one undo); "
            "the studio's current on-air question becomes answered. enqueue puts an approved question back at the "
            "end of the queue. "
            "400 question.reason_required, question.merge_target_required, question.merge_self, "
            "action.unknown; 404 question.unknown; 409 question.stale_version, question.illegal_transition, "
            "question.merge_target_closed, studio.on_air_taken.",
        )
    },
    "/api/studios/{studio_id}/queue": {
        "post": _operation(
            "Set a studio's queue order, or move one question in it",
            _ref("QueueOrder"),
            ["400", "404", "409"],
            parameters=[_path("studio_id", ID, 1, "the studio's id")],
            body={
                "examples": [{"question_id": 3, "index": 0}],
                "oneOf": [
                    _object(
                        ["order"],
                        order={
                            "type": "array",
                            "items": ID,
                            "description": "every queued question once, next on air first",
                        },
                        version=QUEUE_VERSION,
                    ),
                    {
                        **_object(
                            ["question_id", "index"],
                            question_id=ID,
                            index={
                                "type": "integer",
                                "minimum": 0,
                                "maximum": MAX_INDEX,
                                "description": "0 = next on air",
                            },
                            version=QUEUE_VERSION,
                        ),
                        "not": {"required": ["order"]},
                    },
                ],
            },
            description="version, if given, is the studio's queue version you saw (409 queue.stale_version). "
            "400 queue.mismatch, queue.not_in_queue, queue.invalid; 404 studio.unknown.",
        )
    },
    "/api/segments/{segment_id}/status": {
        "post": _operation(
            "Put a segment live or end it by hand, or give it back to the clock (auto)",
            _ref("Segment"),
            ["400", "404"],
            parameters=[_path("segment_id", ID, 1, "the segment's id")],
            body=_body(_object(["status"], status={"enum": SEGMENT_STATUSES}), {"status": "live"}),
        )
    },
    "/api/host/{token}/queue": {
        "get": _operation(
            "A studio's host queue, opened with the studio's signed host-link token",
            _ref("HostSnapshot"),
            ["400", "404"],
            auth=None,
            parameters=[
                _path("token", {"type": "string", "minLength": 1}, "not-a-host-link", "the signed host-link token")
            ],
            description="404 host.link_invalid for a forged, revoked or expired token.",
        )
    },
    "/api/report": {
        "get": _operation(
            "The loaded event's report: questions per studio, speaker, language and country, over time; the "
            "funnel; ask to on air; the most voted; the moderators' workload",
            _ref("Report"),
            ["400", "403", "404"],
            auth="read",
            description="Moderators and admins. One consistent read of the database; what each figure counts: "
            "qa_service/services/report.py. Not cached (Cache-Control: no-store).",
        )
    },
}


# ── staff management (admins only: moderators and hosts get 403) ────────────
SCHEMAS.update(
    {
        "Account": _object(
            ["id", "username", "role", "disabled", "created_at", "sessions"],
            id=ID,
            username=STRING,
            role={"enum": ["moderator", "host", "admin"]},
            disabled={"type": "boolean"},
            created_at=TIME,
            sessions={"type": "integer", "minimum": 0, "description": "open sessions (logins not ended)"},
        ),
        "AccountPassword": _object(
            ["account", "password"],
            account=_ref("Account"),
            password={
                "type": ["string", "null"],
                "description": "the password the server generated: shown this once, stored only as a hash; "
                "null when the request gave one",
            },
        ),
        "HostLink": _object(
            ["id", "studio_id", "label", "created_by", "created_at", "expires_at", "revoked_at", "state", "url"],
            id=ID,
            studio_id=ID,
            label=STRING,
            created_by=STRING,
            created_at=TIME,
            expires_at=_nullable(TIME),
            revoked_at=_nullable(TIME),
            state={"enum": ["open", "expired", "revoked"]},
            url=_nullable({"type": "string", "description": "the link to open on the studio's display, while open"}),
        ),
    }
)
PASSWORD: dict[str, Any] = {
    "type": ["string", "null"],
    "minLength": 8,
    "maxLength": 1000,
    "description": "at least 8 characters; null or absent: the server generates one and answers it once",
}
ADMIN_READ = ["400", "403"]  # 400 event.not_loaded; 403 not an admin
PATHS.update(
    {
        "/api/staff/accounts": {
            "get": _operation(
                "Every staff account (never a password hash); admins only",
                _object(["accounts"], accounts={"type": "array", "items": _ref("Account")}),
                ["403"],
                auth="read",
            ),
            "post": _operation(
                "Add a moderator, host or admin account; admins only",
                _ref("AccountPassword"),
                ["400", "409"],
                body=_body(
                    _object(
                        ["username", "role"],
                        username={"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                        role={"enum": ["moderator", "host", "admin"]},
                        password=PASSWORD,
                    ),
                    {"username": "anna", "role": "moderator"},
                ),
                description="409 user.exists for a name taken in any case or width. Audited as staff.add.",
            ),
        },
        "/api/staff/accounts/{user_id}/password": {
            "post": _operation(
                "Reset an account's password: every session of it ends; admins only",
                _ref("AccountPassword"),
                ["400", "404"],
                parameters=[_path("user_id", ID, 1, "the account's id")],
                body=_body(_object(password=PASSWORD), {}),
                body_required=False,
                description="Open consoles of the account close (4401) at the next access check. "
                "Audited as staff.password.",
            )
        },
        "/api/staff/accounts/{user_id}/disabled": {
            "post": _operation(
                "Disable an account (every session ends at once) or enable it again; admins only",
                _ref("Account"),
                ["400", "404", "409"],
                parameters=[_path("user_id", ID, 1, "the account's id")],
                body=_body(_object(["disabled"], disabled={"type": "boolean"}), {"disabled": True}),
                description="400 staff.self: an admin cannot disable themselves; 409 staff.last_admin: the last "
                "enabled admin stays. Open consoles close (4401) at the next access check. Audited as "
                "staff.disable / staff.enable.",
            )
        },
        "/api/staff/host-links": {
            "get": _operation(
                "The event's studios and every host link issued for them, newest first; admins only",
                _object(
                    ["studios", "links"],
                    studios={
                        "type": "array",
                        "items": _object(["id", "slug", "name", "city"], id=ID, slug=STRING, name=STRING, city=STRING),
                    },
                    links={"type": "array", "items": _ref("HostLink")},
                ),
                ADMIN_READ,
                auth="read",
            ),
            "post": _operation(
                "Issue a host display link for a studio, expiring in hours or at a time; admins only",
                _ref("HostLink"),
                ["400", "404"],
                body=_body(
                    _object(
                        ["studio_id"],
                        studio_id=ID,
                        label={"type": ["string", "null"], "maxLength": 100},
                        hours={"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 8784},
                        until=_nullable({"type": "string", "format": "date-time"}),
                    ),
                    {"studio_id": 1, "label": "Moscow studio screen", "hours": 12},
                ),
                description="Exactly one of hours and until (400 host_link.expiry_required). Audited as "
                "host_link.issue.",
            ),
        },
        "/api/staff/host-links/{link_id}/revoke": {
            "post": _operation(
                "Revoke one host link: it stops opening and a display open with it closes; admins only",
                _ref("HostLink"),
                ["400", "404"],
                parameters=[_path("link_id", ID, 1, "the link's id")],
                description="The studio's other links keep working. Audited as host_link.revoke.",
            )
        },
    }
)


# ── the organiser's export (qa_service/api/export.py) ──────────────────────
def _export_operation() -> dict[str, Any]:
    """A file, not a JSON answer: CSV, JSON or XLSX, by ``format``."""
    op = _operation(
        "Export questions, the moderation log or the unanswered questions as a file (moderators and admins)",
        {"type": "object"},
        ["400", "403", "404"],
        auth="read",
        description="Content-Disposition names the file; Cache-Control: no-store. CSV cells a spreadsheet would "
        "run as a formula start with an apostrophe; XLSX text cells are text; times are UTC. The questions' "
        "XLSX also has the moderation log of the same scope as a second sheet. The unanswered file has the "
        "askers' consented e-mail addresses for admins only. Columns: qa_service/services/export.py.",
        parameters=[
            {"name": "format", "in": "query", "schema": {"enum": ["csv", "json", "xlsx"], "default": "csv"}},
            {
                "name": "what",
                "in": "query",
                "schema": {"enum": ["questions", "log", "unanswered"], "default": "questions"},
            },
            {"name": "speaker", "in": "query", "schema": ID, "description": "only this speaker's"},
            {"name": "studio", "in": "query", "schema": ID, "description": "only this studio's"},
            {"name": "segment", "in": "query", "schema": ID, "description": "only this segment's"},
        ],
    )
    op["responses"]["200"] = {
        "description": "the file (an attachment)",
        "headers": {
            "Content-Disposition": {"required": True, "schema": {"type": "string", "pattern": "^attachment; "}},
            "Cache-Control": {"required": True, "schema": {"const": "no-store"}},
        },
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {
                "schema": _object(
                    ["what", "event", "filters", "generated_at", "columns", "rows"],
                    what={"enum": ["questions", "log", "unanswered"]},
                    event=_object(["slug", "name"], slug=STRING, name=STRING),
                    filters={"type": "object"},
                    generated_at=TIME,
                    columns=STRINGS,
                    rows={"type": "array", "items": {"type": "object"}},
                )
            },
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "contentEncoding": "binary"}
            },
        },
    }
    return op


PATHS["/api/export"] = {"get": _export_operation()}


# ── the programme edited live by admins (api/admin_event.py) ─────────────────
SCHEMAS["Schedule"]["properties"]["version"] = {
    "type": "integer",
    "minimum": 0,
    "description": "the programme's version: a schedule.updated of a lower or equal one is older (docs/protocol.md)",
}


def _programme_paths() -> dict[str, Any]:
    streams = {
        "type": ["object", "array", "null"],
        "description": "{language: URL.m3u8 | {hls: URL} | {embed: URL}}, the original first (as in the event file)",
    }
    langs = {**STRINGS, "minItems": 1, "description": "language codes, in order of preference"}
    studio = dict(
        slug={"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"},
        name={"type": "string", "maxLength": 200},
        city={"type": "string", "maxLength": 100},
        country={"type": "string", "maxLength": 100},
        timezone={"type": "string", "description": "an IANA time zone such as Europe/Moscow"},
        host_languages=langs,
        streams=streams,
    )
    when = {
        "type": "string",
        "description": "a local time of the studio's time zone (2030-01-07T09:30), or with an offset",
    }
    segment = dict(
        studio_id=ID, title={"type": "string", "maxLength": 200}, starts_at=when, ends_at=when, streams=streams
    )
    speaker = dict(
        segment_id=ID,
        name={"type": "string", "maxLength": 200},
        title={"type": "string", "maxLength": 200},
        organisation={"type": "string", "maxLength": 200},
        languages=langs,
    )
    deleted = _object(["deleted"], deleted=ID)
    admin = ["400", "403", "404", "409"]
    studio_id = _path("studio_id", ID, 1, "the studio's id")
    segment_id = _path("segment_id", ID, 1, "the segment's id")
    speaker_id = _path("speaker_id", ID, 1, "the speaker's id")
    changed = (
        "Admins only. Audited (event.<kind>_<add|update|delete>) and announced on the schedule channel "
        "(schedule.updated, the whole programme). "
    )
    refused = "400 <kind>.invalid (details.field names the field); 409 "
    return {
        "/api/admin/event": {
            "get": _operation(
                "The event's programme for the admin page",
                {
                    **_ref("Schedule"),
                    "description": "the public programme with timezone (the event's) and questions "
                    "({studios|segments|speakers: {id: count}}: what may not be deleted)",
                },
                ["400", "403"],
                auth="read",
            )
        },
        "/api/admin/studios": {
            "post": _operation(
                "Add a studio",
                _ref("Studio"),
                admin,
                body=_body(
                    _object(["slug", "name", "city", "country", "timezone", "host_languages"], **studio),
                    {
                        "slug": "nairobi",
                        "name": "Nairobi studio",
                        "city": "Nairobi",
                        "country": "Kenya",
                        "timezone": "Africa/Nairobi",
                        "host_languages": ["sw", "en"],
                    },
                ),
                description=changed + refused + "studio.slug_taken.",
            )
        },
        "/api/admin/studios/{studio_id}": {
            "put": _operation(
                "Change a studio (the fields sent)",
                _ref("Studio"),
                admin,
                parameters=[studio_id],
                body=_body(_object([], **studio), {"name": "Host studio"}),
                description=changed + refused + "studio.slug_taken; 404 studio.unknown.",
            ),
            "delete": _operation(
                "Delete a studio nobody asked a question in, with its segments and their speakers",
                deleted,
                admin,
                parameters=[studio_id],
                description=changed + "409 studio.has_questions (details.questions); 404 studio.unknown.",
            ),
        },
        "/api/admin/segments": {
            "post": _operation(
                "Add a segment",
                _ref("Segment"),
                admin,
                body=_body(
                    _object(["studio_id", "title", "starts_at", "ends_at"], **segment),
                    {
                        "studio_id": 1,
                        "title": "Closing",
                        "starts_at": "2030-01-07T19:00",
                        "ends_at": "2030-01-07T20:00",
                    },
                ),
                description=changed
                + "Its status follows the clock (POST /api/segments/{id}/status sets it by hand). "
                + refused
                + "segment.title_taken; 404 studio.unknown.",
            )
        },
        "/api/admin/segments/{segment_id}": {
            "put": _operation(
                "Change a segment: title, studio, times, streams (the fields sent)",
                _ref("Segment"),
                admin,
                parameters=[segment_id],
                body=_body(
                    _object(
                        [],
                        **segment,
                        version={**VERSION, "description": "the segment's version you saw (409 segment.stale_version)"},
                    ),
                    {"title": "Opening", "version": 1},
                ),
                description=changed
                + refused
                + "segment.title_taken, segment.stale_version, segment.has_questions (to another studio); "
                "404 segment.unknown.",
            ),
            "delete": _operation(
                "Delete a segment nobody asked a question in, with its speakers",
                deleted,
                admin,
                parameters=[segment_id],
                description=changed + "409 segment.has_questions (details.questions); 404 segment.unknown.",
            ),
        },
        "/api/admin/speakers": {
            "post": _operation(
                "Add a speaker to a segment",
                _ref("Speaker"),
                admin,
                body=_body(
                    _object(["segment_id", "name", "languages"], **speaker),
                    {"segment_id": 1, "name": "Mei Ling", "title": "Analyst", "languages": ["zh", "en"]},
                ),
                description=changed + refused + "speaker.name_taken; 404 segment.unknown.",
            )
        },
        "/api/admin/speakers/{speaker_id}": {
            "put": _operation(
                "Change a speaker, or move them to another segment (the fields sent)",
                _ref("Speaker"),
                admin,
                parameters=[speaker_id],
                body=_body(_object([], **speaker), {"title": "Chief Engineer"}),
                description=changed
                + refused
                + "speaker.name_taken, speaker.has_questions (moving one with questions); 404 speaker.unknown.",
            ),
            "delete": _operation(
                "Delete a speaker nobody asked a question",
                deleted,
                admin,
                parameters=[speaker_id],
                description=changed + "409 speaker.has_questions (details.questions); 404 speaker.unknown.",
            ),
        },
    }


PATHS.update(_programme_paths())

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Live Q&A service",
        "version": __version__,
        "description": "Staff REST API. Every error is {error: {code, message, details}} with a dotted code. "
        "An optional body field sent as null counts as not sent. The websockets are described in docs/protocol.md.",
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "qa_session", "description": "from POST /api/login"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token", "description": "csrf_token of login"},
        },
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI document (a copy: callers may change it)."""
    return copy.deepcopy(DOCUMENT)


def openapi_path(starlette_path: str) -> str:
    """``/api/questions/{question_id:int}/star`` -> ``/api/questions/{question_id}/star``."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", r"{\1}", starlette_path)


def operations_of(routes: Iterable[BaseRoute]) -> set[tuple[str, str]]:
    """(path, method) of every REST operation among an app's routes (HEAD is implied by GET)."""
    out: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Route) and route.path not in NOT_OPERATIONS:
            for method in route.methods or ():
                if method != "HEAD":
                    out.add((openapi_path(route.path), method.lower()))
    return out


def drift(routes: Iterable[BaseRoute]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(operations the app serves but the document lacks, operations documented but not served)."""
    served = operations_of(routes)
    documented = {(path, method) for path, item in PATHS.items() for method in item}
    return served - documented, documented - served
