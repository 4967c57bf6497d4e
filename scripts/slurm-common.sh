# slurm-common.sh: sourced by slurm-up.sh and slurm-down.sh, not run on its own. The paths of
# the test cluster and how both scripts find and stop its daemons: only the processes recorded
# in $RUN/*.pid, and only when they belong to $HOME_DIR; nothing is found or killed by name.

HOME_DIR=${GANGA_SLURM_HOME:-/tmp/ganga-async-slurm}
ETC=$HOME_DIR/etc
RUN=$HOME_DIR/run
CONF=$ETC/slurm.conf
export SLURM_CONF=$CONF

say() { local me=${0##*/}; printf '%s: %s\n' "${me%.sh}" "$*" >&2; }

# Whether process PID lives (a zombie does not).
alive() {
    local state
    state=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    state=${state##*) }
    [ "${state%% *}" != Z ]
}

# The pid in RUN/NAME.pid when that process lives (zombies do not count: init reaps late
# here) and is ours: its command line or its SLURM_CONF points into HOME_DIR.
running() {
    local pidfile=$RUN/$1.pid pid
    [ -s "$pidfile" ] || return 1
    pid=$( { tr -dc '0-9' <"$pidfile"; } 2>/dev/null) || return 1
    [ -n "$pid" ] && alive "$pid" || return 1
    if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$HOME_DIR/" \
        || tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$CONF"; then
        echo "$pid"
        return 0
    fi
    return 1
}

stop() {   # stop NAME: TERM the daemon of our pid file, KILL after 30 s
    local pid i
    pid=$(running "$1") || { rm -f "$RUN/$1.pid"; return 0; }
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do running "$1" >/dev/null || break; sleep 0.2; done
    if running "$1" >/dev/null; then
        say "$1 ignored SIGTERM for 30 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$1.pid"
}
