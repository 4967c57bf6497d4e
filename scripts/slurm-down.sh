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

. "$(dirname "${BASH_SOURCE[0]}")/slurm-common.sh"
ALL=(slurmd slurmctld slurmdbd mariadbd munged)

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
