#!/usr/bin/env bash
# Every example in docs/expressions.md's checked tables, run through the real etld binary, so
# that the doc cannot drift from what the expression language does (no services needed).
source "$(dirname "$0")/lib.sh"

check "docs/expressions.md examples agree with etld" \
  python3 "$src/tests/e2e/support/expression_examples.py" "$etld" "$src/docs/expressions.md" "$tmp"
finish
