#!/usr/bin/env bash
# The admin endpoint of the real binary, attacked: changes without the token, with a wrong one,
# from another origin or through a rebound DNS name are refused (and logged, the token never);
# a token file others can read stops validate and run; slowloris (200 connections dribbling
# header bytes, reconnecting when closed) does not take /healthz down; oversized and malformed
# requests are answered; and no answer holds the database password of the pipeline.
# No service needed: the postgres sink's database is not there (it retries, unready).
source "$(dirname "$0")/lib.sh"

password="Pw-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
token=$(head -c 24 /dev/urandom | base64)
(umask 077 && echo "$token" >"$tmp/token")
cat >"$tmp/p.yaml" <<YAML
pipeline: attack_e2e
threads: 2
shutdown_timeout: 2s
admin:
  address: 127.0.0.1:0
  token_file: $tmp/token
stages:
  gen:
    type: generate
    rate: 100
    template: '{"id": {{seq}}}'
  out:
    type: postgres
    inputs: [gen]
    dsn: "postgresql://etl:$password@127.0.0.1:1/warehouse?connect_timeout=1"
    table: attack_e2e
    columns:
      id: { from: id, type: bigint }
YAML

# --- a token file others can read: refused at validation and at start, saying how to fix it
cp "$tmp/token" "$tmp/open-token" && chmod 644 "$tmp/open-token"
sed "s#token_file: .*#token_file: $tmp/open-token#" "$tmp/p.yaml" >"$tmp/open.yaml"
set +e
"$etld" validate "$tmp/open.yaml" 2>"$tmp/validate.err"
rc=$?
"$etld" run "$tmp/p.yaml" --admin-token-file "$tmp/open-token" 2>"$tmp/run-open.err" &
wait $!
run_rc=$?
set -e
check "validate refuses a token file readable by others (exit 1)" test "$rc" = 1
check "... at its line and column, saying chmod 600" grep -qF \
  "$tmp/open.yaml:6:15: error: admin token file '$tmp/open-token' gives group or others access (mode 0644): anyone who reads it can reload etld (chmod 600 '$tmp/open-token')" \
  "$tmp/validate.err"
check "run --admin-token-file with such a file exits 1" test "$run_rc" = 1
check "... saying why" grep -qF "admin token file '$tmp/open-token' gives group or others access (mode 0644)" "$tmp/run-open.err"
check "neither prints the token" bash -c "! grep -qF -- '$token' '$tmp/validate.err' '$tmp/run-open.err'"

"$etld" run "$tmp/p.yaml" 2>"$tmp/run.log" &
pid=$!
port=$(admin_port "$tmp/run.log")
check "the endpoint is up" test -n "$port"
base="http://127.0.0.1:$port"
n=0
# fetch NAME CURL-ARGS...: the status code; the whole answer (headers and body) kept in $tmp/answers/NAME.
mkdir "$tmp/answers"
fetch() {
  local name=$1; shift
  curl -s -D "$tmp/answers/$name" -o "$tmp/answers/$name.body" -w '%{http_code}' --max-time 10 "$@"
  cat "$tmp/answers/$name.body" >>"$tmp/answers/$name"
}
level() { curl -s "$base/log_level"; }
generation() { curl -s "$base/reload" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }
auth=(-H "Authorization: Bearer $token")

# --- reading is open; changes need the token
for path in metrics healthz pipeline reload log_level; do
  check "GET /$path answers without a token" test "$(fetch "get_$path" "$base/$path")" = 200
done
check "GET /readyz answers 503 (no database) without a token" test "$(fetch get_readyz "$base/readyz")" = 503
check "POST /reload without a token is 401" test "$(fetch no_token_reload -X POST "$base/reload")" = 401
check "... saying what it needs" grep -q "needs 'Authorization: Bearer TOKEN'" "$tmp/answers/no_token_reload"
check "PUT /log_level off without a token is 401" test "$(fetch no_token_level -X PUT --data-binary off "$base/log_level")" = 401
wrong=${token%?}x && [ "$wrong" != "$token" ] || wrong=${token%?}y  # the last character changed
check "a wrong token is 401" test "$(fetch wrong_token -H "Authorization: Bearer $wrong" -X PUT --data-binary off "$base/log_level")" = 401
check "a prefix of the token is 401" test "$(fetch prefix_token -H "Authorization: Bearer ${token:0:10}" -X PUT --data-binary off "$base/log_level")" = 401
check "the token as Basic credentials is 401" test "$(fetch basic -u "etld:$token" -X PUT --data-binary off "$base/log_level")" = 401
check "the level did not change" test "$(level)" = info

# --- a web page: a simple cross-origin form POST, and DNS rebinding
check "a cross-origin form POST /reload is refused" test "$(fetch form -H 'Origin: http://evil.example' \
  -H 'Content-Type: application/x-www-form-urlencoded' --data 'a=b' "$base/reload")" != 200
check "... even with the token: 403" test "$(fetch cross_origin "${auth[@]}" -H 'Origin: http://evil.example' -X POST "$base/reload")" = 403
check "Sec-Fetch-Site: cross-site with the token is 403" test "$(fetch cross_site "${auth[@]}" -H 'Sec-Fetch-Site: cross-site' -X PUT --data-binary off "$base/log_level")" = 403
check "no reload happened" test "$(generation)" = 1
check "a rebound DNS name (Host: evil.example) cannot read /pipeline: 403" \
  test "$(fetch rebound -H "Host: evil.example:$port" "$base/pipeline")" = 403
check "... nor change anything" test "$(fetch rebound_put "${auth[@]}" -H "Host: evil.example:$port" -X PUT --data-binary off "$base/log_level")" = 403
check "... but /healthz answers whatever the Host" test "$(fetch rebound_health -H "Host: evil.example:$port" "$base/healthz")" = 200
check "Host: localhost is served" test "$(fetch localhost -H "Host: localhost:$port" "$base/metrics")" = 200

# --- with the token: the change is made, and logged with the client's address
check "PUT /log_level debug with the token is 200" test "$(fetch level_debug "${auth[@]}" -X PUT --data-binary debug "$base/log_level")" = 200
check "PUT /log_level off with the token is 200" test "$(fetch level_off "${auth[@]}" -X PUT --data-binary off "$base/log_level")" = 200
check "POST /reload with the token is 200" test "$(fetch reload_ok "${auth[@]}" -X POST "$base/reload")" = 200
check "same-origin POST with the token is 200" test "$(fetch same_origin "${auth[@]}" -H "Origin: http://127.0.0.1:$port" -X POST "$base/reload")" = 200
check "PUT /log_level info with the token is 200" test "$(fetch level_info "${auth[@]}" -X PUT --data-binary info "$base/log_level")" = 200
logged() { grep -qE "$1" "$tmp/run.log"; }
check "the changes are logged with the client's address" wait_for 5 logged 'admin endpoint: log level info -> debug, set by 127\.0\.0\.1:[0-9]+'
check "... the one that turned logging off too" logged 'admin endpoint: log level debug -> off, set by 127\.0\.0\.1:[0-9]+'
check "... and the reload while logging was off" logged 'admin endpoint: reload requested by 127\.0\.0\.1:[0-9]+'
check "refusals are logged with the client's address" logged 'admin endpoint: refused (POST|PUT) /(reload|log_level) from 127\.0\.0\.1:[0-9]+: (no bearer token|wrong bearer token|cross-origin)'
check "... and the rebound Host" logged 'admin endpoint: refused GET /pipeline from 127\.0\.0\.1:[0-9]+: Host not accepted'

# --- slowloris: /healthz stays up
python3 "$src/tests/e2e/support/slowloris.py" 127.0.0.1 "$port" 200 9 0.5 >"$tmp/slowloris.out" &
bg_pids+=($!)
sleep 2  # the connections are open and dribbling
healthy=0 tries=0
while kill -0 "${bg_pids[-1]}" 2>/dev/null && ((tries < 20)); do
  tries=$((tries + 1))
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/healthz" || true)
  [ "$code" = 200 ] && healthy=$((healthy + 1))
  sleep 0.3
done
wait "${bg_pids[-1]}" || true
echo "slowloris: $(cat "$tmp/slowloris.out"); /healthz 200 in $healthy of $tries tries" >&2
check "under slowloris /healthz answered every time ($healthy of $tries)" test "$healthy" = "$tries" -a "$tries" -ge 10
check "... 200 connections were held, and those closed came back" python3 -c "
import sys; w = open('$tmp/slowloris.out').read().split(); sys.exit(not (int(w[1]) >= 300 and int(w[3]) >= 100))"
check "after it, /healthz answers" test "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200

# --- oversized and malformed requests are answered
raw() {  # raw bytes in (python escapes), the status line's code out
  python3 - "$port" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
try:
    s.sendall(eval('b"' + sys.argv[2] + '"'))
except (BrokenPipeError, ConnectionResetError):
    pass  # answered and closed before all was sent
data = b""
while True:
    try:
        chunk = s.recv(4096)
    except (ConnectionResetError, socket.timeout):
        break
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[1] if data.startswith(b"HTTP/1.1 ") else "none")
PY
}
check "a 1 MB request line is 431" test "$(raw 'GET /" + b"a" * 1000000 + b" HTTP/1.1\r\n\r\n')" = 431
check "10000 headers are 431" test "$(raw 'GET /healthz HTTP/1.1\r\n" + b"X: y\r\n" * 10000 + b"\r\n')" = 431
check "a 1 MB body with the token is 413" test "$(raw 'PUT /log_level HTTP/1.1\r\nAuthorization: Bearer '"$token"'\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 1000000 + b"')" = 413
check "a bad chunked body is 400" test "$(raw 'PUT /log_level HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')" = 400
check "NUL bytes are 400" test "$(raw 'GET /healthz\x00 HTTP/1.1\r\n\r\n')" = 400
check "two Host headers are 400" test "$(raw 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n')" = 400
check "TLS bytes are 400" test "$(raw '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n')" = 400
check "after all that /healthz answers" test "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200

# --- nothing secret in any answer: the password of the DSN, the token
echo "stages: [" >>"$tmp/p.yaml"
check "POST /reload of a broken file is 422" test "$(fetch reload_broken "${auth[@]}" -X POST "$base/reload")" = 422
check "GET /reload after it" test "$(fetch reload_after "$base/reload")" = 200
fetch not_found "$base/nope" >/dev/null
fetch not_allowed -X DELETE "$base/metrics" >/dev/null
fetch readyz_again "$base/readyz" >/dev/null
fetch pipeline_again "$base/pipeline" >/dev/null
check "the answers were kept ($(find "$tmp/answers" -name '*.body' | wc -l) of them)" test "$(find "$tmp/answers" -name '*.body' | wc -l)" -ge 25
check "/readyz names the unconnected sink without the password" grep -q "not connected to PostgreSQL" "$tmp/answers/get_readyz"
check "no answer holds the database password" bash -c "! grep -rlF -- '$password' '$tmp/answers'"
check "no answer holds the token" bash -c "! grep -rlF -- '$token' '$tmp/answers'"
check "the log never holds the token" bash -c "! grep -qF -- '$token' '$tmp/run.log'"

check "etld still runs after all that" kill -0 "$pid"
kill -TERM "$pid"  # it cannot drain without its database: shutdown_timeout ends it
set +e; wait "$pid"; set -e
pid=
if [ "$fail" != 0 ]; then echo "--- run log"; tail -40 "$tmp/run.log"; fi >&2
finish
