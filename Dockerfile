# Two images from one file:
#   docker build --target hub    -t qa-hub .      qa-service serve: no torch, no Argos (the default target)
#   docker build --target worker -t qa-worker .   qa-service worker: the [worker] extra and CPU torch
# The worker image holds everything, so it also runs `serve`, `demo` and the model commands.
# deploy/compose.yaml builds both.

# The project's sources, copied once for both builds.
FROM scratch AS sources
COPY pyproject.toml README.md /src/
COPY qa_service /src/qa_service
COPY workers /src/workers
COPY moderator_ui /src/moderator_ui
COPY viewer_ui /src/viewer_ui

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Offline or behind a mirror: --build-arg PIP_FIND_LINKS=/dir/with/wheels (and mount it).
ARG PIP_FIND_LINKS=
ENV PIP_FIND_LINKS=${PIP_FIND_LINKS}
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Exact versions from the lock (scripts/lock), so an image built later installs the same.
COPY requirements ./requirements

FROM build AS build-hub
COPY --from=sources /src /src
RUN pip install -c requirements/lock.txt . \
    && ! python -c "import torch" 2>/dev/null \
    && ! python -c "import argostranslate" 2>/dev/null

FROM build AS build-worker
# CPU torch first (argostranslate -> stanza -> torch), or pip takes a CUDA build of several GB.
# Its own layer, before the sources: a code change does not download it again.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN if [ -n "$PIP_FIND_LINKS" ]; then pip install -r requirements/torch.txt; \
    else pip install -r requirements/torch.txt --index-url "$TORCH_INDEX"; fi
COPY --from=sources /src /src
RUN pip install -c requirements/lock.txt ".[worker]"

# What both images share: an unprivileged user, the /data volume, the entry point.
FROM python:3.11-slim AS runtime
# /data/argos: a worker's language packs (QA_ARGOS_DIR's default); owned by qa here, so a
# volume mounted there (deploy/compose.yaml shares one between workers) starts writable.
RUN useradd --create-home --uid 10001 qa && mkdir -p /data/argos && chown -R qa /data
ENV PATH=/opt/venv/bin:$PATH \
    QA_HOST=0.0.0.0 QA_PORT=8000 QA_DATA_DIR=/data
WORKDIR /home/qa
VOLUME ["/data"]
ENTRYPOINT ["qa-service"]

FROM runtime AS worker
COPY --from=build-worker /opt/venv /opt/venv
USER qa
# Language packs live in QA_ARGOS_DIR (default /data/argos): mount a volume there and run
# `qa-service models import /packs` once; running workers pick new packs up by themselves.
# (qa_service points argostranslate's own directories there: no ARGOS_* / XDG_* needed.)
# Healthy when this container's worker beat its heartbeat in Redis lately (`qa-service health`).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["qa-service", "health"]
CMD ["worker"]

FROM runtime AS hub
COPY --from=build-hub /opt/venv /opt/venv
USER qa
EXPOSE 8000
# Liveness: the hub answers /healthz (`qa-service health`). A balancer asks /readyz instead.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["qa-service", "health"]
CMD ["serve"]
