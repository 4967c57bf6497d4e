#!/usr/bin/env bash
# slurm-up.sh: a one-node Slurm cluster on loopback for ganga-async's tests and benchmarks.
#
#   eval "$(scripts/slurm-up.sh)"     # then sbatch, squeue, sacct ... work in this shell
#
# Installs what is missing from Debian's packages (munge, slurmctld, slurmd, slurm-client, and
# slurmdbd with mariadb-server so that sacct works), then starts munged, mariadbd, slurmdbd,
# slurmctld and slurmd without systemd, as root, every file under $GANGA_SLURM_HOME. Running it
# again is cheap: daemons that answer are left alone, dead ones are started again (that is how
# a test brings back a stopped slurmctld). It prints `export SLURM_CONF=...` lines on stdout
# (also saved in $GANGA_SLURM_HOME/env) and its progress, including where the state and the
# logs are, on stderr. Stop it with scripts/slurm-down.sh.
#
# Settings (environment):
#   GANGA_SLURM_HOME        config, state, logs, database          [/tmp/ganga-async-slurm]
#   GANGA_SLURM_PORT        slurmctld's port; slurmd +1, slurmdbd +2, MariaDB +3     [16817]
#   GANGA_SLURM_CPUS        CPUs the node offers (more than the machine has is fine:
#                           test jobs are tiny and mostly wait)                         [16]
#   GANGA_SLURM_MAX_ARRAY   MaxArraySize                                             [1001]
#   GANGA_SLURM_TIMEOUT     seconds to wait for the cluster                              [90]
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/slurm-common.sh"
PORT=${GANGA_SLURM_PORT:-16817}
CPUS=${GANGA_SLURM_CPUS:-16}
MAX_ARRAY=${GANGA_SLURM_MAX_ARRAY:-1001}
TIMEOUT=${GANGA_SLURM_TIMEOUT:-90}

LOGS=$HOME_DIR/log
MUNGE_SOCKET=$RUN/munge.sock
DB_SOCKET=$RUN/mariadb.sock

fail() {
    say "ERROR: $*"
    for f in "$LOGS"/*.log "$LOGS"/*.err; do
        [ -s "$f" ] && { printf -- '--- last lines of %s\n' "$f" >&2; tail -n 15 "$f" >&2; }
    done
    say "ERROR: $*"   # again, where a reader of the tail of this output looks
    exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root: slurmd starts jobs as their users"

PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)

DEADLINE=$(( $(date +%s) + TIMEOUT ))
# await WHAT DAEMON COMMAND...: retry COMMAND until it succeeds while DAEMON stays up. DAEMON is
# a pid when this script started the process itself (mariadbd writes its pid file only after
# InnoDB's crash recovery, which can take seconds), otherwise a name whose pid file the daemon
# writes as it detaches; a daemon without one 10 s after its start has died.
await() {
    local what=$1 daemon=$2 since
    shift 2
    since=$(date +%s)
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$DEADLINE" ] || fail "gave up waiting for $what after ${TIMEOUT}s"
        if [[ $daemon =~ ^[0-9]+$ ]]; then
            alive "$daemon" || fail "$what exited while starting"
        elif [ $(( $(date +%s) - since )) -ge 10 ] && ! running "$daemon" >/dev/null; then
            fail "$daemon exited while starting"
        fi
        sleep 0.2
    done
}

# Write a file only when its content changes; succeed when it changed.
put() {
    local path=$1 mode=$2 text=$3
    if [ -f "$path" ] && [ "$(cat "$path")" = "$text" ]; then return 1; fi
    printf '%s\n' "$text" >"$path.new"
    chmod "$mode" "$path.new"
    mv -f "$path.new" "$path"
}

mkdir -p "$HOME_DIR"
exec 8>"$HOME_DIR/lock"
flock -w 600 8 || fail "another slurm-up.sh or slurm-down.sh holds $HOME_DIR/lock"
# apt-install.sh keeps the package scripts from starting the system-wide munge and MariaDB.
"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" --log "$HOME_DIR/apt.log" "${PACKAGES[@]}" 8>&- \
    || fail "could not install ${PACKAGES[*]}"
mkdir -p "$ETC" "$RUN" "$LOGS" "$HOME_DIR/state" "$HOME_DIR/spool" "$HOME_DIR/munge" "$HOME_DIR/db"
chmod 755 "$HOME_DIR" "$ETC" "$RUN" "$LOGS"
chmod 700 "$HOME_DIR/munge" "$HOME_DIR/state" "$HOME_DIR/db"

MEMORY=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
CONF_CHANGED=0
put "$CONF" 644 "# Written by ganga-async's scripts/slurm-up.sh; edits are replaced.
ClusterName=gangaasync
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$HOME_DIR/state
SlurmdSpoolDir=$HOME_DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MaxArraySize=$MAX_ARRAY
MaxJobCount=50000
ReturnToService=2
MinJobAge=300
KillWait=5
Waittime=0
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$MUNGE_SOCKET
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$MEMORY State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP" && CONF_CHANGED=1

[ -s "$HOME_DIR/db/password" ] || { head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$HOME_DIR/db/password"; }
chmod 600 "$HOME_DIR/db/password"
DB_PASSWORD=$(cat "$HOME_DIR/db/password")
DBD_CHANGED=0
# slurmdbd has no option for its file: it reads slurmdbd.conf beside $SLURM_CONF (mode 600).
put "$ETC/slurmdbd.conf" 600 "AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=root
LogFile=$LOGS/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db" && DBD_CHANGED=1

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# munge: the key and socket are ours alone (never --force: it would take over a live socket).
[ -s "$HOME_DIR/munge/key" ] || mungekey --create --keyfile="$HOME_DIR/munge/key" --force >/dev/null
chmod 400 "$HOME_DIR/munge/key"
munge_ok() { munge -S "$MUNGE_SOCKET" -n </dev/null | unmunge -S "$MUNGE_SOCKET"; }
if ! running munged >/dev/null; then
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    say "starting munged"
    munged --key-file="$HOME_DIR/munge/key" --socket="$MUNGE_SOCKET" --pid-file="$RUN/munged.pid" \
        --log-file="$LOGS/munged.log" --seed-file="$HOME_DIR/munge/seed" --num-threads=8 \
        8>&- </dev/null >>"$LOGS/daemons.out" 2>&1 || fail "munged did not start"
fi
await "munge" munged munge_ok

if ! running mariadbd >/dev/null; then
    if [ ! -d "$HOME_DIR/db/data/mysql" ]; then
        say "creating the accounting database in $HOME_DIR/db"
        rm -rf "$HOME_DIR/db/data"
        mariadb-install-db --no-defaults --user=root --datadir="$HOME_DIR/db/data" \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$LOGS/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed"
    fi
    port_free $((PORT + 3)) || fail "port $((PORT + 3)) (MariaDB) is taken; set GANGA_SLURM_PORT"
    say "starting mariadbd on 127.0.0.1:$((PORT + 3))"
    setsid mariadbd --no-defaults --user=root --datadir="$HOME_DIR/db/data" --socket="$DB_SOCKET" \
        --pid-file="$RUN/mariadbd.pid" --log-error="$LOGS/mariadb.err" --bind-address=127.0.0.1 \
        --port=$((PORT + 3)) --skip-name-resolve --innodb-buffer-pool-size=64M \
        8>&- </dev/null >>"$LOGS/daemons.out" 2>&1 &
    MARIADB=$!   # setsid execs in place: a background job of a script leads no process group
else
    MARIADB=mariadbd
fi
await "MariaDB" "$MARIADB" mariadb-admin --no-defaults --socket="$DB_SOCKET" -uroot ping
mariadb --no-defaults --socket="$DB_SOCKET" -uroot -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
    ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || fail "cannot create the database user"

[ $DBD_CHANGED = 1 ] && stop slurmdbd
if ! running slurmdbd >/dev/null; then
    port_free $((PORT + 2)) || fail "port $((PORT + 2)) (slurmdbd) is taken; set GANGA_SLURM_PORT"
    say "starting slurmdbd on 127.0.0.1:$((PORT + 2))"
    slurmdbd 8>&- </dev/null >>"$LOGS/daemons.out" 2>&1 || fail "slurmdbd did not start"
fi
await "slurmdbd" slurmdbd sacctmgr -n show cluster
sacctmgr -n -P show cluster format=cluster | grep -qx gangaasync \
    || sacctmgr -i add cluster gangaasync >/dev/null || fail "cannot register the cluster with slurmdbd"

if [ $CONF_CHANGED = 1 ]; then
    stop slurmd
    stop slurmctld
fi
if ! running slurmctld >/dev/null; then
    port_free "$PORT" || fail "port $PORT (slurmctld) is taken; set GANGA_SLURM_PORT"
    say "starting slurmctld on 127.0.0.1:$PORT"
    slurmctld -f "$CONF" 8>&- </dev/null >>"$LOGS/daemons.out" 2>&1 || fail "slurmctld did not start"
fi
await "slurmctld" slurmctld sh -c 'scontrol ping | grep -q "is UP"'

SLURMD_STARTED=0
if ! running slurmd >/dev/null; then
    port_free $((PORT + 1)) || fail "port $((PORT + 1)) (slurmd) is taken; set GANGA_SLURM_PORT"
    say "starting slurmd ($CPUS CPUs)"
    SLURMD_STARTED=$(date +%s)
    slurmd -f "$CONF" -N localhost 8>&- </dev/null >>"$LOGS/daemons.out" 2>&1 || fail "slurmd did not start"
fi

# Right after a slurmctld restart sinfo shows the node's saved state, so a new slurmd counts
# only once slurmctld has heard from it.
node_ready() {
    local state started
    state=$(sinfo -h -N -n localhost -o %T) || return 1
    case $state in idle|mixed|allocated|completing) ;; *) return 1 ;; esac
    scontrol show slurmd >/dev/null || return 1
    [ "$SLURMD_STARTED" = 0 ] && return 0
    started=$(scontrol show node localhost | sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p')
    [ -n "$started" ] && [ "$started" != None ] && [ "$(date -d "$started" +%s)" -ge "$SLURMD_STARTED" ]
}
resumed=0
until node_ready >/dev/null 2>&1; do
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null || true)
    if [ $resumed = 0 ] && { [[ $state == drain* ]] || [ "$state" = down ]; }; then
        scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
        resumed=1
    fi
    [ "$(date +%s)" -lt "$DEADLINE" ] || fail "node localhost is '${state:-?}', not idle, after ${TIMEOUT}s"
    running slurmd >/dev/null || fail "slurmd exited while starting"
    sleep 0.2
done

printf "export SLURM_CONF='%s'\n" "$CONF" >"$HOME_DIR/env"
say "ready: $(sinfo -V), node localhost with $CPUS CPUs, partition debug"
say "state in $HOME_DIR (config $ETC, logs $LOGS); stop with scripts/slurm-down.sh"
cat "$HOME_DIR/env"
