# etld in a small non-root image. Build: podman build -t etld . (or docker build).
# Not yet built or run by the test suite (that comes with the operations work).
# Stage 1 builds with the same dependency script CI uses; stage 2 carries only the runtime.
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps scripts/build-librdkafka scripts/
RUN apt-get update && apt-get install -y --no-install-recommends npm ca-certificates && \
    ETLD_CACHE=/opt/etld-cache scripts/install-deps
COPY . .
RUN ETLD_CACHE=/opt/etld-cache cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DETLD_TESTS=OFF \
      -DETLD_RDKAFKA_PREFIX=/opt/etld-cache/librdkafka-2.12.0 -DCMAKE_INSTALL_RPATH=/usr/lib/etld && \
    cmake --build /build -j2

FROM debian:bookworm-slim
COPY scripts/install-deps /tmp/install-deps
RUN /tmp/install-deps --runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps && \
    useradd --system --no-create-home --shell /usr/sbin/nologin etld
COPY --from=build /opt/etld-cache/librdkafka-2.12.0/lib/librdkafka.so.1 /usr/lib/etld/
COPY --from=build /build/etld /usr/bin/etld
ENV LD_LIBRARY_PATH=/usr/lib/etld
COPY examples/ /etc/etld/examples/
USER etld
VOLUME /etc/etld
ENTRYPOINT ["/usr/bin/etld"]
CMD ["run", "/etc/etld/pipeline.yaml"]
