# etld in a small non-root image. The build stage compiles etld and packages it as the .deb
# (scripts/install-deps --compile, then CPack); the runtime stage installs that .deb on top of
# scripts/install-deps --runtime, so the image holds exactly what the package holds.
#   scripts/container build     podman, on a Debian base made locally (docs/operations.md)
#   docker build -t etld .      where Docker Hub and the npm registry are reachable
# Run: the pipeline is /etc/etld/pipeline.yaml (a volume: mount your own directory there);
# the admin endpoint listens on $ETLD_ADMIN_ADDRESS (read-only unless a token file is mounted
# at $ETLD_ADMIN_TOKEN_FILE) and HEALTHCHECK asks its /healthz.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
# scripts/build-librdkafka builds librdkafka here unless it finds it built already;
# scripts/container mounts the host's build at this path (read-only).
ARG ETLD_CACHE=/opt/etld-cache
ARG JOBS=2
ENV ETLD_CACHE=${ETLD_CACHE}
WORKDIR /src
COPY scripts/install-deps scripts/build-librdkafka scripts/
RUN scripts/install-deps --compile
COPY . .
# -O2 as Debian builds its packages: gcc 12 reports false -Wrestrict errors at CMake's -O3.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
      -DETLD_TESTS=OFF -DETLD_BENCH=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null && \
    cmake --build /build -j "${JOBS}" --target package && \
    cp /build/etld_*_amd64.deb /etld.deb && rm -rf /build

FROM ${BASE_IMAGE}
COPY scripts/install-deps /tmp/install-deps
# curl is the HEALTHCHECK's HTTP client.
RUN /tmp/install-deps --runtime && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null && \
    rm -rf /var/lib/apt/lists/* /tmp/install-deps
COPY --from=build /etld.deb /tmp/etld.deb
# dpkg, not apt: it fails if install-deps --runtime missed one of the package's Depends.
# The postinst creates the system user etld.
RUN dpkg -i /tmp/etld.deb && rm /tmp/etld.deb
COPY packaging/container-entrypoint /usr/local/bin/etld-entrypoint
# The admin endpoint on every interface, for the HEALTHCHECK and Prometheus: /metrics, /healthz,
# /readyz, /pipeline and GET /reload answer anyone who reaches the port; POST /reload and PUT
# /log_level are off (403) unless a token file is mounted at ETLD_ADMIN_TOKEN_FILE
# (docs/operations.md, "Run in Docker").
ENV ETLD_ADMIN_ADDRESS=0.0.0.0:9090 ETLD_ADMIN_TOKEN_FILE=/run/secrets/etld_admin_token
EXPOSE 9090
USER etld
VOLUME /etc/etld
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${ETLD_ADMIN_ADDRESS##*:}/healthz" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/etld-entrypoint"]
CMD ["run", "/etc/etld/pipeline.yaml"]
