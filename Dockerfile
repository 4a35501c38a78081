# syntax=docker/dockerfile:1
#
# berth: one static binary on a distroless base, running as a non-root user.
#
#   docker build -t berth .
#   docker run --rm -p 8080:8080 -v berth-data:/var/lib/berth berth serve --addr 0.0.0.0:8080 --demo
#
# With PostgreSQL, pass --database postgres://… (or BERTH_DATABASE_URL); see compose.yaml and
# docs/OPERATIONS.md. The GraphiQL assets and the migrations are embedded: the build needs
# neither npm nor network access beyond the Go module proxy.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: the SQLite driver is pure Go, so the binary is fully static.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/berth ./cmd/berth \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
# The data directory (the SQLite file, or only the token signing key when the database is
# PostgreSQL) belongs to the non-root user, so that a new volume mounted there does too.
COPY --from=build --chown=65532:65532 /out/data /var/lib/berth
COPY --from=build /out/berth /usr/local/bin/berth
USER 65532:65532
ENV BERTH_DATA=/var/lib/berth
VOLUME ["/var/lib/berth"]
EXPOSE 8080
# No HEALTHCHECK: the image has no shell or curl. Probe GET /healthz (liveness) and
# GET /readyz (the database answers) from the orchestrator or the load balancer.
ENTRYPOINT ["/usr/local/bin/berth"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
