#!/usr/bin/env bash
# condor-up.sh - ganga-async's HTCondor test pool: build (if missing) a Debian trixie chroot with HTCondor
# (Debian's minicondor 23.x) and start a single-node pool in it, without
# systemd. Debian bookworm has no HTCondor package and trixie's needs a newer
# libc, hence the chroot. The daemons listen on 127.0.0.1 only.
#
#   eval "$(./condor-up.sh)"      # progress goes to stderr, exports to stdout
#   python -c 'import htcondor2; print(htcondor2.Schedd().query())'
#
# Idempotent: a healthy pool is left alone; a dead condor_master (and any
# daemons it left behind) is replaced; a changed config restarts the pool.
# Stop with condor-down.sh (same HTCONDOR_HOME / HTCONDOR_ROOT).
#
# The pool's mounts (/proc, a private /dev, the shared dirs) exist only in a
# private mount namespace (unshare --mount) that lives as long as the pool's
# processes: from the host, $HTCONDOR_ROOT/tmp is an ordinary empty directory,
# so deleting the chroot can never recurse into the host's /tmp, and nothing
# needs unmounting when the pool ends.
#
# Environment knobs (all optional):
#   HTCONDOR_HOME        client config, token, logs of this script  [/var/tmp/ganga-async-htcondor]
#   HTCONDOR_ROOT        the chroot (built here if missing)               [$HTCONDOR_HOME/root]
#   HTCONDOR_SHARED_DIR  host dir(s), ':'-separated, bind-mounted at the same path
#                        in the chroot; job files must live under one      [/tmp]
#   HTCONDOR_PORT        collector / shared port on 127.0.0.1               [9618]
#   HTCONDOR_CPUS        CPUs of the single partitionable slot         [$(nproc)]
#                        (more than nproc is allowed: cores get oversubscribed)
#   HTCONDOR_JOB_USER    chroot user that jobs run as (= job Owner)      [htcuser]
#   HTCONDOR_JOB_UID     its uid and gid                                   [1000]
#   HTCONDOR_HOST_UID    host uid whose files jobs should own                 [0]
#   HTCONDOR_IDMAP       auto|1|0: mount the shared dirs id-mapped so that host
#                        uid HTCONDOR_HOST_UID <-> HTCONDOR_JOB_UID (swapped);
#                        auto = if the kernel supports it                  [auto]
#   HTCONDOR_DOMAIN      UID_DOMAIN = FILESYSTEM_DOMAIN = TRUST_DOMAIN
#                                                            [htcondor-single.local]
#   HTCONDOR_TIMEOUT     s to wait for a healthy pool                       [120]
#   HTCONDOR_SUITE       Debian suite of the chroot                      [trixie]
#   HTCONDOR_MIRROR      Debian mirror     [the one in the host's apt sources]
#   HTCONDOR_EXTRA_PACKAGES  more Debian packages for the chroot (jobs' userland)
#   HTCONDOR_SKIP_BUILD  1 = never debootstrap/apt-get; fail if the chroot is missing
set -euo pipefail

HTCONDOR_HOME=$(realpath -m "${HTCONDOR_HOME:-/var/tmp/ganga-async-htcondor}")
HTCONDOR_ROOT=$(realpath -m "${HTCONDOR_ROOT:-$HTCONDOR_HOME/root}")
HTCONDOR_SHARED_DIR=${HTCONDOR_SHARED_DIR:-/tmp}
HTCONDOR_PORT=${HTCONDOR_PORT:-9618}
HTCONDOR_CPUS=${HTCONDOR_CPUS:-$(nproc)}
HTCONDOR_JOB_USER=${HTCONDOR_JOB_USER:-htcuser}
HTCONDOR_JOB_UID=${HTCONDOR_JOB_UID:-1000}
HTCONDOR_HOST_UID=${HTCONDOR_HOST_UID:-0}
HTCONDOR_IDMAP=${HTCONDOR_IDMAP:-auto}
HTCONDOR_DOMAIN=${HTCONDOR_DOMAIN:-htcondor-single.local}
HTCONDOR_TIMEOUT=${HTCONDOR_TIMEOUT:-120}
HTCONDOR_SUITE=${HTCONDOR_SUITE:-trixie}
HTCONDOR_MIRROR=${HTCONDOR_MIRROR:-}
HTCONDOR_EXTRA_PACKAGES=${HTCONDOR_EXTRA_PACKAGES:-}
HTCONDOR_SKIP_BUILD=${HTCONDOR_SKIP_BUILD:-0}

R=$HTCONDOR_ROOT
LOGD=$HTCONDOR_HOME/log
CLIENT=$HTCONDOR_HOME/client
BIND=$HTCONDOR_HOME/bin
CONDOR_LOG=$R/var/log/condor
PIDFILE_IN=/run/htcondor-single/condor_master.pid     # path inside the chroot
PIDFILE=$R$PIDFILE_IN
CONF_IN=/etc/condor/config.d/99-htcondor-single.conf
TOKDIR_IN=/etc/condor/htcondor-single-client-tokens   # client token, inside the chroot
TOKEN_NAME=htcondor-single.token
PACKAGES=(minicondor python3)
# shellcheck disable=SC2206
[ -n "$HTCONDOR_EXTRA_PACKAGES" ] && PACKAGES+=($HTCONDOR_EXTRA_PACKAGES)
CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root)

T0=$(date +%s%3N)
log() {
    local ms=$(( $(date +%s%3N) - T0 ))
    printf '[condor-up %3d.%ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*" >&2
}
dump_logs() {
    local f
    for f in "$LOGD"/master.stdout "$CONDOR_LOG"/MasterLog "$CONDOR_LOG"/CollectorLog \
             "$CONDOR_LOG"/SchedLog "$CONDOR_LOG"/StartLog "$CONDOR_LOG"/SharedPortLog; do
        [ -s "$f" ] || continue
        printf '\n===== %s (last 25 lines) =====\n' "$f" >&2
        tail -n 25 "$f" >&2
    done
}
die() {
    printf '\n[condor-up] ERROR: %s\n' "$*" >&2
    [ "${DUMP_LOGS:-0}" = 1 ] && dump_logs
    if [ -s "$PIDFILE" ]; then
        printf '\n[condor-up] what was started so far stays; clean up with:\n  HTCONDOR_HOME=%s HTCONDOR_ROOT=%s %s/condor-down.sh\n' \
            "$HTCONDOR_HOME" "$R" "$(cd "$(dirname "$0")" && pwd)" >&2
    fi
    exit 1
}

# ------------------------------------------------------------- validation --
[ "$(id -u)" = 0 ] || die "must run as root (chroot, mounts, and condor switches to the job user)"
for v in HTCONDOR_PORT HTCONDOR_CPUS HTCONDOR_JOB_UID HTCONDOR_HOST_UID HTCONDOR_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number (got '${!v}')"
done
[ "$HTCONDOR_PORT" -ge 1 ] && [ "$HTCONDOR_PORT" -le 65535 ] || die "HTCONDOR_PORT out of range"
[ "$HTCONDOR_CPUS" -ge 1 ] || die "HTCONDOR_CPUS must be >= 1"
[ "$HTCONDOR_JOB_UID" -ge 1 ] || die "HTCONDOR_JOB_UID must not be 0 (HTCondor never runs jobs as root)"
[[ $HTCONDOR_JOB_USER =~ ^[a-z_][a-z0-9_-]*$ ]] || die "bad HTCONDOR_JOB_USER '$HTCONDOR_JOB_USER'"
[[ $HTCONDOR_DOMAIN =~ ^[A-Za-z0-9.-]+$ ]] || die "bad HTCONDOR_DOMAIN '$HTCONDOR_DOMAIN'"
case $HTCONDOR_IDMAP in auto|0|1) ;; *) die "HTCONDOR_IDMAP must be auto, 1 or 0" ;; esac
SAFE_PATH='^/[A-Za-z0-9._/+-]*$'
for p in "$HTCONDOR_HOME" "$R"; do
    [[ $p =~ $SAFE_PATH ]] || die "path '$p' has unsupported characters"
done
case $R in /|/bin|/boot|/dev|/etc|/home|/lib*|/proc|/root|/run|/sbin|/sys|/tmp|/usr|/var|/var/tmp)
    die "HTCONDOR_ROOT=$R is a system directory" ;;
esac
SHARED=()
IFS=: read -r -a _dirs <<<"$HTCONDOR_SHARED_DIR"
for d in "${_dirs[@]}"; do
    [ -n "$d" ] || continue
    d=${d%/}
    [[ $d =~ $SAFE_PATH ]] && [ -n "$d" ] || die "shared dir '$d' must be an absolute path without unusual characters"
    if [[ $d =~ ^/(bin|boot|dev|etc|lib|lib32|lib64|libx32|proc|run|sbin|sys|usr)(/|$) ]] \
       || [[ $d =~ ^/var(/(lib|log|spool|run|lock|cache|mail|backups))?(/|$) ]] || [ "$d" = /root ]; then
        die "shared dir '$d' would hide part of the chroot's own system; choose another"
    fi
    case "$R/" in "$d"/*) die "HTCONDOR_ROOT ($R) lies inside the shared dir $d: the bind mount would contain the chroot itself; put HTCONDOR_ROOT elsewhere (the default is under /var/tmp)" ;; esac
    case "$d/" in "$R"/*) die "shared dir $d lies inside HTCONDOR_ROOT" ;; esac
    if [ ! -d "$d" ]; then
        mkdir -p "$d" && chmod 1777 "$d"
        log "created shared dir $d (mode 1777)"
    fi
    [ "$(realpath "$d")" = "$d" ] || die "shared dir $d is (or passes through) a symlink; give its real path $(realpath "$d")"
    SHARED+=("$d")
done
[ ${#SHARED[@]} -gt 0 ] || die "HTCONDOR_SHARED_DIR is empty"
SHARED_STR=$(IFS=:; echo "${SHARED[*]}")

# ----------------------------------------------------------------- helpers --
# alive PID: process exists and is not a zombie
alive() {
    local st
    st=$( { cat "/proc/$1/stat"; } 2>/dev/null ) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}
still_alive() { local p; for p in "$@"; do alive "$p" && echo "$p"; done; return 0; }
ppid_of() { local st; st=$( { cat "/proc/$1/stat"; } 2>/dev/null ) || return 1; st=${st##*) }; set -- $st; echo "$2"; }
# pids of live processes whose root directory is our chroot
chroot_pids() {
    local p pid
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] && alive "$pid" && echo "$pid"
    done
    return 0
}
# the live condor_master recorded in our pid file (and running in our chroot)
master_pid() {
    local pid
    [ -s "$PIDFILE" ] || return 1
    pid=$(tr -dc '0-9' < "$PIDFILE")
    [ -n "$pid" ] && alive "$pid" || return 1
    [ "$( { cat "/proc/$pid/comm"; } 2>/dev/null)" = condor_master ] || return 1
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$R" ] || return 1
    echo "$pid"
}
# chroot processes left without a master: their chain of parents inside the
# chroot ends at pid 1 (reparented). Processes started by a live shell outside
# (e.g. someone's 'chroot $R condor_q') are not listed.
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
kill_orphans() {
    local pids i
    pids=$(orphan_pids | tr '\n' ' ')
    [ -n "${pids// }" ] || return 0
    log "ending processes left in the chroot by a dead condor_master: $pids"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 50); do
        pids=$(still_alive $pids | tr '\n' ' ')
        [ -n "${pids// }" ] || return 0
        sleep 0.2
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.5
}
# run a command in the chroot with a clean environment; inside the pool's
# mount namespace when condor_master runs (then /proc and the shared dirs exist)
in_chroot() {
    local pid
    if pid=$(master_pid); then
        "${CLEAN_ENV[@]}" nsenter --mount="/proc/$pid/ns/mnt" -- chroot "$R" "$@"
    else
        "${CLEAN_ENV[@]}" chroot "$R" "$@"
    fi
}
mounted_under() { awk -v p="$1" '$5 == p || index($5, p "/") == 1 {f = 1} END {exit !f}' /proc/self/mountinfo; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# write_file PATH MODE CONTENT -> returns 0 if the file changed
write_file() {
    local path=$1 mode=$2 content=$3
    if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
        chmod "$mode" "$path"
        return 1
    fi
    printf '%s\n' "$content" > "$path.tmp"
    chmod "$mode" "$path.tmp"
    mv -f "$path.tmp" "$path"
    return 0
}
unmount_under() {   # unmount everything at or below $1, deepest first
    local m i
    for i in 1 2 3 4 5; do
        m=$(awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
        [ -n "$m" ] || return 0
        for x in $m; do umount "$x" 2>/dev/null || true; done
    done
    m=$(awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
    for x in $m; do umount -l "$x" 2>/dev/null || true; done
}

# ----------------------------------------------------------------- mounts --
# Run as: unshare --mount --propagation private -- bash -c "$NS_SETUP" ns \
#             ROOT full|basic REPORT JOB_UID HOST_UID IDMAP SHARED -- COMMAND...
# Mounts /proc and a minimal /dev (not a bind of the host's /dev), and in
# "full" mode the shared dirs, then execs COMMAND. The mounts disappear with
# the last process of the namespace.
NS_SETUP='
set -eu
R=$1 MODE=$2 REPORT=$3 J=$4 H=$5 IDMAP=$6 SHARED=$7
shift 8
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t tmpfs -o mode=755,size=1m,nosuid htcondor-dev "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3;   mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/full" c 1 7;   mknod -m 666 "$R/dev/random" c 1 8
mknod -m 666 "$R/dev/urandom" c 1 9; mknod -m 666 "$R/dev/tty" c 5 0
ln -s /proc/self/fd "$R/dev/fd";    ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
mkdir -m 1777 "$R/dev/shm"
mount -t tmpfs -o mode=1777,size=256m,nosuid,nodev htcondor-shm "$R/dev/shm"
: > "$REPORT"
if [ "$MODE" = full ]; then
    want=0; [ "$IDMAP" != 0 ] && [ "$J" != "$H" ] && want=1
    if [ $want = 1 ]; then
        # swap H <-> J, identity for every other id. X-mount.idmap needs
        # util-linux >= 2.39: the chroot'"'"'s mount, run with the chroot'"'"'s loader.
        lo=$(( H < J ? H : J )); hi=$(( H < J ? J : H )); map=
        for k in u g; do
            map="$map$k:$H:$J:1 $k:$J:$H:1 "
            [ $lo -gt 0 ] && map="$map$k:0:0:$lo "
            [ $((hi - lo - 1)) -gt 0 ] && map="$map$k:$((lo + 1)):$((lo + 1)):$((hi - lo - 1)) "
            map="$map$k:$((hi + 1)):$((hi + 1)):$((4294967295 - hi - 1)) "
        done
        ld=$(ls "$R"/lib64/ld-linux-*.so.* "$R"/lib/ld-linux-*.so.* 2>/dev/null | head -n 1) || true
        libdir=$(dirname "$(ls "$R"/usr/lib/*-linux-gnu*/libmount.so.1 2>/dev/null | head -n 1)") || true
    fi
    IFS=:
    for d in $SHARED; do
        mkdir -p "$R$d"
        if [ $want = 1 ] && [ -n "$ld" ] && "$ld" --library-path "$libdir" "$R/usr/bin/mount" --bind \
                -o "X-mount.idmap=${map% }" "$d" "$R$d" 2>"$REPORT.err"; then
            echo "idmap $d" >> "$REPORT"
        elif [ $want = 1 ] && [ "$IDMAP" = 1 ]; then
            echo "ERROR: id-mapped bind mount of $d failed: $(cat "$REPORT.err")" >&2
            exit 3
        else
            mount --bind "$d" "$R$d"
            if [ $want = 1 ]; then echo "fallback $d $(tr "\n" " " < "$REPORT.err")" >> "$REPORT"
            else echo "bind $d" >> "$REPORT"; fi
        fi
    done
    unset IFS
fi
exec "$@"
'
in_namespace() {   # in_namespace full|basic COMMAND...  (new private mount namespace)
    local mode=$1; shift
    unshare --mount --propagation private -- bash -c "$NS_SETUP" ns "$R" "$mode" "$LOGD/mounts.txt" \
        "$HTCONDOR_JOB_UID" "$HTCONDOR_HOST_UID" "$HTCONDOR_IDMAP" "$SHARED_STR" -- "$@"
}

# ------------------------------------------------------------------ build --
apt_proxy() { apt-config shell P Acquire::http::Proxy 2>/dev/null | sed -n "s/^P='\(.*\)'$/\1/p"; }
detect_mirror() {
    local f uri
    # deb822 files: the URIs of a stanza that is not the security archive
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk 'BEGIN{RS=""; FS="\n"} {u=""; s=""; for(i=1;i<=NF;i++){ if($i ~ /^URIs:/){sub(/^URIs:[ \t]*/,"",$i); u=$i} if($i ~ /^Suites:/) s=$i } if (u ~ /\/debian\/?( |$)/ && s !~ /security/) {split(u,a," "); print a[1]; exit} }' "$f")
        [ -n "$uri" ] && { echo "${uri%/}"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(sed -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $2 ~ /\/debian\/?$/ && $3 !~ /security/ {print $2; exit}')
        [ -n "$uri" ] && { echo "${uri%/}"; return; }
    done
    return 1
}
chroot_has_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        [ "$(in_chroot dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || return 1
    done
}
build_chroot() {
    local partial=$R.partial proxy mirror
    if [ ! -x "$R/usr/bin/apt-get" ]; then
        [ "$HTCONDOR_SKIP_BUILD" = 1 ] && die "no chroot at $R and HTCONDOR_SKIP_BUILD=1"
        if [ -e "$R" ] && [ -n "$(ls -A "$R" 2>/dev/null)" ]; then
            die "$R exists, is not empty and holds no Debian system; refusing to touch it"
        fi
        if ! command -v debootstrap >/dev/null; then
            log "installing debootstrap on the host"
            "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" --log "$LOGD/build.log" debootstrap \
                || die "could not install debootstrap (log: $LOGD/build.log)"
        fi
        mirror=${HTCONDOR_MIRROR:-$(detect_mirror)} \
            || die "no Debian mirror found in apt's sources; set HTCONDOR_MIRROR to one"
        proxy=$(apt_proxy)
        if [ -e "$partial" ]; then
            unmount_under "$partial"
            mounted_under "$partial" && die "something is still mounted below $partial; not deleting it"
            rm -rf --one-file-system "$partial"
        fi
        log "debootstrap --variant=minbase $HTCONDOR_SUITE from $mirror into $partial (about 30-120 s; log: $LOGD/build.log)"
        # (in a private mount namespace: the /proc and /sys that debootstrap
        # mounts in the target cannot outlive it)
        if ! http_proxy=$proxy nice -n 10 unshare --mount --propagation private -- \
                debootstrap --variant=minbase "$HTCONDOR_SUITE" "$partial" "$mirror" >> "$LOGD/build.log" 2>&1; then
            tail -n 20 "$LOGD/build.log" >&2
            die "debootstrap failed (full log: $LOGD/build.log; a different mirror can be set with HTCONDOR_MIRROR)"
        fi
        mounted_under "$partial" && die "something is still mounted below $partial"
        [ -d "$R" ] && rmdir "$R"
        mv "$partial" "$R"
        log "base system ready"
    fi
    chroot_has_packages && return 0
    [ "$HTCONDOR_SKIP_BUILD" = 1 ] && die "packages missing in $R and HTCONDOR_SKIP_BUILD=1: ${PACKAGES[*]}"
    log "installing in the chroot: ${PACKAGES[*]} (about 10-60 s)"
    # no package script may start a service
    printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
    chmod 755 "$R/usr/sbin/policy-rc.d"
    cp -L /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
    proxy=$(apt_proxy)
    # install; if that fails (stale package lists: 404), update and retry
    if ! in_namespace basic "${CLEAN_ENV[@]}" DEBIAN_FRONTEND=noninteractive http_proxy="$proxy" chroot "$R" \
            nice -n 10 sh -c 'A="apt-get -y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
                $A install --no-install-recommends "$@" || { $A update && $A install --no-install-recommends "$@"; } && apt-get clean' \
            sh "${PACKAGES[@]}" >> "$LOGD/build.log" 2>&1; then
        tail -n 20 "$LOGD/build.log" >&2
        die "apt-get in the chroot failed (full log: $LOGD/build.log)"
    fi
    log "packages installed: $(in_chroot condor_version | head -n 1)"
}

# ------------------------------------------------------------------- setup --
mkdir -p "$HTCONDOR_HOME" "$LOGD" "$CLIENT/tokens.d" "$BIND"
chmod 755 "$HTCONDOR_HOME"
chmod 700 "$CLIENT/tokens.d"
exec 9>"$HTCONDOR_HOME/.lock"
flock -w 900 9 || die "another start/condor-down.sh holds $HTCONDOR_HOME/.lock"
touch "$HTCONDOR_HOME/.htcondor-single"          # marker used by condor-down.sh --purge-all
printf 'HTCONDOR_ROOT=%s\n' "$R" > "$HTCONDOR_HOME/root.path"

if ! master_pid >/dev/null && [ -d "$R/proc" ]; then
    # master gone (killed, or never started): end what it left behind first
    kill_orphans
fi

# mounts in the host's namespace below the chroot (left by an older version
# of this script, or made by hand) are undone while no pool runs
if ! master_pid >/dev/null && mounted_under "$R"; then
    log "unmounting leftover mounts below $R"
    unmount_under "$R"
fi

build_chroot
touch "$R/.htcondor-single"

# host name resolution inside the chroot (condor looks up its own host name)
HOSTS=$(cat /etc/hosts 2>/dev/null || true)
grep -qw "$(hostname)" <<<"$HOSTS" || HOSTS+=$'\n'"127.0.0.1 $(hostname)"
write_file "$R/etc/hosts" 644 "$HOSTS" || true
cp -L /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
[ -e "$R/usr/sbin/policy-rc.d" ] || { printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod 755 "$R/usr/sbin/policy-rc.d"; }

# job user
J=$HTCONDOR_JOB_UID
pw=$(in_chroot getent passwd "$HTCONDOR_JOB_USER" || true)
if [ -z "$pw" ]; then
    other=$(in_chroot getent passwd "$J" | cut -d: -f1 || true)
    [ -z "$other" ] || die "uid $J is already used in the chroot by '$other'; set HTCONDOR_JOB_UID or HTCONDOR_JOB_USER"
    in_chroot getent group "$J" >/dev/null || in_chroot groupadd -g "$J" "$HTCONDOR_JOB_USER"
    in_chroot useradd -m -u "$J" -g "$J" -s /bin/bash "$HTCONDOR_JOB_USER"
    log "created chroot user $HTCONDOR_JOB_USER (uid $J)"
elif [ "$(cut -d: -f3 <<<"$pw")" != "$J" ]; then
    die "chroot user $HTCONDOR_JOB_USER exists with uid $(cut -d: -f3 <<<"$pw"), not $J"
fi

# directories the Debian package expects systemd-tmpfiles to create
mkdir -p "$R/run/condor" "$R/run/lock/condor" "$R/var/log/condor" "$R/var/spool/condor" \
         "$R/var/lib/condor/execute" "$R/run/htcondor-single"
in_chroot chown condor:condor /run/condor /run/lock/condor /var/log/condor /var/spool/condor /var/lib/condor \
    /var/lib/condor/execute /run/htcondor-single   # (the master writes its pid file as user condor)
mkdir -p -m 1777 "$R/var/lib/condor/fs-auth"
chmod 1777 "$R/var/lib/condor/fs-auth"

CONF_TEXT="# generated by condor-up.sh - edits are overwritten
# single node, loopback only
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = 127.0.0.1:$HTCONDOR_PORT
SHARED_PORT_PORT = $HTCONDOR_PORT
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
# else the shared port also listens on the host's IPv6 address
ENABLE_IPV6 = False
ENABLE_IPV4 = True
# no mailer in the chroot
MAIL = /bin/true
# fixed domains, so that tokens and jobs survive host name changes
UID_DOMAIN = $HTCONDOR_DOMAIN
FILESYSTEM_DOMAIN = $HTCONDOR_DOMAIN
TRUST_DOMAIN = $HTCONDOR_DOMAIN
TRUST_UID_DOMAIN = True
# never touch the host's kernel settings (the default script raises pid_max,
# widens ip_local_port_range, ... for the whole machine)
ENABLE_KERNEL_TUNING = False
LINUX_KERNEL_TUNING_SCRIPT =
# jobs must see the shared dirs (e.g. /tmp) as they are: no private /tmp,
# and no namespaces (unshare fails in a chroot)
MOUNT_UNDER_SCRATCH =
USE_PID_NAMESPACES = False
# FS authentication scratch files: not in the shared /tmp
FS_LOCAL_DIR = /var/lib/condor/fs-auth
NUM_CPUS = $HTCONDOR_CPUS
# condor_q / condor_history show all users' jobs (the CLI runs as root)
CONDOR_Q_ONLY_MY_JOBS = False
CONDOR_Q_DASH_BATCH_IS_DEFAULT = False
# quick scheduling for tests
SCHEDD_INTERVAL = 5
SCHEDD_MIN_INTERVAL = 1
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
STARTER_UPDATE_INTERVAL = 5
UPDATE_INTERVAL = 5
RUNBENCHMARKS = 0
# a job whose starter died with a killed pool goes back to idle after 60 s,
# not after the default 40 min of reconnect attempts
JOB_DEFAULT_LEASE_DURATION = 60"
CONF_CHANGED=0
write_file "$R$CONF_IN" 644 "$CONF_TEXT" && CONF_CHANGED=1

# ---------------------------------------------------------------- daemons --
DEADLINE=$(( $(date +%s) + HTCONDOR_TIMEOUT ))
stop_master() {
    local pid i
    pid=$(master_pid) || return 0
    log "stopping condor_master (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do alive "$pid" || break; sleep 0.2; done
    alive "$pid" && { kill -QUIT "$pid" 2>/dev/null || true; sleep 3; }
    alive "$pid" && { kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; }
    kill_orphans
    rm -f "$PIDFILE"
}

if pid=$(master_pid); then
    if [ $CONF_CHANGED = 1 ]; then
        log "config changed: restarting the pool"
        stop_master
    else
        log "condor_master already running (pid $pid)"
    fi
fi
STARTED=0
if ! master_pid >/dev/null; then
    rm -f "$PIDFILE"
    port_busy "$HTCONDOR_PORT" && die "127.0.0.1:$HTCONDOR_PORT is already in use by another process; set HTCONDOR_PORT"
    log "starting condor_master in $R (127.0.0.1:$HTCONDOR_PORT)"
    # condor_master daemonizes; its processes keep the namespace (and mounts) alive
    in_namespace full "${CLEAN_ENV[@]}" chroot "$R" /usr/sbin/condor_master -pidfile "$PIDFILE_IN" \
        9>&- </dev/null >>"$LOGD/master.stdout" 2>&1 || { DUMP_LOGS=1; die "condor_master failed to start (mounts: $(cat "$LOGD/mounts.txt" 2>/dev/null | tr '\n' ' '))"; }
    STARTED=1
    while read -r kind dir err; do
        case $kind in
            idmap) log "shared dir $dir: id-mapped bind (host uid $HTCONDOR_HOST_UID <-> chroot uid $HTCONDOR_JOB_UID)" ;;
            bind) log "shared dir $dir: plain bind" ;;
            fallback) log "WARNING: shared dir $dir: id-mapped mount not possible ($err); plain bind: jobs (uid $HTCONDOR_JOB_UID) can only use files they may access" ;;
        esac
    done < "$LOGD/mounts.txt"
fi

# ------------------------------------------------------------------ ready? --
pool_state() {   # prints the daemon types the collector knows
    in_chroot timeout 10 condor_status -any -af MyType 2>/dev/null | sort -u | tr '\n' ' '
}
if [ $STARTED = 1 ]; then
    for i in $(seq 50); do master_pid >/dev/null && break; sleep 0.2; done
fi
ready=0
while [ "$(date +%s)" -lt "$DEADLINE" ]; do
    master_pid >/dev/null || { DUMP_LOGS=1; die "condor_master is not running (it exited during startup?)"; }
    st=$(pool_state)
    if [[ $st == *Collector* && $st == *Negotiator* && $st == *Scheduler* && $st == *Machine* ]] \
       && in_chroot timeout 10 condor_q -totals >/dev/null 2>&1; then
        ready=1; break
    fi
    sleep 0.3
done
[ $ready = 1 ] || { DUMP_LOGS=1; die "timed out (${HTCONDOR_TIMEOUT}s) waiting for collector, negotiator, schedd and startd (seen: ${st:-nothing})"; }

# ------------------------------------------------------------------ token --
token_ok() {
    in_chroot env _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS=IDTOKENS _CONDOR_SEC_TOKEN_DIRECTORY="$TOKDIR_IN" \
        timeout 15 condor_ping -type SCHEDD -verbose WRITE 2>&1 | grep -q "$HTCONDOR_JOB_USER@$HTCONDOR_DOMAIN"
}
mkdir -p "$R$TOKDIR_IN"
chmod 700 "$R$TOKDIR_IN"
if [ ! -s "$R$TOKDIR_IN/$TOKEN_NAME" ] || ! token_ok; then
    log "creating IDTOKEN for $HTCONDOR_JOB_USER@$HTCONDOR_DOMAIN"
    in_chroot condor_token_create -identity "$HTCONDOR_JOB_USER@$HTCONDOR_DOMAIN" > "$R$TOKDIR_IN/$TOKEN_NAME.tmp" \
        || die "condor_token_create failed"
    chmod 600 "$R$TOKDIR_IN/$TOKEN_NAME.tmp"
    mv -f "$R$TOKDIR_IN/$TOKEN_NAME.tmp" "$R$TOKDIR_IN/$TOKEN_NAME"
    token_ok || { DUMP_LOGS=1; die "the new token is not accepted by the schedd (condor_ping with IDTOKENS failed)"; }
fi
if ! cmp -s "$R$TOKDIR_IN/$TOKEN_NAME" "$CLIENT/tokens.d/$TOKEN_NAME"; then
    install -m 600 "$R$TOKDIR_IN/$TOKEN_NAME" "$CLIENT/tokens.d/$TOKEN_NAME"
fi

# ----------------------------------------------------------- client files --
write_file "$CLIENT/condor_config" 644 "# generated by condor-up.sh: host-side client config for the pool in
# $R (htcondor2 bindings; CONDOR_CONFIG points here)
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = 127.0.0.1:$HTCONDOR_PORT
SCHEDD_ADDRESS_FILE = $R/var/spool/condor/.schedd_address
UID_DOMAIN = $HTCONDOR_DOMAIN
FILESYSTEM_DOMAIN = $HTCONDOR_DOMAIN
TRUST_DOMAIN = $HTCONDOR_DOMAIN
SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS
SEC_TOKEN_DIRECTORY = $CLIENT/tokens.d
# (used by the bindings' submit: see the pool's config)
JOB_DEFAULT_LEASE_DURATION = 60
LOG = $CLIENT
LOCK = $CLIENT" || true

CHROOT_BIN=$(command -v chroot); NSENTER_BIN=$(command -v nsenter)
write_file "$BIND/htcondor-chroot" 755 "#!/bin/sh
# generated by condor-up.sh: run a command inside the chroot
# $R, in the pool's mount namespace (so the shared dirs and /proc are there),
# with a clean environment, as root (the queue super user) or, with -u (and
# always for condor_submit*), as the job user $HTCONDOR_JOB_USER. The current directory
# is kept when it lies under a shared dir ($SHARED_STR), else it is /.
#   htcondor-chroot [-u] COMMAND [ARGS...]     or via the symlinks condor_q, ...
R='$R'; U='$HTCONDOR_JOB_USER'; SHARED='$SHARED_STR'
asuser=0; me=\${0##*/}
case \$me in
    htcondor-chroot) [ \"\${1:-}\" = -u ] && { asuser=1; shift; } ;;
    condor_submit|condor_submit_dag|condor_run) asuser=1; set -- \"\$me\" \"\$@\" ;;
    *) set -- \"\$me\" \"\$@\" ;;
esac
[ \$# -gt 0 ] || { echo \"usage: \$me [-u] COMMAND [ARGS...]\" >&2; exit 2; }
pid=\$(cat \"\$R$PIDFILE_IN\" 2>/dev/null)
if [ -n \"\$pid\" ] && [ \"\$(readlink /proc/\$pid/root 2>/dev/null)\" = \"\$R\" ]; then
    enter=\"$NSENTER_BIN --mount=/proc/\$pid/ns/mnt --\"
else
    echo \"\$me: the pool in \$R is not running (no shared dirs, no /proc in the chroot)\" >&2; enter=
fi
dir=/
IFS=:; for d in \$SHARED; do case \"\$PWD/\" in \"\$d\"/*) dir=\$PWD ;; esac; done; unset IFS
if [ \$asuser = 1 ]; then
    exec env -i PATH=/usr/bin:/bin LANG=C.UTF-8 \$enter $CHROOT_BIN \"\$R\" /usr/bin/setpriv --reuid=\"\$U\" --regid=\"\$U\" --init-groups --reset-env \\
        /bin/sh -c 'cd \"\$1\" && shift && exec \"\$@\"' sh \"\$dir\" \"\$@\"
fi
exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root \$enter $CHROOT_BIN \"\$R\" \\
    /bin/sh -c 'cd \"\$1\" && shift && exec \"\$@\"' sh \"\$dir\" \"\$@\"" || true
for c in condor_q condor_history condor_status condor_rm condor_hold condor_release condor_qedit \
         condor_submit condor_wait condor_config_val condor_ping condor_userlog condor_version condor_tail; do
    [ "$(readlink "$BIND/$c" 2>/dev/null)" = htcondor-chroot ] || ln -sfn htcondor-chroot "$BIND/$c"
done

ENV_TEXT="export HTCONDOR_HOME='$HTCONDOR_HOME'
export HTCONDOR_ROOT='$R'
export HTCONDOR_SHARED_DIR='$SHARED_STR'
export HTCONDOR_BIN='$BIND'
export HTCONDOR_JOB_USER='$HTCONDOR_JOB_USER'
export HTCONDOR_COLLECTOR='127.0.0.1:$HTCONDOR_PORT'
export CONDOR_CONFIG='$CLIENT/condor_config'
export _CONDOR_SEC_TOKEN_DIRECTORY='$CLIENT/tokens.d'
export _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS='IDTOKENS'"
write_file "$HTCONDOR_HOME/htcondor.env" 644 "$ENV_TEXT" || true

slots=$(in_chroot condor_status -af Name State Cpus 2>/dev/null | paste -sd, -)
log "pool ready: $(in_chroot condor_version | sed -n 's/^\$CondorVersion: \([^ ]*\).*/HTCondor \1/p'), slots: $slots; jobs run as $HTCONDOR_JOB_USER (uid $J); shared: $SHARED_STR$(grep -q '^idmap' "$LOGD/mounts.txt" 2>/dev/null && echo " (id-mapped: host uid $HTCONDOR_HOST_UID files are the job user's)")"
printf '%s\n' "$ENV_TEXT"
