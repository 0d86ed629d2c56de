# The thin watcher: bash, curl, jq and kubectl on Debian slim, as non-root.
#   docker build -f docker/watcher.Dockerfile -t svc-lbaas-watcher:0.1.0 .
FROM bitnami/kubectl:1.34 AS kubectl

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash ca-certificates curl jq \
    && rm -rf /var/lib/apt/lists/*
COPY --from=kubectl /opt/bitnami/kubectl/bin/kubectl /usr/local/bin/kubectl
COPY docker/watcher.sh /usr/local/bin/svc-lbaas-watcher
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/svc-lbaas-watcher"]
