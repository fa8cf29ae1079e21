#!/bin/sh
# tests/need-deps.sh - exits 0 if every package in tests/deps.txt is
# installed, 1 otherwise (then `make deps` installs them).
cd "$(dirname "$0")/.." || exit 1
for p in $(grep -v '^#' tests/deps.txt); do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q "install ok installed" || { echo "missing package: $p"; exit 1; }
done
exit 0
