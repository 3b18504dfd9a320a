#!/usr/bin/env bash
# The tree as committed: no merge-conflict markers left in any source, script or doc (one once
# sat inside the --help text's string literal, where the compiler could not see it), and
# `etld --help` shows none and lists every subcommand the binary dispatches.
source "$(dirname "$0")/lib.sh"

no_markers() {
  local found
  found=$(grep -rnE '^(<<<<<<<|>>>>>>>) ' "$src" \
    --include='*.cpp' --include='*.hpp' --include='*.h' --include='*.in' --include='*.sh' \
    --include='*.py' --include='*.md' --include='*.yaml' --include='*.yml' --include='*.json' \
    --include='*.txt' --include='*.cmake' --exclude-dir=.git --exclude-dir='build*' \
    --exclude-dir=results 2>/dev/null | head -5)
  [ -z "$found" ] || { echo "$found" >&2; return 1; }
}
check "no merge-conflict markers in the tree" no_markers

"$etld" --help >"$tmp/help.txt" 2>&1
check "etld --help shows no conflict marker" bash -c "! grep -qE '^(<<<<<<<|=======|>>>>>>>)' '$tmp/help.txt'"
for cmd in run validate graph test top replay stages reference; do
  check "etld --help lists etld $cmd" grep -qE "^  etld $cmd( |\$)" "$tmp/help.txt"
done
finish
