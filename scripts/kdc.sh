#!/usr/bin/env bash
# kdc.sh start|stop DIR - a throwaway MIT Kerberos realm with its KDC on 127.0.0.1, every
# file (configuration, database, keytabs, log, pid file) under DIR.
#
#   eval "$(scripts/kdc.sh start /tmp/krb)"     # prints export lines, also kept in DIR/krb5.env
#   echo "$KRB5_TEST_PASSWORD" | kinit -l 30s "$KRB5_TEST_PRINCIPAL"
#   scripts/kdc.sh stop /tmp/krb                # by the pid file in DIR only
#
# start is idempotent: a KDC that answers is left alone, a dead one is started again, a
# changed configuration (other lifetimes) restarts it. The port is picked free on the first
# start and kept in DIR/port. Installs the Debian packages through credentials-up.sh.
# Knobs: KDC_MAX_LIFE [10m] and KDC_MAX_RENEW [1h] (krb5 durations: 30s, 5m, 1h30m),
# KDC_CLOCKSKEW seconds [5] (MIT's default 300 would renew tickets 5 minutes after expiry).
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
ACTION=$1
DIR=$(realpath -m "$2")
case $ACTION in start|stop) ;; *) usage ;; esac
[[ $DIR =~ ^[A-Za-z0-9._/+-]+$ ]] || { echo "DIR must not contain spaces or special characters" >&2; exit 2; }

REALM=TEST.LOCAL
USER_NAME=testuser
PASSWORD=testpass
MAX_LIFE=${KDC_MAX_LIFE:-10m}
MAX_RENEW=${KDC_MAX_RENEW:-1h}
CLOCKSKEW=${KDC_CLOCKSKEW:-5}
HERE=$(cd "$(dirname "$0")" && pwd)

log() { printf '[kdc] %s\n' "$*" >&2; }
die() { printf '[kdc] ERROR: %s\n' "$*" >&2; exit 1; }

# the pid in DIR/krb5kdc.pid if that process is alive and is the krb5kdc started with it
live_pid() {
    local pid state cmd
    pid=$(cat "$DIR/krb5kdc.pid" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 0
    [ -n "$state" ] && [ "$state" != Z ] || return 0
    cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 0
    case "$cmd" in *"krb5kdc -P $DIR/krb5kdc.pid"*) echo "$pid" ;; esac
}
stop_kdc() {
    local pid i
    pid=$(live_pid)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 50); do [ -z "$(live_pid)" ] && break; sleep 0.1; done
        [ -z "$(live_pid)" ] || kill -9 "$pid" 2>/dev/null || true
        log "krb5kdc $pid stopped"
    fi
    rm -f "$DIR/krb5kdc.pid"
}

if [ "$ACTION" = stop ]; then
    [ -d "$DIR" ] || exit 0
    exec 9>"$DIR/.lock"
    flock -w 120 9 || die "$DIR/.lock is held by another process"
    stop_kdc
    exit 0
fi

"$HERE/credentials-up.sh"
mkdir -p "$DIR/db"
chmod 700 "$DIR/db"
exec 9>"$DIR/.lock"
flock -w 120 9 || die "$DIR/.lock is held by another process"

if [ ! -s "$DIR/port" ]; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
        > "$DIR/port"
fi
PORT=$(cat "$DIR/port")
export KRB5_CONFIG=$DIR/krb5.conf KRB5_KDC_PROFILE=$DIR/kdc.conf
unset KRB5CCNAME KRB5_KTNAME KRB5_CLIENT_KTNAME

write_if_changed() {   # file, content: returns 0 when the file changed
    if cmp -s "$1" <(printf '%s' "$2"); then return 1; fi
    printf '%s' "$2" > "$1.tmp" && chmod 644 "$1.tmp" && mv -f "$1.tmp" "$1"
}
changed=1
write_if_changed "$DIR/krb5.conf" "[libdefaults]
 default_realm = $REALM
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_canonicalize_hostname = false
 rdns = false
 clockskew = $CLOCKSKEW
[realms]
 $REALM = {
  kdc = 127.0.0.1:$PORT
 }
" || changed=0
write_if_changed "$DIR/kdc.conf" "[kdcdefaults]
 kdc_listen = 127.0.0.1:$PORT
 kdc_tcp_listen = 127.0.0.1:$PORT
[realms]
 $REALM = {
  database_name = $DIR/db/principal
  key_stash_file = $DIR/db/stash
  acl_file = $DIR/kadm5.acl
  max_life = $MAX_LIFE
  max_renewable_life = $MAX_RENEW
  master_key_type = aes256-cts-hmac-sha1-96
  supported_enctypes = aes256-cts-hmac-sha1-96:normal
 }
[logging]
 kdc = FILE:$DIR/krb5kdc.log
" && changed=1
touch "$DIR/kadm5.acl"

if [ ! -s "$DIR/db/principal" ] || [ ! -s "$DIR/db/stash" ]; then
    log "creating realm $REALM"
    rm -rf "$DIR/db" "$DIR/user.keytab"
    mkdir -p "$DIR/db" && chmod 700 "$DIR/db"
    kdb5_util create -s -r "$REALM" -P "$(head -c 24 /dev/urandom | base64)" > "$DIR/kdb5_util.log" 2>&1 \
        || { cat "$DIR/kdb5_util.log" >&2; die "kdb5_util create failed"; }
fi
kadm() { kadmin.local -r "$REALM" -q "$1" 2>&1; }
case "$(kadm "getprinc $USER_NAME")" in
    *"Principal: $USER_NAME@"*) ;;
    *) kadm "addprinc -pw $PASSWORD $USER_NAME" | grep -q created || die "addprinc $USER_NAME failed" ;;
esac
# a ticket lives min(requested, the client's and krbtgt's maxlife, the realm's max_life)
for p in "krbtgt/$REALM" "$USER_NAME"; do
    kadm "modprinc -maxlife $MAX_LIFE -maxrenewlife $MAX_RENEW $p" | grep -q modified \
        || die "modprinc $p failed"
done
umask 077
if ! klist -k "$DIR/user.keytab" 2>/dev/null | grep -q " $USER_NAME@$REALM"; then
    rm -f "$DIR/user.keytab"
    kadm "ktadd -k $DIR/user.keytab -norandkey $USER_NAME" | grep -q 'added to keytab' || die "ktadd failed"
fi

answers() {   # a real AS exchange with the keytab, into a scratch cache
    local rc=0
    KRB5CCNAME=FILE:$DIR/db/check.ccache kinit -k -t "$DIR/user.keytab" "$USER_NAME@$REALM" \
        >/dev/null 2>&1 || rc=1
    rm -f "$DIR/db/check.ccache"
    return $rc
}
if [ -n "$(live_pid)" ] && { [ $changed = 1 ] || ! answers; }; then
    log "restarting krb5kdc"
    stop_kdc
fi
if [ -z "$(live_pid)" ]; then
    log "starting krb5kdc on 127.0.0.1:$PORT"
    # krb5kdc keeps every descriptor it inherits: close all above 2 (our lock, the caller's pipes)
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        exec /usr/sbin/krb5kdc -P "$DIR/krb5kdc.pid"
    ) </dev/null >>"$DIR/krb5kdc.stdout" 2>&1 || die "krb5kdc failed to start (see $DIR/krb5kdc.log)"
fi
for _ in $(seq 150); do answers && break; sleep 0.1; done
answers || die "the KDC does not answer on 127.0.0.1:$PORT (see $DIR/krb5kdc.log)"

{
    echo "export KRB5_CONFIG='$DIR/krb5.conf'"
    echo "export KRB5CCNAME='FILE:$DIR/ccache'"
    echo "export KRB5_TEST_DIR='$DIR'"
    echo "export KRB5_TEST_REALM='$REALM'"
    echo "export KRB5_TEST_PRINCIPAL='$USER_NAME@$REALM'"
    echo "export KRB5_TEST_PASSWORD='$PASSWORD'"
    echo "export KRB5_TEST_KEYTAB='$DIR/user.keytab'"
    echo "export KRB5_TEST_MAX_LIFE='$MAX_LIFE'"
} > "$DIR/krb5.env.tmp"
mv -f "$DIR/krb5.env.tmp" "$DIR/krb5.env"
cat "$DIR/krb5.env"
