#!/usr/bin/env bash
# The built-in stages under hostile input and the first errors a user meets, through the real
# binary: a record exploding into 200k events keeps memory bounded, an over-long line is skipped
# and dead-lettered, file_out refuses symlinks and creates 0640 files, and YAML mistakes are
# explained. No services needed.
source "$(dirname "$0")/lib.sh"

# --- flat_map of a ~1 MB array: outputs under demand, without copying the array ---------------
n=200000
python3 -c "import json; print(json.dumps({'id': 7, 'items': list(range($n))}, separators=(',', ':')))" >"$tmp/big.json"
cat >"$tmp/explode.yaml" <<YAML
pipeline: explode
stages:
  in: { type: stdin, max_line_bytes: 4194304 }  # the record is ~1.3 MB
  each: { type: flat_map, inputs: [in], explode: items, max_outputs: 1000000 }
  out: { type: file_out, inputs: [each], path: "$tmp/exploded.jsonl" }
YAML
/usr/bin/time -f '%M' -o "$tmp/explode.rss" "$etld" run "$tmp/explode.yaml" <"$tmp/big.json" 2>"$tmp/explode.err"
rss_kb=$(tail -1 "$tmp/explode.rss")
echo "flat_map of $n elements: peak RSS ${rss_kb} kB"
check "flat_map emits one output per element" test "$(wc -l <"$tmp/exploded.jsonl")" = "$n"
check "outputs carry the element, not the array" test "$(sed -n 200000p "$tmp/exploded.jsonl")" = '{"id":7,"item":199999}'
check "peak RSS stays under 200 MB (was quadratic: 2.8 GB for 8000 elements)" test "$rss_kb" -lt 204800

# The default cap: 10000 outputs, the input dead-lettered once with the reason.
cat >"$tmp/capped.yaml" <<YAML
stages:
  in: { type: stdin, max_line_bytes: 4194304 }  # the record is ~1.3 MB
  each: { type: flat_map, inputs: [in], explode: items }
  out: { type: file_out, inputs: [each], path: "$tmp/capped.jsonl" }
YAML
"$etld" run "$tmp/capped.yaml" <"$tmp/big.json" 2>"$tmp/capped.err"
check "max_outputs defaults to 10000" test "$(wc -l <"$tmp/capped.jsonl")" = 10000
check "the rest is dead-lettered with the reason" \
  grep -q "gave $n elements, more than max_outputs (10000): elements 10000 to $((n - 1)) were not emitted" "$tmp/capped.err"

# --- a 64 MB line on stdin: skipped (linearly), dead-lettered, the next lines read -------------
{ echo '{"a":1}'; head -c 67108864 /dev/zero | tr '\0' 'x'; echo; echo '{"a":2}'; } >"$tmp/long.txt"
cat >"$tmp/lines.yaml" <<YAML
stages:
  in: { type: stdin, format: text }
  out: { type: file_out, inputs: [in], path: "$tmp/lines.out", format: value }
YAML
/usr/bin/time -f '%M' -o "$tmp/lines.rss" "$etld" run "$tmp/lines.yaml" <"$tmp/long.txt" 2>"$tmp/lines.err"
check "the lines around the long one go through" diff <(printf '{"a":1}\n{"a":2}\n') "$tmp/lines.out"
check "the long line is dead-lettered by number and offset" \
  grep -q "line 2 of stdin (at byte 8) is longer than max_line_bytes (1048576); it was skipped" "$tmp/lines.err"
check "the long line is not buffered whole" test "$(tail -1 "$tmp/lines.rss")" -lt 65536

# --- file_out: no symlinks, 0640 -----------------------------------------------------------------
echo secret >"$tmp/target"
ln -s "$tmp/target" "$tmp/link.jsonl"
cat >"$tmp/link.yaml" <<YAML
stages:
  in: { type: generate, count: 1 }
  out: { type: file_out, inputs: [in], path: "$tmp/link.jsonl" }
YAML
set +e
"$etld" validate "$tmp/link.yaml" 2>"$tmp/link.err"; link_rc=$?
set -e
check "a symlinked file_out path is refused" test "$link_rc" = 1
check "the refusal says why" grep -q "link.yaml:3:.*is a symbolic link" "$tmp/link.err"
check "the link's target is untouched" test "$(cat "$tmp/target")" = secret
rm -f "$tmp/capped.jsonl"
(umask 022 && "$etld" run "$tmp/capped.yaml" <"$tmp/big.json" 2>/dev/null)
check "file_out creates 0640 files" test "$(stat -c %a "$tmp/capped.jsonl")" = 640

# --- the first YAML mistakes ---------------------------------------------------------------------
cat >"$tmp/nullsink.yaml" <<'YAML'
stages:
  in: { type: generate, count: 3 }
  out:
    type: null
    inputs: [in]
YAML
check "type: null is the null sink" "$etld" validate "$tmp/nullsink.yaml"
set +e
printf 'stages:\n  in:\n    type: generate\n  f:\n    type: filter\n    inputs: [in]\n    where: a == "x: y"\n  out: { type: stdout, inputs: [f] }\n' >"$tmp/colon.yaml"
"$etld" validate "$tmp/colon.yaml" 2>"$tmp/colon.err"
python3 -c "print('stages: ' + '[' * 100000)" >"$tmp/deep.yaml"
"$etld" validate "$tmp/deep.yaml" 2>"$tmp/deep.err"
set -e
check "': ' in an expression: quote it" grep -qF "quote the value: where: 'a == \"x: y\"'" "$tmp/colon.err"
check "deep nesting is refused where it starts" \
  grep -q 'deep.yaml:1:73: error: invalid YAML: brackets nest deeper than 64 levels' "$tmp/deep.err"
check "--help lists etld reference" bash -c "'$etld' --help | grep -q 'etld reference'"

finish
