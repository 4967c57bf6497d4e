#!/usr/bin/env bash
# credentials-up.sh - install the Debian packages the credential tests use, if missing:
# grid proxy tools (globus-proxy-utils, voms-clients) and MIT Kerberos (krb5-kdc,
# krb5-admin-server, krb5-user). Idempotent and quiet when everything is there.
# Needs root for apt-get; other callers get a clear error naming what is missing.
# The packages' init scripts are kept from starting a system-wide KDC.
set -euo pipefail

PKGS=(globus-proxy-utils voms-clients openssl krb5-kdc krb5-admin-server krb5-user)
LOCK_TIMEOUT=600

log() { printf '[credentials-up] %s\n' "$*" >&2; }
die() { printf '[credentials-up] ERROR: %s\n' "$*" >&2; exit 1; }

missing=()
for p in "${PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] \
        || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root: install them with apt-get"

log "installing ${missing[*]}"
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi
cleanup() { if [ $created_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

apt=(apt-get -y -q -o DPkg::Lock::Timeout=$LOCK_TIMEOUT
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
logfile=$(mktemp /tmp/credentials-up.XXXXXX.log)
install() { DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "${missing[@]}"; }
if ! install >"$logfile" 2>&1; then
    # stale or absent package lists: refresh once and try again
    if ! { "${apt[@]}" update && install; } >>"$logfile" 2>&1; then
        tail -n 20 "$logfile" >&2
        die "apt-get failed (full log: $logfile)"
    fi
fi
rm -f "$logfile"
log "installed ${missing[*]}"
