"""/metrics on a real hub (real Redis, SQLite and PostgreSQL): the families a scrape
reads from the hub's state, who may read them, a scrape that answers while Redis or
the database is away, what the hub counts as it goes (sockets, hellos, asks,
events, bus lag), and a translation worker's own /metrics."""

from __future__ import annotations

import csv
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from qa_service.metrics import refusal
from qa_service.services import questions
from qa_service.services.context import Context
from qa_service.settings import Settings

from .conftest import sample_ids
from .faults import ServiceProcess, service_env
from .support import SECOND, ThreadServer, WsClient, cookie_header, free_port, start_server, wait_until, ws_client

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
OPENMETRICS = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
PHRASES = Path(__file__).resolve().parents[1] / "workers" / "test_models" / "phrases.tsv"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(base: str, **headers: str) -> Samples:
    r = httpx.get(f"{base}/metrics", headers=headers, timeout=10 * SECOND)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")  # Prometheus text exposition
    return parse(r.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def hello(c: WsClient) -> dict[str, Any]:
    reply = c.request("hello", {})
    assert reply["ok"], reply
    return reply["payload"]


def ask(c: WsClient, sample: dict[str, Any]) -> dict[str, Any]:
    speaker = int(sample["speakers"]["moscow"][1].id)  # live now
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": "How many hubs?", "language": "en"}
    reply = c.request("question.ask", payload)
    assert reply["ok"], reply
    return reply


# ── read from the hub's state at scrape time ───────────────────────────────
@pytest.mark.integration
def test_a_scrape_reads_questions_queue_pools_bus_and_tasks(server: ThreadServer, settings: Settings, sample) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        hello(c)
        ask(c, sample)
        ask(c, sample)
    r = httpx.get(f"{server.base}/metrics", timeout=10 * SECOND)
    assert r.headers["x-request-id"]  # a scrape is a request like any other
    m = wait_until(lambda: (s := scrape(server.base)) and value(s, "qa_bus_connected") == 1 and s, what="bus up")
    assert value(m, "qa_questions", status="pending") == 2
    assert value(m, "qa_questions", status="answered") == 0  # every status, zero included
    # Each question was queued for translation; no worker runs here.
    assert value(m, "qa_translation_queue_depth", queue=settings.queue_name) == 2
    assert value(m, "qa_db_pool_checked_out", engine="write") is not None
    heartbeat_age = value(m, "qa_bus_heartbeat_age_seconds")
    assert heartbeat_age is not None and heartbeat_age < 3 * settings.bus_heartbeat_seconds
    assert value(m, "qa_stale_channels") == 0
    assert value(m, "qa_task_failures_total", task="schedule-clock") == 0
    assert value(m, "qa_scrape_errors_total", source="redis") == 0
    assert value(m, "qa_scrape_errors_total", source="database") == 0
    assert value(m, "qa_sockets", role="viewer") is not None  # created at start, whoever counts into it
    assert {"process_open_fds", "process_resident_memory_bytes"} <= names(m)
    # A scraper that asks for OpenMetrics (Prometheus does) gets it.
    om = httpx.get(f"{server.base}/metrics", headers={"Accept": OPENMETRICS}, timeout=10 * SECOND)
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(om.text)}
    assert [s.value for s in families["qa_questions"].samples if s.labels == {"status": "pending"}] == [2]


@pytest.mark.integration
@SQLITE_ONLY
def test_two_hubs_in_one_process_count_apart(settings_factory: Any, event_id: int) -> None:
    """A registry per hub: a second app neither collides with the first nor shares its numbers."""
    first = start_server(settings_factory())
    second = start_server(settings_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens
    try:
        scrape(second.base)
        assert value(scrape(second.base), "qa_scrape_errors_total", source="redis") == 2
        assert value(scrape(first.base), "qa_scrape_errors_total", source="redis") == 0
    finally:
        first.stop()
        second.stop()


# ── counted by the hub as it goes (the lead's calls) ───────────────────────
@pytest.mark.integration
def test_sockets_and_hellos_are_counted_by_role(server: ThreadServer, moderator: httpx.Client) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        before = scrape(server.base)
        assert value(before, "qa_sockets", role="viewer") == 1
        assert value(before, "qa_hellos_total", role="viewer") == 0
        hello(c)
        assert value(scrape(server.base), "qa_hellos_total", role="viewer") == 1
        with ws_client(
            f"{server.ws_base}/ws/moderator", additional_headers={"Cookie": cookie_header(moderator)}
        ) as mod:
            hello(mod)
            both = scrape(server.base)
            assert value(both, "qa_sockets", role="moderator") == 1
            assert value(both, "qa_hellos_total", role="moderator") == 1
    wait_until(lambda: value(scrape(server.base), "qa_sockets", role="viewer") == 0, what="socket counted closed")
    assert value(scrape(server.base), "qa_sockets", role="moderator") == 0


@pytest.mark.integration
def test_asks_and_events_are_counted(server: ThreadServer, sample) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        hello(c)
        ask(c, sample)
        c.wait_event(lambda e: e["type"] == "question.created")  # the asker's own channel
        m = scrape(server.base)
    assert value(m, "qa_ask_ack_seconds_count") == 1
    ack = value(m, "qa_ask_ack_seconds_sum")
    assert ack is not None and 0 < ack < 10
    assert (value(m, "qa_events_published_total") or 0) >= 2  # the moderators' channel and the asker's
    assert (value(m, "qa_events_delivered_total") or 0) >= 1


@pytest.mark.integration
@SQLITE_ONLY
def test_the_bus_round_trip_is_measured(settings_factory: Any, event_id: int) -> None:
    srv = start_server(settings_factory(bus_heartbeat_seconds=0.2))
    try:
        lag = wait_until(lambda: value(scrape(srv.base), "qa_bus_lag_seconds"), what="a measured bus lag")
        assert 0 < lag < 1
    finally:
        srv.stop()


# ── who may read /metrics ──────────────────────────────────────────────────
@pytest.mark.integration
@SQLITE_ONLY
def test_only_loopback_and_the_allow_list_read_metrics(settings_factory: Any, event_id: int) -> None:
    srv = start_server(settings_factory(trusted_proxies="127.0.0.1", metrics_allow="203.0.113.0/24"))
    try:
        assert scrape(srv.base)  # loopback, asked directly
        assert scrape(srv.base, **{"X-Forwarded-For": "203.0.113.9"})  # QA_METRICS_ALLOW, via a trusted proxy
        r = httpx.get(f"{srv.base}/metrics", headers={"X-Forwarded-For": "198.51.100.7"}, timeout=10 * SECOND)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "metrics.forbidden"
        assert "198.51.100.7" in r.json()["error"]["message"]
        assert "# HELP" not in r.text
        post = httpx.post(f"{srv.base}/metrics", timeout=10 * SECOND)
        assert post.status_code == 405 and post.json()["error"]["code"] == "request.method_not_allowed"
    finally:
        srv.stop()


@pytest.mark.integration
@SQLITE_ONLY
def test_a_proxy_not_trusted_gets_no_metrics_even_on_loopback(server: ThreadServer) -> None:
    """A balancer on this machine left out of QA_TRUSTED_PROXIES makes every visitor
    look like 127.0.0.1: a request carrying a forwarding header is refused."""
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        r = httpx.get(f"{server.base}/metrics", headers={header: "127.0.0.1"}, timeout=10 * SECOND)
        assert r.status_code == 403, header
        assert r.json()["error"]["code"] == "metrics.forbidden"
    assert scrape(server.base)


def test_refusal_judges_addresses_like_the_rest_of_the_edge() -> None:
    s = Settings(metrics_allow="10.0.0.0/8, 2001:db8::/32", trusted_proxies="192.0.2.1")
    assert refusal("127.0.0.1", [], s) is None
    assert refusal("127.8.9.10", [], s) is None
    assert refusal("::1", [], s) is None
    assert refusal("::ffff:127.0.0.1", [], s) is None  # IPv4-mapped
    assert refusal("10.1.2.3", [], s) is None
    assert refusal("2001:db8::7", [], s) is None
    assert refusal("192.168.1.1", [], s) is not None
    assert refusal("192.0.2.1", [], s) is not None  # the proxy itself is not on the list
    assert refusal("192.0.2.1", [(b"x-forwarded-for", b"10.9.9.9")], s) is None
    assert refusal("192.0.2.1", [(b"x-forwarded-for", b"10.9.9.9, 8.8.8.8")], s) is not None  # the rightmost hop
    assert refusal("10.1.2.3", [(b"x-forwarded-for", b"10.9.9.9")], s) is not None  # an untrusted proxy
    assert refusal(None, [], s) is not None


def test_metrics_allow_must_parse() -> None:
    with pytest.raises(ValueError, match="QA_METRICS_ALLOW"):
        Settings(metrics_allow="10.0.0.0/8,intranet")


# ── a scrape never fails because a dependency is away ──────────────────────
@pytest.mark.integration
@SQLITE_ONLY
def test_redis_away_the_scrape_answers_without_its_families(settings_factory: Any, event_id: int) -> None:
    srv = start_server(settings_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens
    try:
        m = scrape(srv.base)
        assert value(m, "qa_scrape_errors_total", source="redis") == 1
        assert "qa_translation_queue_depth" not in names(m)
        assert value(m, "qa_bus_connected") == 0
        assert value(m, "qa_questions", status="pending") == 0  # the database still answers
        assert value(m, "qa_scrape_errors_total", source="database") == 0
        assert value(scrape(srv.base), "qa_scrape_errors_total", source="redis") == 2  # each scrape counts
    finally:
        srv.stop()


@pytest.mark.integration
def test_database_away_the_scrape_answers_without_its_families(tmp_path: Path, redis_url: str) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",  # nothing listens
        redis_url=redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}",
        secret_key="test-secret-" + "x" * 30,
        schedule_tick_seconds=0.2,
        auto_migrate=False,
    )
    srv = start_server(settings)
    try:
        m = scrape(srv.base)
        assert value(m, "qa_scrape_errors_total", source="database") == 1
        assert "qa_questions" not in names(m)
        assert value(m, "qa_translation_queue_depth", queue=settings.queue_name) == 0  # Redis still answers
        # The schedule clock cannot reach the database either: a supervised failure, counted.
        wait_until(
            lambda: (value(scrape(srv.base), "qa_task_failures_total", task="schedule-clock") or 0) >= 1,
            what="the clock's failures counted",
        )
    finally:
        srv.stop()


# ── a translation worker's own /metrics ────────────────────────────────────
@pytest.fixture
def argos_home(tmp_path: Path, settings: Settings) -> Path:
    """The project's test models, installed by a `qa-service models import` of its
    own: argostranslate is configured once per process, so never in this one."""
    root = tmp_path / "argos"
    from workers.models import TEST_MODELS

    subprocess.run(
        [sys.executable, "-m", "qa_service.cli", "models", "import", str(TEST_MODELS)],
        env=service_env(settings, QA_ARGOS_DIR=str(root)),
        check=True,
        capture_output=True,
        timeout=120 * SECOND,
    )
    return root


@pytest.fixture
def worker(settings: Settings, argos_home: Path) -> Iterator[tuple[ServiceProcess, str]]:
    port = free_port()
    proc = ServiceProcess(
        settings, "worker", QA_ARGOS_DIR=str(argos_home), QA_WORKER_METRICS_PORT=str(port), QA_WORKER_SWEEP_SECONDS="1"
    ).start()
    yield proc, f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.mark.integration
@SQLITE_ONLY
def test_a_worker_exports_translation_latency_and_outcomes(ctx: Context, event_id: int, worker) -> None:
    proc, base = worker
    speaker = int(sample_ids(ctx, event_id)["speakers"]["moscow"][1].id)  # reads Russian: route en-ru
    with open(PHRASES, encoding="utf-8") as f:
        text = next(csv.DictReader(f, delimiter="\t"))["en"]  # a phrase the test model knows
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": text, "language": "en"}
    qid = int(questions.ask(ctx, event_id, "viewer-0001", payload).question["id"])  # the worker's sweep queues it

    def translated() -> Samples | None:
        assert proc.alive(), proc.output()[-3000:]
        try:
            m = scrape(base)
        except httpx.HTTPError:
            return None  # not listening yet (models load first)
        return m if value(m, "qa_translations_total", route="en-ru", outcome="translated") else None

    m = wait_until(translated, 120 * SECOND, "a translation counted")
    assert value(m, "qa_translations_total", route="en-ru", outcome="translated") == 1
    assert value(m, "qa_translation_seconds_count", route="en-ru") == 1
    assert (value(m, "qa_translation_seconds_sum", route="en-ru") or 0) > 0
    assert "process_resident_memory_bytes" in names(m)
    with ctx.read() as db:
        from qa_service.db.models import Question

        q = db.get(Question, qid)
        assert q is not None and q.translation_state in ("done", "untranslated")
