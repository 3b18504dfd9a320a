#!/usr/bin/env bash
# Every whole pipeline (a ```yaml block with a top-level `stages:`) in the reference pages passes
# `etld validate`, so that an option renamed or removed in the code cannot live on in the docs.
# The secret and CA files the examples name are made in a temporary dir. docs/windows.md's
# examples are run, not just validated, by window_doc_examples_test.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

pages=(docs/configuration.md docs/connectors/kafka.md docs/connectors/postgres.md docs/formats.md
  docs/cdc.md docs/coming-from-kafka-connect.md)
mkdir -p "$tmp/secrets"
for s in pg_password kafka-password registry-password; do echo secret > "$tmp/secrets/$s"; done
cp /etc/ssl/certs/ca-certificates.crt "$tmp/registry-ca.pem" 2>/dev/null || echo > "$tmp/registry-ca.pem"
(umask 077 && head -c 32 /dev/urandom | base64 > "$tmp/admin.token")

python3 - "$src" "$tmp" "${pages[@]}" <<'PY'
import re, sys
root, tmp, pages = sys.argv[1], sys.argv[2], sys.argv[3:]
for page in pages:
    text = open(f"{root}/{page}").read()
    for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S)):
        if not re.search(r"^stages:", block, re.M):
            continue
        block = (block.replace("/run/secrets/", f"{tmp}/secrets/")
                 .replace("/etc/ssl/registry-ca.pem", f"{tmp}/registry-ca.pem")
                 .replace("/etc/etld/admin.token", f"{tmp}/admin.token"))
        open(f"{tmp}/{page.replace('/', '_')}.{i}.yaml", "w").write(block)
PY

count=0
for f in "$tmp"/*.yaml; do
  count=$((count + 1))
  check "$(basename "$f") validates" env KAFKA_BROKERS=127.0.0.1:9092 PG_DSN=postgresql://etld@127.0.0.1/etld \
    REGISTRY_USER=etld REGISTRY_PASSWORD=secret "$etld" validate "$f"
done
check "the pages hold whole pipelines ($count)" test "$count" -ge 6
finish
