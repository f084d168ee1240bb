# reconwatch container image.
#
#   docker build -t reconwatch .
#   docker run --rm --read-only --tmpfs /tmp -v reconwatch-state:/var/lib/reconwatch \
#     -e AWS_REGION=us-east-1 -e RECONWATCH__SQS__QUEUE_URL=https://sqs... reconwatch
#
# Needs BuildKit (the default builder of Docker 23+ and of `docker compose`) for
# the cache mounts: a rebuild after a source change reuses the compiled
# dependencies, and no dependency layer has to mirror the crate's layout.

# ---------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

WORKDIR /src
COPY . .

# The cargo registry and target/ live in BuildKit cache mounts, so the binary
# is copied out of target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin reconwatch \
    && install -D -m 0755 target/release/reconwatch /out/reconwatch

# The default configuration, minus the two example values that must come from
# the deployment: aws.region (left to the SDK chain: AWS_REGION, which ECS
# sets, or a profile) and sqs.queue_url (RECONWATCH__SQS__QUEUE_URL), so a
# container started without a queue fails at once with a clear message
# instead of polling the example account's queue.
RUN sed -E 's/^(region|queue_url) = /# \1 = /' config/reconwatch.toml >/out/reconwatch.toml \
    && ! grep -Eq '^(region|queue_url) = ' /out/reconwatch.toml

# ---------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: TLS to AWS and webhooks; curl: the HEALTHCHECK.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# Fixed, numeric non-root ids (Kubernetes runAsNonRoot can check them). The
# state directory is created here, owned by that user, so a fresh named volume
# mounted on it inherits the ownership.
RUN groupadd --system --gid 10001 reconwatch \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin reconwatch \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/reconwatch

COPY --from=builder /out/reconwatch /usr/local/bin/reconwatch
COPY --from=builder /out/reconwatch.toml /etc/reconwatch/reconwatch.toml

# Everything reconwatch writes (the sink outboxes) goes under the state
# directory, so the root filesystem can be mounted read-only (plus a /tmp tmpfs).
ENV RECONWATCH_CONFIG=/etc/reconwatch/reconwatch.toml \
    RECONWATCH__PIPELINE__STATE_DIR=/var/lib/reconwatch

WORKDIR /var/lib/reconwatch
VOLUME ["/var/lib/reconwatch"]
USER 10001:10001

# /metrics, /healthz, /readyz (telemetry.http_listen, default 0.0.0.0:9090).
EXPOSE 9090
# Liveness only; /readyz (SQS reached recently) is for readiness probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]

# SIGTERM (docker stop) drains for up to pipeline.shutdown_grace_secs (30 s):
# give the container a longer stop timeout (compose: stop_grace_period: 40s).
ENTRYPOINT ["reconwatch"]
CMD ["run"]
