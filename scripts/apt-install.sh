#!/usr/bin/env bash
# apt-install.sh [--log FILE] PKG...: install those of the Debian packages PKG that are missing.
#
# Quiet and cheap when all are installed (then root is not needed either). Otherwise, as root,
# runs apt-get without questions and without recommended packages, refreshing the package lists
# once if the first attempt fails. The packages' init scripts are kept from starting their
# services (a policy-rc.d that refuses, removed afterwards unless one was there before); the
# callers start the daemons they want themselves, under their own state directory.
# apt-get's output goes to FILE (default: a temporary file, removed on success); on failure its
# last lines are printed on stderr. Used by credentials-up.sh and slurm-up.sh; runs one at a time.
set -euo pipefail

say() { printf 'apt-install: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

logfile=
if [ "${1:-}" = --log ]; then
    [ $# -ge 2 ] || die "--log needs a file"
    logfile=$2
    shift 2
fi
[ $# -gt 0 ] || die "usage: apt-install.sh [--log FILE] PKG..."

missing_packages() {
    missing=()
    local pkg
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ] \
            || missing+=("$pkg")
    done
}

missing_packages "$@"
[ ${#missing[@]} = 0 ] && exit 0
[ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root: install them with apt-get"
command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get to install them"

# Two callers at once would share, and one remove, the other's policy-rc.d.
mkdir -p /run/lock
exec 9>/run/lock/ganga-async-apt-install.lock
flock -w 600 9 || die "another apt-install.sh has held /run/lock/ganga-async-apt-install.lock for 10 min"
missing_packages "$@"
[ ${#missing[@]} = 0 ] && exit 0

keep_log=1
if [ -z "$logfile" ]; then
    logfile=$(mktemp /tmp/apt-install.XXXXXX.log)
    keep_log=0
fi
say "installing from Debian's packages: ${missing[*]} (log: $logfile)"

added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
fi
cleanup() { if [ $added_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

apt=(apt-get -y -q -o DPkg::Lock::Timeout=600
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
install() { DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "${missing[@]}"; }
if ! install >"$logfile" 2>&1; then
    # stale or absent package lists: refresh once and try again
    if ! { "${apt[@]}" update && install; } >>"$logfile" 2>&1; then
        tail -n 20 "$logfile" >&2
        die "apt-get failed (full log: $logfile)"
    fi
fi
[ $keep_log = 1 ] || rm -f "$logfile"
say "installed ${missing[*]}"
