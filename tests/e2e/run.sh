#!/usr/bin/env bash
# tests/e2e/run.sh PORTERO - runs every tests/e2e/t_*.sh against that
# portero binary; each prints TAP.  Exit 0 iff all passed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
PORTERO=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
export PORTERO
rc=0
for t in "$here"/t_*.sh; do
	echo "# --- $(basename "$t")"
	"$t" || rc=1
done
exit $rc
