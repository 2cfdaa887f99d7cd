# One image, two roles:  docker run IMAGE serve   |   docker run IMAGE worker
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU torch first (argostranslate -> stanza -> torch), or pip takes a CUDA build of several GB.
# Offline or behind a mirror: --build-arg PIP_FIND_LINKS=/dir/with/wheels (and mount it).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS=
ENV PIP_FIND_LINKS=${PIP_FIND_LINKS}
WORKDIR /src
# Exact versions from the lock (scripts/lock), so an image built later installs the same.
COPY requirements ./requirements
RUN if [ -n "$PIP_FIND_LINKS" ]; then pip install -r requirements/torch.txt; \
    else pip install -r requirements/torch.txt --index-url "$TORCH_INDEX"; fi
COPY pyproject.toml README.md ./
COPY qa_service ./qa_service
COPY workers ./workers
COPY moderator_ui ./moderator_ui
COPY viewer_ui ./viewer_ui
RUN pip install -c requirements/lock.txt .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 qa && mkdir -p /data && chown qa /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    QA_HOST=0.0.0.0 QA_PORT=8000 QA_DATA_DIR=/data \
    XDG_DATA_HOME=/data/xdg ARGOS_PACKAGES_DIR=/data/argos-packages
USER qa
WORKDIR /home/qa
EXPOSE 8000
VOLUME ["/data"]
# A hub answers /healthz; a worker must have beaten its heartbeat in Redis lately (see `qa-service health`).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["qa-service", "health"]
ENTRYPOINT ["qa-service"]
CMD ["serve"]
