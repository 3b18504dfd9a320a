#!/usr/bin/env bash
# Every worked example in docs/windows.md, run through the real etld binary (file source ->
# window -> stdout), so that the page cannot drift from what the window stage does.
source "$(dirname "$0")/lib.sh"

check "docs/windows.md examples agree with etld" \
  python3 "$src/tests/e2e/support/window_examples.py" "$etld" "$src/docs/windows.md" "$tmp"
finish
