#!/usr/bin/env bash
# slurm-down.sh: stop the cluster scripts/slurm-up.sh started.
#
#   scripts/slurm-down.sh                 cancel the cluster's jobs, stop every daemon
#   scripts/slurm-down.sh --purge         ... and delete $GANGA_SLURM_HOME
#   scripts/slurm-down.sh slurmctld ...   stop only these daemons, jobs untouched (a test uses
#                                         this to restart slurmctld under running jobs;
#                                         scripts/slurm-up.sh starts it again)
#
# Only the processes recorded in $GANGA_SLURM_HOME/run/*.pid are signalled, and only when they
# belong to that directory; nothing is found or killed by name.
set -uo pipefail

HOME_DIR=${GANGA_SLURM_HOME:-/tmp/ganga-async-slurm}
RUN=$HOME_DIR/run
CONF=$HOME_DIR/etc/slurm.conf
export SLURM_CONF=$CONF
ALL=(slurmd slurmctld slurmdbd mariadbd munged)

say() { printf 'slurm-down: %s\n' "$*" >&2; }

PURGE=0
ONLY=()
for arg in "$@"; do
    case $arg in
        --purge) PURGE=1 ;;
        slurmd|slurmctld|slurmdbd|mariadbd|munged) ONLY+=("$arg") ;;
        *) say "unknown argument $arg; give --purge or daemon names (${ALL[*]})"; exit 2 ;;
    esac
done

[ -d "$HOME_DIR" ] || { say "nothing to stop: no $HOME_DIR"; exit 0; }
exec 8>>"$HOME_DIR/lock"
flock -w 600 8 || say "WARNING: $HOME_DIR/lock is held; going on"

running() {   # same test as slurm-up.sh: our pid file, a live process that belongs to HOME_DIR
    local pidfile=$RUN/$1.pid pid state
    [ -s "$pidfile" ] || return 1
    pid=$( { tr -dc '0-9' <"$pidfile"; } 2>/dev/null) || return 1
    [ -n "$pid" ] || return 1
    state=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    state=${state##*) }
    [ "${state%% *}" != Z ] || return 1
    if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$HOME_DIR/" \
        || tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$CONF"; then
        echo "$pid"
        return 0
    fi
    return 1
}

stop() {
    local pid i
    pid=$(running "$1") || { rm -f "$RUN/$1.pid"; return 0; }
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 150); do running "$1" >/dev/null || break; sleep 0.2; done
    if running "$1" >/dev/null; then
        say "$1 ignored SIGTERM for 30 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$RUN/$1.pid"
}

if [ ${#ONLY[@]} -gt 0 ]; then
    for daemon in "${ONLY[@]}"; do stop "$daemon"; done
    exit 0
fi

# Cancel every job first, so that no job process outlives slurmd.
if running slurmctld >/dev/null && running slurmd >/dev/null; then
    jobs=$(timeout 20 squeue -h -o %A 2>/dev/null | sort -u)
    if [ -n "$jobs" ]; then
        say "cancelling $(wc -w <<<"$jobs") jobs"
        # shellcheck disable=SC2086
        timeout 20 scancel $jobs 2>/dev/null
        for i in $(seq 100); do
            [ -z "$(timeout 20 squeue -h -t PD,R,CG,S,CF -o %A 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi
for daemon in "${ALL[@]}"; do stop "$daemon"; done

if [ $PURGE = 1 ]; then
    if [ -f "$CONF" ] && grep -q "slurm-up.sh" "$CONF"; then
        rm -rf -- "$HOME_DIR"
        say "removed $HOME_DIR"
    else
        say "not removing $HOME_DIR: it holds no configuration written by slurm-up.sh"
        exit 1
    fi
fi
say "stopped"
