# faktura's image: built with the Rust toolchain, run from a slim base with
# only the binary and CA certificates (the PDF fonts are embedded in it).
#   docker build -t registry.example/faktura:0.1.0 .
# The build stage runs exactly the command CI checks (.ci/run compares them).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# BUILD: cargo build --release --locked
RUN cargo build --release --locked

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/faktura --create-home faktura
COPY --from=build /src/target/release/faktura /usr/bin/faktura
USER 10001
WORKDIR /var/lib/faktura
ENTRYPOINT ["/usr/bin/faktura"]
CMD ["--help"]
