#!/usr/bin/env bash
# ceph-rgw.sh: a real one-node Ceph RADOS Gateway (S3) on 127.0.0.1, for dosna's tests.
#
# Usage:
#   scripts/ceph-rgw.sh start          start (or reuse) the instance; prints `export ...` lines
#   scripts/ceph-rgw.sh stop [--keep]  stop our daemons (rgw -> osd -> mon); removes the scratch
#                                      folder unless --keep
#   scripts/ceph-rgw.sh status         exit 0 and print the endpoint if running, else exit 1
#   scripts/ceph-rgw.sh env            print the `export ...` lines of the running instance
#
#   eval "$(scripts/ceph-rgw.sh start)"   # messages go to stderr, only exports to stdout
#
# Environment (all optional):
#   DOSNA_CEPH_DIR             scratch folder (default /tmp/dosna-ceph; must be < 60 chars,
#                              because admin socket paths are limited to 107 bytes)
#   DOSNA_CEPH_MON_PORT        monitor msgr2 port (default 3300); msgr1 uses the next port (3301)
#   DOSNA_RGW_PORT             RGW HTTP port (default 7480)
#   DOSNA_CEPH_OBJECTSTORE     memstore (default, data in RAM, lost on stop) or bluestore
#                              (sparse file under the scratch folder; `stop --keep` then `start`
#                              brings back the same data)
#   DOSNA_CEPH_MEMSTORE_BYTES  memstore capacity (default 4294967296)
#   DOSNA_CEPH_BLOCK_BYTES     bluestore sparse block file size (default 10737418240)
#   DOSNA_S3_ACCESS_KEY_ID     S3 access key (default dosna-test-access)
#   DOSNA_S3_SECRET_ACCESS_KEY S3 secret key (default dosna-test-secret)
#   DOSNA_CEPH_START_TIMEOUT   seconds to wait for RGW to answer 200 (default 60)
# When restarting kept bluestore data, unset variables default to the kept instance's settings.
# The OSD picks free ports in Ceph's range 6800-7300 on 127.0.0.1; keep DOSNA_RGW_PORT outside it.
# Two instances can run side by side with different DOSNA_CEPH_DIR and ports.
#
# Files written under the scratch folder <dir>:
#   <dir>/ceph.conf         the cluster's configuration (every command uses -c <dir>/ceph.conf)
#   <dir>/env.sh            the export lines printed by start/env:
#                             DOSNA_S3_ENDPOINT=http://127.0.0.1:<port>, AWS_ACCESS_KEY_ID,
#                             AWS_SECRET_ACCESS_KEY, AWS_REGION=us-east-1, DOSNA_CEPH_CONF
#   <dir>/dosna-ceph.conf   ceph-style client conf for dosna's `ceph` backend (INI). It holds the
#                           same keys in two identical sections, [client.rgw] and [dosna]:
#                             endpoint   = http://127.0.0.1:<port>   RGW S3 endpoint
#                             access_key = <access key>              S3 access key id
#                             secret_key = <secret key>              S3 secret access key
#                             region     = us-east-1                 S3 signing region
#   <dir>/log/              daemon logs (mon.a.log, osd.0.log, client.rgw.a.log, ...) and
#                           ceph-rgw.sh.log (output of every setup command)
#   <dir>/run/              pid files and admin sockets
#
# Needs root to install packages (Debian: ceph-mon ceph-osd radosgw ceph-common) when missing.
# Only listens on 127.0.0.1. No cephx (auth none), no ceph-mgr.
set -euo pipefail

PROG=ceph-rgw.sh
DIR=${DOSNA_CEPH_DIR:-/tmp/dosna-ceph}
DIR=${DIR%/}
CONF="$DIR/ceph.conf"
STATE="$DIR/instance.env"
MARKER="$DIR/.dosna-ceph"
READY="$DIR/.ready"
LOGDIR="$DIR/log"
RUNDIR="$DIR/run"
SCRIPTLOG="$LOGDIR/$PROG.log"
REGION=us-east-1

# Daemon names, in stop order.
DAEMONS=(client.rgw.a osd.0 mon.a)

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

check_dir() {
  [[ "$DIR" == /* ]] || die "DOSNA_CEPH_DIR must be an absolute path (got '$DIR')"
  if (( ${#DIR} >= 60 )); then
    die "scratch folder '$DIR' is ${#DIR} chars; keep it under 60 (admin socket paths are limited to 107 bytes)"
  fi
  [[ "$DIR" != "/" && "$DIR" != "/tmp" ]] || die "refusing to use '$DIR' as scratch folder"
}

# ---------------------------------------------------------------- process helpers

pidfile_of() { echo "$RUNDIR/$1.pid"; }

# Alive = /proc/PID/cmdline non-empty (zombies have an empty cmdline).
pid_alive() {
  local pid=$1 cmd
  [[ -n "$pid" && -r /proc/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null) || return 1
  [[ -n "$cmd" ]]
}

# Ours = alive and its command line names our ceph.conf.
pid_ours() {
  local pid=$1 cmd
  pid_alive "$pid" || return 1
  cmd=$(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null) || return 1
  [[ " $cmd " == *" $CONF "* ]]
}

daemon_pid() {
  local f
  f=$(pidfile_of "$1")
  [[ -s "$f" ]] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$f")
  [[ -n "$pid" ]] || return 1
  echo "$pid"
}

daemon_running() {
  local pid
  pid=$(daemon_pid "$1") || return 1
  pid_ours "$pid"
}

# Waits until process $1 is gone, at most $2 tenths of a second; fails if it is still alive.
wait_gone() {
  local i
  for ((i = 0; i < $2; i++)); do
    pid_alive "$1" || return 0
    sleep 0.1
  done
  ! pid_alive "$1"
}

# Stops one daemon by its pid file: TERM, wait up to 20 s, then KILL, wait up to 10 s.
stop_daemon() {
  local name=$1 pid
  pid=$(daemon_pid "$name") || { rm -f "$(pidfile_of "$name")"; return 0; }
  if ! pid_ours "$pid"; then
    rm -f "$(pidfile_of "$name")"
    return 0
  fi
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 200; then
    say "$name (pid $pid) did not exit after 20 s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 100 || die "$name (pid $pid) is still alive after KILL"
  fi
  rm -f "$(pidfile_of "$name")"
}

stop_all_daemons() {
  local d
  for d in "${DAEMONS[@]}"; do stop_daemon "$d"; done
}

# ---------------------------------------------------------------- network helpers

port_taken() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -ltnH "sport = :$port" 2>/dev/null)" ]] && return 0
  fi
  # Also try to connect (catches listeners ss can't see, e.g. in another netns view).
  if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
    return 0
  fi
  return 1
}

# Prints the HTTP status code of GET http://127.0.0.1:$1/ (or 000).
http_status() {
  local port=$1
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null || echo 000
  else
    timeout 3 bash -c '
      exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
      printf "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
      read -r _ code _ <&3 && echo "$code"' 2>/dev/null || echo 000
  fi
}

# ---------------------------------------------------------------- state

load_state() {
  S_FSID= S_OBJECTSTORE= S_MON_PORT= S_RGW_PORT= S_ACCESS= S_SECRET=
  if [[ -r "$STATE" ]]; then
    # shellcheck disable=SC1090
    source "$STATE"
  fi
}

save_state() {
  cat >"$STATE" <<EOF
S_FSID=$FSID
S_OBJECTSTORE=$OBJECTSTORE
S_MON_PORT=$MON_PORT
S_RGW_PORT=$RGW_PORT
S_ACCESS=$(printf '%q' "$ACCESS")
S_SECRET=$(printf '%q' "$SECRET")
EOF
}

env_lines() {
  local q_access q_secret
  q_access=$(printf '%q' "$ACCESS")
  q_secret=$(printf '%q' "$SECRET")
  cat <<EOF
export DOSNA_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
export AWS_ACCESS_KEY_ID=$q_access
export AWS_SECRET_ACCESS_KEY=$q_secret
export AWS_REGION=$REGION
export DOSNA_CEPH_CONF=$DIR/dosna-ceph.conf
EOF
}

write_client_files() {
  env_lines >"$DIR/env.sh"
  local sect
  {
    echo "# dosna ceph backend client configuration (written by scripts/$PROG)"
    for sect in client.rgw dosna; do
      echo "[$sect]"
      echo "endpoint = http://127.0.0.1:$RGW_PORT"
      echo "access_key = $ACCESS"
      echo "secret_key = $SECRET"
      echo "region = $REGION"
      echo
    done
  } >"$DIR/dosna-ceph.conf"
}

write_ceph_conf() {
  local store_opts
  if [[ "$OBJECTSTORE" == memstore ]]; then
    store_opts="memstore device bytes = $MEMSTORE_BYTES"
  else
    store_opts="bluestore block create = true
bluestore block size = $BLOCK_BYTES
osd memory target = 1073741824
bluestore cache autotune = true"
  fi
  cat >"$CONF" <<EOF
# Written by scripts/$PROG: one-node test cluster on 127.0.0.1. Regenerated on every start.
[global]
fsid = $FSID
mon initial members = a
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT + 1))]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms mon client mode = crc
client mount timeout = 30
rados mon op timeout = 60
rados osd op timeout = 60
keyring = $DIR/keyring
run dir = $RUNDIR
crash dir = $DIR/crash
admin socket = $RUNDIR/\$name.asok
pid file = $RUNDIR/\$name.pid
log file = $LOGDIR/\$name.log
mon cluster log file = $LOGDIR/cluster.log
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0

[mon]
mon data = $DIR/mon/\$cluster-\$id
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.05
paxos min wait = 0.01
mon warn on pool no redundancy = false

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = $OBJECTSTORE
osd mon shutdown timeout = 1
$store_opts

[client]
admin socket = $RUNDIR/\$name.\$pid.asok
log file = $LOGDIR/\$name.log

[client.rgw.a]
ms mon client mode = crc
admin socket = $RUNDIR/\$name.asok
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw dynamic resharding = false
rgw gc obj min wait = 30
EOF
}

# Runs a setup command bounded by a timeout, logging its output to the script log.
run() {
  local secs=$1; shift
  echo "+ $*" >>"$SCRIPTLOG"
  if ! timeout --kill-after=5 "$secs" "$@" >>"$SCRIPTLOG" 2>&1; then
    say "command failed or timed out after ${secs}s: $*"
    return 1
  fi
}

# Like run, but captures stdout (stderr to the log).
run_out() {
  local secs=$1; shift
  echo "+ $*" >>"$SCRIPTLOG"
  timeout --kill-after=5 "$secs" "$@" 2>>"$SCRIPTLOG"
}

show_logs() {
  local f
  say "---- tail of logs in $LOGDIR ----"
  for f in "$SCRIPTLOG" "$LOGDIR/mon.a.log" "$LOGDIR/osd.0.log" "$LOGDIR/client.rgw.a.log" \
    "$LOGDIR"/*.out; do
    [[ -s "$f" ]] || continue
    echo "==> $f <==" >&2
    tail -n 10 "$f" >&2
  done
}

fail_start() {
  say "start failed: $*"
  show_logs
  stop_all_daemons || true
  say "daemons stopped; logs kept in $LOGDIR (run '$0 stop' to remove $DIR)"
  exit 1
}

start_daemon() {
  local name=$1; shift
  local out="$LOGDIR/$name.out" i pid
  echo "+ $* -c $CONF" >>"$SCRIPTLOG"
  # The daemon forks into the background; its pid file is written by the child.
  "$@" -c "$CONF" >>"$out" 2>&1 </dev/null || fail_start "$name did not start (see $out)"
  for ((i = 0; i < 100; i++)); do
    if pid=$(daemon_pid "$name") && pid_ours "$pid"; then
      say "$name running (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  fail_start "$name wrote no pid file within 10 s"
}

install_packages() {
  if command -v radosgw >/dev/null 2>&1 && command -v ceph-mon >/dev/null 2>&1; then
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    die "Ceph is not installed and we are not root; install: ceph-mon ceph-osd radosgw ceph-common"
  fi
  command -v apt-get >/dev/null 2>&1 || die "Ceph is not installed and apt-get is missing"
  say "installing Ceph packages (ceph-mon ceph-osd radosgw ceph-common)..."
  local log=/tmp/dosna-ceph-apt.log
  if ! { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends \
      ceph-mon ceph-osd radosgw ceph-common; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "package installation failed (log: $log)"
  fi
  command -v radosgw >/dev/null 2>&1 || die "radosgw still missing after install (log: $log)"
  rm -f "$log" # kept only when the install failed
}

# ---------------------------------------------------------------- commands

# True when the folder holds kept bluestore data that `start` brings back.
kept_reusable() {
  [[ -f "$MARKER" && -f "$READY" && "$S_OBJECTSTORE" == bluestore && -d "$DIR/osd/ceph-0" ]]
}

resolve_settings() {
  load_state
  # Settings of kept data are the defaults when restarting it; otherwise the built-in defaults.
  local k_store= k_mon= k_rgw= k_access= k_secret=
  if kept_reusable; then
    k_store=$S_OBJECTSTORE k_mon=$S_MON_PORT k_rgw=$S_RGW_PORT k_access=$S_ACCESS k_secret=$S_SECRET
  fi
  OBJECTSTORE=${DOSNA_CEPH_OBJECTSTORE:-${k_store:-memstore}}
  MON_PORT=${DOSNA_CEPH_MON_PORT:-${k_mon:-3300}}
  RGW_PORT=${DOSNA_RGW_PORT:-${k_rgw:-7480}}
  ACCESS=${DOSNA_S3_ACCESS_KEY_ID:-${k_access:-dosna-test-access}}
  SECRET=${DOSNA_S3_SECRET_ACCESS_KEY:-${k_secret:-dosna-test-secret}}
  MEMSTORE_BYTES=${DOSNA_CEPH_MEMSTORE_BYTES:-4294967296}
  BLOCK_BYTES=${DOSNA_CEPH_BLOCK_BYTES:-10737418240}
  START_TIMEOUT=${DOSNA_CEPH_START_TIMEOUT:-60}
  case "$OBJECTSTORE" in memstore | bluestore) ;; *) die "DOSNA_CEPH_OBJECTSTORE must be memstore or bluestore (got '$OBJECTSTORE')" ;; esac
  local p
  for p in "$MON_PORT" "$RGW_PORT" "$START_TIMEOUT"; do
    [[ "$p" =~ ^[0-9]+$ ]] || die "not a number: '$p'"
  done
  (( MON_PORT >= 1 && MON_PORT < 65535 && RGW_PORT >= 1 && RGW_PORT <= 65535 )) || die "port out of range"
  (( RGW_PORT != MON_PORT && RGW_PORT != MON_PORT + 1 )) || die "RGW port $RGW_PORT collides with monitor ports $MON_PORT/$((MON_PORT + 1))"
}

all_running() {
  local d
  for d in "${DAEMONS[@]}"; do daemon_running "$d" || return 1; done
}

any_running() {
  local d
  for d in "${DAEMONS[@]}"; do daemon_running "$d" && return 0; done
  return 1
}

cmd_start() {
  check_dir
  resolve_settings

  # Already running? Then start is idempotent.
  if [[ -f "$MARKER" ]] && any_running; then
    if all_running && [[ "$(http_status "$S_RGW_PORT")" == 200 ]]; then
      if [[ -n "${DOSNA_RGW_PORT:-}" && "$DOSNA_RGW_PORT" != "$S_RGW_PORT" ]] ||
        [[ -n "${DOSNA_CEPH_MON_PORT:-}" && "$DOSNA_CEPH_MON_PORT" != "$S_MON_PORT" ]] ||
        [[ -n "${DOSNA_CEPH_OBJECTSTORE:-}" && "$DOSNA_CEPH_OBJECTSTORE" != "$S_OBJECTSTORE" ]] ||
        [[ -n "${DOSNA_S3_ACCESS_KEY_ID:-}" && "$DOSNA_S3_ACCESS_KEY_ID" != "$S_ACCESS" ]]; then
        die "an instance with other settings already runs in $DIR (rgw port $S_RGW_PORT, mon port $S_MON_PORT, $S_OBJECTSTORE); stop it first or set DOSNA_CEPH_DIR"
      fi
      say "already running in $DIR (endpoint http://127.0.0.1:$S_RGW_PORT)"
      cat "$DIR/env.sh"
      return 0
    fi
    die "a partial or unhealthy instance runs in $DIR; run '$0 stop' first"
  fi

  # Refuse to reuse a folder we did not create.
  if [[ -e "$DIR" && ! -f "$MARKER" ]]; then
    if [[ -n "$(ls -A "$DIR" 2>/dev/null)" ]]; then
      die "'$DIR' exists, is not empty and was not created by $PROG; choose another DOSNA_CEPH_DIR"
    fi
  fi

  local reuse=0
  if kept_reusable; then
    if [[ "$OBJECTSTORE" != bluestore ]]; then
      die "kept bluestore data in $DIR but DOSNA_CEPH_OBJECTSTORE=$OBJECTSTORE; run '$0 stop' to discard it"
    fi
    if [[ "$MON_PORT" != "$S_MON_PORT" ]]; then
      die "kept data in $DIR uses monitor port $S_MON_PORT, not $MON_PORT; unset DOSNA_CEPH_MON_PORT or run '$0 stop'"
    fi
    reuse=1
  fi

  local p
  for p in "$MON_PORT" "$((MON_PORT + 1))" "$RGW_PORT"; do
    if port_taken "$p"; then
      die "port $p on 127.0.0.1 is already in use; set DOSNA_CEPH_MON_PORT / DOSNA_RGW_PORT to free ports"
    fi
  done

  install_packages
  local t0=$SECONDS

  if (( reuse )); then
    say "restarting kept $OBJECTSTORE instance in $DIR"
    FSID=$S_FSID
    mkdir -p "$LOGDIR" "$RUNDIR"
    rm -f "$RUNDIR"/*.pid "$RUNDIR"/*.asok
  else
    if [[ -f "$MARKER" ]]; then
      if [[ -f "$READY" ]]; then
        say "discarding kept $S_OBJECTSTORE data in $DIR (memstore data does not survive a stop)"
      else
        say "removing leftovers of an earlier failed start in $DIR"
      fi
      rm -rf "$DIR"
    fi
    mkdir -p "$DIR"
    touch "$MARKER"
    mkdir -p "$LOGDIR" "$RUNDIR" "$DIR/mon/ceph-a" "$DIR/osd/ceph-0" "$DIR/rgw" "$DIR/crash"
    FSID=$(cat /proc/sys/kernel/random/uuid)
    say "creating $OBJECTSTORE instance in $DIR (mon $MON_PORT/$((MON_PORT + 1)), rgw $RGW_PORT)"
  fi
  save_state
  write_ceph_conf
  echo "==== start $(date -Is) objectstore=$OBJECTSTORE reuse=$reuse" >>"$SCRIPTLOG"

  if (( ! reuse )); then
    run 30 ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' ||
      fail_start "ceph-authtool failed"
    run 30 monmaptool --create --clobber --fsid "$FSID" \
      --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT + 1))]" "$DIR/monmap" ||
      fail_start "monmaptool failed"
    run 60 ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" ||
      fail_start "ceph-mon --mkfs failed"
  fi

  start_daemon mon.a ceph-mon -i a

  if (( ! reuse )); then
    local uuid osd_id
    uuid=$(cat /proc/sys/kernel/random/uuid)
    osd_id=$(run_out 60 ceph -c "$CONF" osd new "$uuid") || fail_start "ceph osd new failed"
    [[ "$osd_id" == 0 ]] || fail_start "ceph osd new returned id '$osd_id', expected 0"
    run 120 ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" || fail_start "ceph-osd --mkfs failed"
  fi

  start_daemon osd.0 ceph-osd -i 0

  # Create the S3 user (or make sure it has our keys when reusing kept data).
  local info
  if (( reuse )) && info=$(run_out 60 radosgw-admin -c "$CONF" user info --uid=dosna-test) &&
    [[ -n "$info" ]]; then
    if ! grep -q "\"access_key\": \"$ACCESS\"" <<<"$info"; then
      run 60 radosgw-admin -c "$CONF" key create --uid=dosna-test --key-type=s3 \
        --access-key="$ACCESS" --secret-key="$SECRET" || fail_start "radosgw-admin key create failed"
    fi
  else
    run 90 radosgw-admin -c "$CONF" user create --uid=dosna-test --display-name="dosna test" \
      --access-key="$ACCESS" --secret-key="$SECRET" || fail_start "radosgw-admin user create failed"
  fi

  start_daemon client.rgw.a radosgw -n client.rgw.a

  local deadline=$((SECONDS + START_TIMEOUT)) code=000
  while (( SECONDS < deadline )); do
    code=$(http_status "$RGW_PORT")
    [[ "$code" == 200 ]] && break
    daemon_running client.rgw.a || fail_start "radosgw exited"
    sleep 0.1
  done
  [[ "$code" == 200 ]] || fail_start "RGW did not answer 200 on http://127.0.0.1:$RGW_PORT/ within ${START_TIMEOUT}s (last: $code)"

  touch "$READY"
  write_client_files
  say "RGW ready at http://127.0.0.1:$RGW_PORT ($OBJECTSTORE, $((SECONDS - t0)) s); env in $DIR/env.sh"
  cat "$DIR/env.sh"
}

cmd_stop() {
  local keep=0 a
  for a in "$@"; do
    case "$a" in --keep) keep=1 ;; *) die "unknown option for stop: $a" ;; esac
  done
  check_dir
  if [[ ! -e "$DIR" ]]; then
    say "nothing to stop ($DIR does not exist)"
    return 0
  fi
  [[ -f "$MARKER" ]] || die "'$DIR' was not created by $PROG; not touching it"
  stop_all_daemons
  if (( keep )); then
    say "stopped; data kept in $DIR"
  else
    rm -rf "$DIR"
    say "stopped; removed $DIR"
  fi
}

cmd_status() {
  check_dir
  load_state
  if [[ -f "$MARKER" && -f "$READY" ]] && all_running && [[ "$(http_status "$S_RGW_PORT")" == 200 ]]; then
    echo "http://127.0.0.1:$S_RGW_PORT"
    return 0
  fi
  say "not running (folder $DIR)"
  return 1
}

cmd_env() {
  check_dir
  load_state
  if [[ -f "$MARKER" && -f "$READY" && -s "$DIR/env.sh" ]] && all_running; then
    cat "$DIR/env.sh"
    return 0
  fi
  say "not running (folder $DIR); run '$0 start'"
  return 1
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd=$1; shift
  case "$cmd" in
    start) [[ $# -eq 0 ]] || die "start takes no arguments"; cmd_start ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *) say "unknown command: $cmd"; usage ;;
  esac
}

main "$@"
