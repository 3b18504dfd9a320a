#!/usr/bin/env bash
# The admin endpoint of the real binary (`etld run` of a generate -> map -> null pipeline),
# through curl and raw sockets: every endpoint, the Prometheus text checked by a strict parser,
# runtime log levels (PUT /log_level, SIGUSR1/SIGUSR2), and the answers to malformed, oversized,
# misrouted and too many concurrent requests, with their exact status codes. The changes use the
# bearer token of --admin-token-file; refusals are tested in admin_attack_test.sh.
source "$(dirname "$0")/lib.sh"

cat >"$tmp/p.yaml" <<'YAML'
pipeline: admin_e2e
threads: 2
admin:
  address: 127.0.0.1:1   # overridden by --admin-address below
stages:
  gen:
    type: generate
    rate: 2000
    template: '{"n": {{seq}}}'
  tag:
    type: map
    inputs: [gen]
    set: { twice: "n * 2" }
  out:
    type: "null"
    inputs: [tag]
YAML
token=$(head -c 24 /dev/urandom | base64)
(umask 077 && echo "$token" >"$tmp/token")
"$etld" run "$tmp/p.yaml" --admin-address 127.0.0.1:0 --admin-token-file "$tmp/token" 2>"$tmp/run.log" &
pid=$!
port=$(admin_port "$tmp/run.log")
check "--admin-address overrides the file and port 0 picks a free port" test -n "$port" -a "$port" != 1
base="http://127.0.0.1:$port"
status() { curl -s -o "$tmp/body" -w '%{http_code}' "$@"; }
auth=(-H "Authorization: Bearer $token")
sleep 1  # let events flow

check "GET /healthz is 200 ok" test "$(status "$base/healthz")/$(cat "$tmp/body")" = "200/ok"
check "GET /readyz is 200 while the pipeline runs" test "$(status "$base/readyz")" = 200

check "GET /metrics is 200" test "$(status -D "$tmp/headers" "$base/metrics")" = 200
check "... in text format 0.0.4" grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/headers"
check "... and well-formed" python3 "$promcheck" <"$tmp/body" >"$tmp/samples"
out_in=$(metric 'etld_stage_events_in_total{instance="0",pipeline="admin_e2e",stage="out"}')
gen_out=$(metric 'etld_stage_events_out_total{instance="0",pipeline="admin_e2e",stage="gen"}')
acked=$(metric 'etld_stage_events_acked_total{instance="0",pipeline="admin_e2e",stage="out"}')
echo "gen out $gen_out, sink in $out_in, acked $acked" >&2
check "events reach the sink" python3 -c "import sys; sys.exit(not 0 < float('$out_in') <= float('$gen_out'))"
check "the sink acks what it received (null acks at once)" test "$acked" = "$out_in"
check "the map's processing-time histogram counts its batches" \
  python3 -c "import sys; sys.exit(not float('$(metric 'etld_stage_batch_processing_seconds_count{instance="0",pipeline="admin_e2e",stage="tag"}')') > 0)"
check "every per-stage metric is there" bash -c "for m in events_in_total events_out_total batches_in_total events_acked_total events_dead_lettered_total events_failed_total restarts_total buffered_events outstanding_demand; do grep -q \"^etld_stage_\$m{instance=\\\"0\\\",pipeline=\\\"admin_e2e\\\",stage=\\\"out\\\"}\" '$tmp/samples' || exit 1; done"
check "etld_pipeline_ready is 1" test "$(metric 'etld_pipeline_ready{pipeline="admin_e2e"}')" = 1
# Polled for up to 5 s (wait_for): on a loaded machine a signal or a batch takes a moment to show.
grown_since_first_scrape() {
  status "$base/metrics" >/dev/null; python3 "$promcheck" <"$tmp/body" >"$tmp/samples2"
  local later
  later=$(awk 'index($0, "etld_stage_events_in_total{instance=\"0\",pipeline=\"admin_e2e\",stage=\"out\"}") == 1 {print $NF}' "$tmp/samples2")
  python3 -c "import sys; sys.exit(not float('$later') > float('$out_in'))"
}
check "counters grow between scrapes" wait_for 5 grown_since_first_scrape

check "GET /pipeline is 200" test "$(status "$base/pipeline")" = 200
check "... the stage graph with types, roles, inputs and live counters" python3 - "$tmp/body" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = {x["name"]: x for x in d["stages"]}
assert d["pipeline"] == "admin_e2e" and d["ready"] is True and d["generation"] == 1, d
assert [x["name"] for x in d["stages"]] == ["gen", "tag", "out"], d
assert (s["gen"]["type"], s["gen"]["role"], s["gen"]["inputs"]) == ("generate", "source", [])
assert (s["tag"]["type"], s["tag"]["role"], s["tag"]["inputs"]) == ("map", "transform", ["gen"])
assert (s["out"]["type"], s["out"]["role"], s["out"]["inputs"]) == ("null", "sink", ["tag"])
assert s["out"]["concurrency"] == 1 and len(s["out"]["instances"]) == 1
i = s["out"]["instances"][0]
assert 0 < i["events_in"] and 0 < i["acked"] <= i["events_in"], i
PY

check "GET /reload is the start-up outcome" test "$(status "$base/reload")" = 200
check "... generation 1, ok, with the config hash" python3 -c "
import json; d = json.load(open('$tmp/body')); assert d['generation'] == 1 and d['ok'] is True and len(d['config_hash']) == 16, d"
check "POST /reload of an unchanged file is 200, generation 1" test "$(status "${auth[@]}" -X POST "$base/reload")" = 200
check "... nothing restarted" python3 -c "
import json; d = json.load(open('$tmp/body')); assert d['generation'] == 1 and d['ok'] and d['restarted_stages'] == [], d"
sed -i 's/twice: "n \* 2"/twice: "n * 3"/' "$tmp/p.yaml"
check "POST /reload after a transform's option changed is 200" test "$(status "${auth[@]}" -X POST "$base/reload")" = 200
check "... generation 2, only that stage restarted" python3 -c "
import json; d = json.load(open('$tmp/body')); assert d['generation'] == 2 and d['ok'] and d['restarted_stages'] == ['tag'], d"
sed -i 's/    inputs: \[tag\]/    inputs: [tag]\n    concurrency: 2/' "$tmp/p.yaml"
check "POST /reload of a wiring change (a new pipeline on a new pool) is 200" test "$(status "${auth[@]}" -X POST "$base/reload")" = 200
check "... generation 3, every stage restarted" python3 -c "
import json; d = json.load(open('$tmp/body')); assert d['generation'] == 3 and d['ok'] and d['restarted_stages'] == ['gen', 'tag', 'out'], d"
check "the endpoint moved with the pipeline: same port, ready again" bash -c "for _ in \$(seq 50); do [ \"\$(curl -s -o /dev/null -w '%{http_code}' $base/readyz)\" = 200 ] && exit 0; sleep 0.1; done; exit 1"
check "... and /pipeline shows the new wiring" bash -c "curl -s $base/pipeline | python3 -c \"import json,sys; d=json.load(sys.stdin); assert d['generation']==3 and len([s for s in d['stages'] if s['name']=='out'][0]['instances'])==2, d\""
echo "stages: [" >>"$tmp/p.yaml"
check "POST /reload of a broken file is 422" test "$(status "${auth[@]}" -X POST "$base/reload")" = 422
check "... with file:line:column, generation 3 keeps running" python3 -c "
import json; d = json.load(open('$tmp/body')); assert d['generation'] == 3 and not d['ok'] and 'p.yaml:' in d['error'], d"
check "GET /reload is the last outcome" bash -c "curl -s $base/reload | grep -q '\"ok\":false'"

check "GET /log_level is the configured level" test "$(status "$base/log_level")/$(cat "$tmp/body")" = "200/info"
check "PUT /log_level debug is 200" test "$(status "${auth[@]}" -X PUT --data-binary debug "$base/log_level")/$(cat "$tmp/body")" = "200/debug"
check "... and stays" test "$(curl -s "$base/log_level")" = debug
check "PUT /log_level with an unknown level is 400" test "$(status "${auth[@]}" -X PUT --data-binary loud "$base/log_level")" = 400
check "... naming the levels" grep -q "trace, debug, info" "$tmp/body"
level_is() { test "$(curl -s "$base/log_level")" = "$1"; }
kill -USR1 "$pid"
check "SIGUSR1 raises verbosity one step" wait_for 5 level_is trace
kill -USR2 "$pid"
check "SIGUSR2 restores the configured level" wait_for 5 level_is info

check "an unknown path is 404" test "$(status "$base/nope")" = 404
check "DELETE /metrics is 405" test "$(status -D "$tmp/headers" -X DELETE "$base/metrics")" = 405
check "... with Allow: GET" grep -qi '^allow: GET' "$tmp/headers"
check "POST /healthz is 405" test "$(status -X POST "$base/healthz")" = 405
check "PUT /reload is 405" test "$(status -X PUT "$base/reload")" = 405
check "a header over 8 KiB is 431" test "$(status -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$base/healthz")" = 431
check "a body over 4 KiB is 413" test "$(status "${auth[@]}" -X PUT --data-binary "$(head -c 5000 /dev/zero | tr '\0' a)" "$base/log_level")" = 413

raw() {  # raw bytes in, the status line's code out
  python3 - "$port" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
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
check "garbage bytes are 400" test "$(raw '\x00\x01\x02\xff\xfe garbage\r\n\r\n')" = 400
check "a bad request line is 400" test "$(raw 'GET\r\n\r\n')" = 400
check "a bad HTTP version is 400" test "$(raw 'GET /healthz HTTP/9.x\r\n\r\n')" = 400
check "a bad header line is 400" test "$(raw 'GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n')" = 400
check "a Content-Length past the body limit is 413 before any body" test "$(raw 'PUT /log_level HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n')" = 413
check "keep-alive: two requests on one connection" test "$(curl -s "$base/healthz" "$base/healthz")" = "$(printf 'ok\nok')"

check "48 concurrent requests all succeed" python3 - "$port" <<'PY'
import concurrent.futures, sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/metrics"
with concurrent.futures.ThreadPoolExecutor(48) as ex:
    codes = list(ex.map(lambda _: urllib.request.urlopen(url, timeout=10).status, range(48)))
assert codes == [200] * 48, codes
PY
check "past 64 idle connections from one address, a new one is served and the oldest idle one closed" python3 - "$port" <<'PY'
import socket, sys, time, urllib.request
port = int(sys.argv[1])
held = []
for _ in range(64):
    held.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(0.005)  # in order: the first is the one that waited longest
time.sleep(0.5)
assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200
held[0].settimeout(5)
assert held[0].recv(1) == b"", "the oldest idle connection is still open"
held[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
held[-1].settimeout(5)
assert held[-1].recv(4096).startswith(b"HTTP/1.1 200"), "the newest idle connection was closed"
for s in held:
    s.close()
PY
check "the endpoint still serves after all that" test "$(status "$base/healthz")" = 200

kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
pid=
check "SIGTERM drains and exits 0 with the endpoint up" test "$rc" = 0
if [ "$fail" != 0 ]; then echo "--- run log"; tail -30 "$tmp/run.log"; fi >&2
finish
