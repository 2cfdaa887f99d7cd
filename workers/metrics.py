"""A translation worker's Prometheus metrics, on ``http://QA_WORKER_METRICS_HOST:
QA_WORKER_METRICS_PORT/metrics`` when the port is set (default: not served).

- ``qa_translation_seconds{route}``: one engine call, i.e. one batch of texts along
  one route (``en-ru``, or ``es-en-ru`` through a pivot).
- ``qa_translations_total{route,outcome}``: texts by outcome: ``translated`` by
  the engine, ``cached`` (found in the Redis cache), ``failed`` (the engine call
  raised, a job timeout included).

A registry of this module's own (not prometheus_client's global one); the process
collector adds memory, CPU and open files (models are the memory).
"""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, start_http_server

from qa_service.settings import Settings

log = logging.getLogger(__name__)
# A tiny test model answers in milliseconds; a real batch on a busy CPU, up to the job timeout.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REGISTRY = CollectorRegistry()
TRANSLATION_SECONDS = Histogram(
    "qa_translation_seconds", "One engine call (a batch) along a route", ["route"], buckets=BUCKETS, registry=REGISTRY
)
TRANSLATIONS = Counter("qa_translations", "Texts by route and outcome", ["route", "outcome"], registry=REGISTRY)
ProcessCollector(registry=REGISTRY)


def route_name(route: list[str]) -> str:
    return "-".join(route)


def serve(settings: Settings) -> WSGIServer | None:
    """Start the /metrics server (a daemon thread) if QA_WORKER_METRICS_PORT is set.
    A port already taken stops the worker at start: each worker needs its own."""
    port = settings.worker_metrics_port
    if port is None:
        return None
    try:
        server, _thread = start_http_server(port, addr=settings.worker_metrics_host, registry=REGISTRY)
    except OSError as exc:
        raise SystemExit(
            f"QA_WORKER_METRICS_PORT={port}: cannot listen on {settings.worker_metrics_host} ({exc}); "
            "give each worker on a machine a port of its own"
        ) from None
    log.info("worker metrics at http://%s:%d/metrics", settings.worker_metrics_host, port)
    return server
