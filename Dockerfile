# syntax=docker/dockerfile:1
# One image holding all of dishpatch: the `stack` binary, which runs any
# part as `stack serve <part>` (edge, restaurant-svc, order-svc,
# notify-svc; each part's flags: `stack serve <part> --help`) or, with no
# command, the whole stack supervised. compose.yaml and deploy/k8s/ run it.
#
#   docker build -t dishpatch:local .      (or podman build)
#
# Built with the Rust toolchain (protoc comes vendored), run on distroless
# as a non-root user with nothing else in the image.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p stack && cp target/release/stack /stack \
    && mkdir /tls

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /stack /usr/local/bin/stack
# Where compose.yaml's `certs` service writes the certificates: a volume
# mounted here starts as this folder, owned by the user below.
COPY --from=build --chown=65532:65532 /tls /tls
USER 65532:65532
# The edge, then restaurant-svc, order-svc and notify-svc.
EXPOSE 3000 50051 50052 50053
ENTRYPOINT ["/usr/local/bin/stack"]
CMD ["--help"]
