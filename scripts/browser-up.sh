#!/usr/bin/env bash
# browser-up.sh: the headless browser the dashboard's browser tests and benchmarks drive.
#
# Installs Debian's `chromium` package if it is missing (through apt-install.sh, so quiet and
# root-free when it is there already) and checks that /usr/bin/chromium runs, printing its
# version on stdout. Playwright's Python package (from the `test` extra) then launches that
# binary through `executable_path`: Playwright's own browser download needs a network this
# project does not count on.
#
# Settings (environment):
#   GANGA_BROWSER_LOG   where apt-get's output goes     [/tmp/ganga-async-browser-apt.log]
set -euo pipefail

say() { printf 'browser-up: %s\n' "$*" >&2; }
CHROMIUM=/usr/bin/chromium
LOG=${GANGA_BROWSER_LOG:-/tmp/ganga-async-browser-apt.log}

"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" --log "$LOG" chromium \
    || { say "ERROR: could not install Debian's chromium (log: $LOG)"; exit 1; }
[ -x "$CHROMIUM" ] || { say "ERROR: $CHROMIUM is missing although the chromium package is installed"; exit 1; }
# chromium --version reads no profile and opens no window, so it works as root and headless.
version=$("$CHROMIUM" --version 2>/dev/null) \
    || { say "ERROR: $CHROMIUM --version failed: $("$CHROMIUM" --version 2>&1 | tail -n 3)"; exit 1; }
say "ready: $version at $CHROMIUM"
printf '%s\n' "$version"
