# Kasal image: one image for every role of the distributed deployment
# (`kasal serve`, `kasal worker`, `kasal kafka init`, and the other CLI commands).
#
#   docker build -t kasal .
#   docker run --rm -p 8000:8000 -v kasal-data:/data kasal        # embedded: API on :8000
#   docker run --rm kasal --help                                 # any other kasal command
#
# docker-compose.kafka.yml runs the distributed deployment (Kafka, PostgreSQL, Qdrant).
FROM python:3.11-slim

# The last four keep CrewAI and litellm off the network (telemetry, tracing, the remote
# cost map). KASAL_DATA_DIR holds admin.key, model caches and, embedded, the event log and
# read models.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KASAL_DATA_DIR=/data \
    CREWAI_DISABLE_TELEMETRY=true \
    OTEL_SDK_DISABLED=true \
    CREWAI_TRACING_ENABLED=false \
    LITELLM_LOCAL_MODEL_COST_MAP=True

# Every compiled dependency ships a manylinux wheel for CPython 3.11 on x86_64, so no
# compiler is installed. The sources are built into a regular (non-editable) install.
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY domain ./domain
COPY commands ./commands
COPY projections ./projections
COPY adapters ./adapters
COPY api ./api
COPY streams ./streams
COPY kasal ./kasal
RUN pip install --no-cache-dir -c requirements.lock . \
    && rm -rf /src

# A non-root user owns the data volume and the working directory.
RUN groupadd --gid 1000 kasal \
    && useradd --uid 1000 --gid kasal --create-home --home-dir /home/kasal \
        --shell /usr/sbin/nologin kasal \
    && mkdir -p /app /data \
    && chown kasal:kasal /app /data

WORKDIR /app
# Sample crews: `kasal run examples/math_crew.yaml`, `kasal import examples/research_crew`.
COPY --chown=kasal:kasal examples ./examples

USER kasal
VOLUME /data
EXPOSE 8000

ENTRYPOINT ["kasal"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
