#!/usr/bin/env bash
# condor-down.sh - stop the single-node pool started by condor-up.sh.
#
#   ./condor-down.sh              condor_rm our jobs, stop condor_master
#   ./condor-down.sh --keep-jobs  skip condor_rm (queued jobs run again at the next start)
#   ./condor-down.sh --purge      ... and reset the pool state (queue, history,
#                                   logs, signing key, token); the chroot stays
#   ./condor-down.sh --purge-all  ... and delete $HTCONDOR_HOME with the chroot
#                                   (the next start rebuilds it: about 40 s)
#
# Only the condor_master named in the pid file is signalled (after checking its
# name and that it runs in our chroot). Processes it leaves behind are ended
# only if they run inside our chroot and have no parent outside it except
# pid 1. Nothing is killed by name. The pool's mounts live in its private mount
# namespace and vanish with its last process; mounts below the chroot in the
# host's namespace (older versions, or made by hand) are undone, and nothing
# is deleted while any remains.
set -uo pipefail

HTCONDOR_HOME=$(realpath -m "${HTCONDOR_HOME:-/var/tmp/ganga-async-htcondor}")
if [ -z "${HTCONDOR_ROOT:-}" ] && [ -s "$HTCONDOR_HOME/root.path" ]; then
    HTCONDOR_ROOT=$(sed -n 's/^HTCONDOR_ROOT=//p' "$HTCONDOR_HOME/root.path")
fi
HTCONDOR_ROOT=$(realpath -m "${HTCONDOR_ROOT:-$HTCONDOR_HOME/root}")
R=$HTCONDOR_ROOT
PIDFILE=$R/run/htcondor-single/condor_master.pid
CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root)

PURGE=0 PURGE_ALL=0 KEEP_JOBS=0
for a in "$@"; do
    case $a in
        --purge) PURGE=1 ;;
        --purge-all) PURGE=1; PURGE_ALL=1 ;;
        --keep-jobs) KEEP_JOBS=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option: $a" >&2; exit 2 ;;
    esac
done

log() { printf '[condor-down] %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }

alive() {
    local st
    st=$( { cat "/proc/$1/stat"; } 2>/dev/null ) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}
still_alive() { local p; for p in "$@"; do alive "$p" && echo "$p"; done; return 0; }
ppid_of() { local st; st=$( { cat "/proc/$1/stat"; } 2>/dev/null ) || return 1; st=${st##*) }; set -- $st; echo "$2"; }
chroot_pids() {
    local p pid
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] && alive "$pid" && echo "$pid"
    done
    return 0
}
master_pid() {
    local pid
    [ -s "$PIDFILE" ] || return 1
    pid=$(tr -dc '0-9' < "$PIDFILE")
    [ -n "$pid" ] && alive "$pid" || return 1
    [ "$( { cat "/proc/$pid/comm"; } 2>/dev/null)" = condor_master ] || return 1
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$R" ] || return 1
    echo "$pid"
}
orphan_pids() {
    local all p q pp
    all=" $(chroot_pids | tr '\n' ' ') "
    for p in $all; do
        q=$p
        while pp=$(ppid_of "$q"); do
            if [[ $all == *" $pp "* ]]; then q=$pp; continue; fi
            [ "$pp" = 1 ] || [ "$pp" = 0 ] && echo "$p"
            break
        done
    done
    return 0
}
in_chroot() {   # in the pool's mount namespace while the master runs
    local pid
    if pid=$(master_pid); then
        "${CLEAN_ENV[@]}" nsenter --mount="/proc/$pid/ns/mnt" -- chroot "$R" "$@"
    else
        "${CLEAN_ENV[@]}" chroot "$R" "$@"
    fi
}
mounts_under() { awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r; }

if [ ! -d "$HTCONDOR_HOME" ] && [ ! -d "$R" ]; then
    log "nothing to stop: $HTCONDOR_HOME does not exist"
    exit 0
fi
if [ -d "$HTCONDOR_HOME" ]; then
    exec 9>>"$HTCONDOR_HOME/.lock"
    flock -w 900 9 || log "WARNING: could not take $HTCONDOR_HOME/.lock, continuing"
fi

# 1. remove the jobs, so that none is left half-run in the queue
if pid=$(master_pid); then
    if [ $KEEP_JOBS = 0 ]; then
        n=$(in_chroot timeout 15 condor_q -af ClusterId 2>/dev/null | wc -l)
        if [ "${n:-0}" -gt 0 ]; then
            log "removing $n job(s): condor_rm -all"
            in_chroot timeout 15 condor_rm -all >/dev/null 2>&1 || true
            for i in $(seq 60); do
                n=$(in_chroot timeout 15 condor_q -af ClusterId 2>/dev/null | wc -l)
                [ "${n:-0}" = 0 ] && break
                # jobs stuck in X (e.g. a shadow retrying a dead starter): drop them
                [ "$i" = 30 ] && in_chroot timeout 15 condor_rm -forcex -all >/dev/null 2>&1
                sleep 0.3
            done
            [ "${n:-0}" = 0 ] || log "WARNING: $n job(s) still in the queue"
        fi
    fi
    # 2. condor_master: SIGTERM = graceful shutdown of all daemons (running
    #    jobs are killed and, with --keep-jobs, stay queued)
    log "stopping condor_master (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then
        log "condor_master still shutting down after 20 s: fast shutdown (SIGQUIT)"
        kill -QUIT "$pid" 2>/dev/null || true
        for i in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    fi
    if alive "$pid"; then
        log "condor_master still alive: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
elif [ -e "$PIDFILE" ]; then
    log "condor_master not running: stale pid file removed"
fi
rm -f "$PIDFILE"

# 3. whatever a (killed) master left behind in our chroot
pids=$(orphan_pids | tr '\n' ' ')
if [ -n "${pids// }" ]; then
    log "ending leftover processes in the chroot: $pids"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 50); do
        pids=$(still_alive $pids | tr '\n' ' ')
        [ -n "${pids// }" ] || break
        sleep 0.2
    done
    # shellcheck disable=SC2086
    [ -n "${pids// }" ] && { kill -KILL $pids 2>/dev/null || true; sleep 0.5; }
fi
others=$(chroot_pids | tr '\n' ' ')
[ -n "${others// }" ] && log "WARNING: processes started from outside still run in the chroot (not touched): $others"

# 4. mounts below the chroot in the host's namespace: normally none (deepest
#    first; lazily if something still uses them)
for i in 1 2 3 4 5; do
    m=$(mounts_under "$R")
    [ -n "$m" ] || break
    for x in $m; do umount "$x" 2>/dev/null || true; done
    [ -n "$(mounts_under "$R")" ] && sleep 0.3
done
m=$(mounts_under "$R")
if [ -n "$m" ]; then
    log "WARNING: busy, detaching lazily: $(echo $m)"
    for x in $m; do umount -l "$x" 2>/dev/null || true; done
fi
[ -n "$(mounts_under "$R")" ] && { log "ERROR: still mounted below $R: $(mounts_under "$R" | tr '\n' ' ')"; exit 1; }

# 5. purge
if [ $PURGE = 1 ] && [ $PURGE_ALL = 0 ]; then
    if [ -e "$R/.htcondor-single" ]; then
        rm -rf --one-file-system "$R"/var/spool/condor/* "$R"/var/spool/condor/.[!.]* "$R"/var/log/condor/* \
            "$R"/var/log/condor/.[!.]* "$R"/var/lib/condor/execute/* "$R"/etc/condor/passwords.d \
            "$R"/etc/condor/tokens.d "$R"/etc/condor/htcondor-single-client-tokens "$HTCONDOR_HOME/client"
        log "pool state reset (queue, history, logs, keys, token); chroot kept"
    else
        log "refusing to purge: $R has no .htcondor-single marker"
        exit 1
    fi
fi
if [ $PURGE_ALL = 1 ]; then
    for d in "$R" "$HTCONDOR_HOME"; do
        [ -e "$d" ] || continue
        if [ "$d" = / ] || { [ ! -e "$d/.htcondor-single" ] && [ ! -e "$d/root/.htcondor-single" ]; }; then
            log "refusing to delete $d: no .htcondor-single marker"
            exit 1
        fi
        rm -rf --one-file-system "$d" && log "removed $d"
    done
fi
log "stopped"
