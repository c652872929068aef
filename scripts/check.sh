#!/usr/bin/env bash
# The project's test command (README): lint, format, types, tests.
#
#   bash scripts/check.sh                      all steps
#   bash scripts/check.sh lint types           some steps (lint, format, types, tests)
#   bash scripts/check.sh tests -k e2e -x      the tests, with pytest arguments
#
# Uses the project venv (.venv, or $VENV); `bash .ci/run` creates it on a fresh machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${VENV:-.venv}/bin"
if [[ ! -x "$bin/pytest" ]]; then
    echo "no dev venv at ${VENV:-.venv}: run 'bash .ci/run' once (it installs, then checks)" >&2
    exit 2
fi

steps=()
while [[ $# -gt 0 && "$1" =~ ^(lint|format|types|tests)$ ]]; do
    steps+=("$1")
    shift
done
[[ ${#steps[@]} -gt 0 ]] || steps=(lint format types tests)

for step in "${steps[@]}"; do
    echo "== $step"
    case "$step" in
        lint) "$bin/ruff" check . ;;
        format) "$bin/ruff" format --check . ;;
        types) "$bin/mypy" ;;
        tests)
            # Exit code 5 (no test collected) is a failure here like any other non-zero code.
            "$bin/pytest" "$@"
            ;;
    esac
done
echo "== all passed: ${steps[*]}"
