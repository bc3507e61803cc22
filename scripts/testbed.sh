#!/usr/bin/env bash
# The testbed plumb's tests need on a Debian 12 machine: packages, dockerd, Open vSwitch and the
# plumb-test:busybox image. `up` starts only what is not already running and records what it
# started (by pid) under /run/plumb-testbed, so `down` stops exactly that and nothing else.
#
#   scripts/testbed.sh up       install missing packages, start dockerd/OVS if needed, build the image
#   scripts/testbed.sh down     stop what `up` started (packages stay installed)
#   scripts/testbed.sh status   what is installed and running, and who started it
set -euo pipefail

# Overridable only so the script itself can be exercised with fake daemons.
STATE_DIR=${PLUMB_TESTBED_STATE:-/run/plumb-testbed}
DOCKERD_PID="$STATE_DIR/dockerd.pid"
OVS_MARK="$STATE_DIR/ovs.started"
DOCKERD_LOG=${PLUMB_TESTBED_DOCKERD_LOG:-/var/log/plumb-dockerd.log}
OVS_CTL=${PLUMB_TESTBED_OVS_CTL:-/usr/share/openvswitch/scripts/ovs-ctl}
IMAGE=plumb-test:busybox
IMAGE_BINS=(sh ip ping udhcpc sleep cat ls hostname ifconfig route nc wget echo true kill)
PACKAGES=(docker.io openvswitch-switch dnsmasq-base udhcpc isc-dhcp-client iputils-ping tcpdump
  busybox-static containernetworking-plugins iptables iproute2 hyperfine make g++ libc6-dev python3 strace graphviz podman conntrack)

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts dockerd/OVS)"; }

# A pid recorded by us still names the process we started (guards against pid reuse).
pid_is() { # pid, expected program name
  local pid=$1 want=$2 cmd
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null) || return 1
  [[ $cmd == *"$want"* ]]
}

docker_ok() { timeout 10 docker info >/dev/null 2>&1; }
ovs_ok() { ovs-vsctl --timeout=2 show >/dev/null 2>&1; }
# The label changes whenever IMAGE_BINS does, so an image from an older testbed is rebuilt.
IMAGE_LABEL="plumb.testbed=$(printf '%s ' "${IMAGE_BINS[@]}" | md5sum | cut -c1-12)"
image_ok() { docker image inspect "$IMAGE" >/dev/null 2>&1; }
image_current() {
  [[ $(docker image inspect -f '{{index .Config.Labels "plumb.testbed"}}' "$IMAGE" 2>/dev/null) == "${IMAGE_LABEL#*=}" ]]
}

missing_packages() {
  local p st
  for p in "${PACKAGES[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $st == *" installed" ]] || printf '%s\n' "$p"
  done
}

install_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "packages: all present"
    return
  fi
  log "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Keep the packages' maintainer scripts from starting docker/OVS through init scripts (exit 101
  # = "not allowed", Debian's policy-rc.d convention): we start them below ourselves, record
  # their pids, and so `down` can stop exactly those.
  local policy=/usr/sbin/policy-rc.d ours=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from plumb scripts/testbed.sh up\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=1
  fi
  # No recommends: they pull in GUIs/docs the tests never use and slow CI down.
  local rc=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  ((ours)) && rm -f "$policy"
  ((rc == 0)) || die "apt-get install failed (exit $rc)"
}

start_dockerd() {
  if docker_ok; then
    log "dockerd: already running (not ours, left alone)"
    return
  fi
  if [[ -f $DOCKERD_PID ]] && pid_is "$(cat "$DOCKERD_PID")" dockerd; then
    log "dockerd: ours (pid $(cat "$DOCKERD_PID")) is starting, waiting"
  else
    command -v dockerd >/dev/null || die "dockerd not found on PATH (package docker.io)"
    log "dockerd: starting (log $DOCKERD_LOG)"
    # nohup + no stdin: the daemon outlives this script and the terminal (quickstart leaves it up).
    nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    echo $! >"$DOCKERD_PID"
    disown
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    docker_ok && { log "dockerd: up (pid $(cat "$DOCKERD_PID"))"; return; }
    pid_is "$(cat "$DOCKERD_PID")" dockerd || break
    sleep 1
  done
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not answer 'docker info' within 60 s (log: $DOCKERD_LOG; 'scripts/testbed.sh down' stops it)"
}

start_ovs() {
  if ovs_ok; then
    log "ovs: already running$([[ -f $OVS_MARK ]] && echo ' (ours)' || echo ' (not ours, left alone)')"
    return
  fi
  [[ -x $OVS_CTL ]] || die "$OVS_CTL not found (package openvswitch-switch)"
  log "ovs: starting (userspace datapath only: this kernel has no openvswitch module)"
  touch "$OVS_MARK"
  # ovs-ctl exits non-zero when it cannot load the kernel module, yet the daemons run and
  # datapath_type=netdev bridges work: judge by whether ovsdb answers.
  "$OVS_CTL" start --system-id=random >&2 || log "ovs: ovs-ctl start reported a failure, checking ovsdb"
  local i
  for ((i = 0; i < 20; i++)); do
    ovs_ok && { log "ovs: up"; return; }
    sleep 0.5
  done
  die "Open vSwitch did not answer 'ovs-vsctl show' (logs in /var/log/openvswitch)"
}

build_image() {
  if image_current; then
    log "image: $IMAGE present"
    return
  fi
  local bb tmp a
  bb=$(command -v busybox || true)
  [[ -n $bb ]] || die "busybox not found (package busybox-static)"
  # A dynamic busybox would not run in an image without libc.
  if ldd "$bb" >/dev/null 2>&1; then die "$bb is dynamically linked: install busybox-static"; fi
  tmp=$(mktemp -d /tmp/plumb-image.XXXXXX)
  # shellcheck disable=SC2064 # expand $tmp now; the trap removes itself
  trap "rm -rf '$tmp'; trap - RETURN" RETURN
  mkdir -p "$tmp"/root/{bin,etc,proc,sys,dev,tmp,run,var}
  cp "$bb" "$tmp/root/bin/busybox"
  for a in "${IMAGE_BINS[@]}"; do ln -sf busybox "$tmp/root/bin/$a"; done
  # Re-tagging is safe while containers of an older image run: they keep its id.
  log "image: building $IMAGE with docker import$(image_ok && echo ' (replacing an older testbed image)')"
  tar -C "$tmp/root" -c . | docker import -c "LABEL $IMAGE_LABEL" - "$IMAGE" >/dev/null
  image_current || die "docker import did not produce $IMAGE"
}

# Podman keeps an image store of its own: the same image there, for the tests on Podman guests.
podman_image() {
  command -v podman >/dev/null 2>&1 || return 0
  [[ $(podman image inspect -f '{{index .Config.Labels "plumb.testbed"}}' "$IMAGE" 2>/dev/null) == "${IMAGE_LABEL#*=}" ]] && return 0
  log "image: loading $IMAGE into podman"
  docker save "$IMAGE" | podman load -q >/dev/null || log "image: podman load failed (the Podman tests will skip)"
}

cmd_up() {
  need_root
  mkdir -p "$STATE_DIR"
  install_packages
  start_dockerd
  start_ovs
  build_image
  podman_image
  log "ready"
}

cmd_down() {
  need_root
  local pid i
  if [[ -f $DOCKERD_PID ]]; then
    pid=$(cat "$DOCKERD_PID")
    if pid_is "$pid" dockerd; then
      log "dockerd: stopping pid $pid (started by testbed up)"
      kill -TERM "$pid" 2>/dev/null || true
      # dockerd stops its containers and its own containerd first: give it time.
      for ((i = 0; i < 60; i++)); do
        pid_is "$pid" dockerd || break
        sleep 0.5
      done
      if pid_is "$pid" dockerd; then
        log "dockerd: still alive after 30 s, SIGKILL pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    else
      log "dockerd: recorded pid $pid is gone"
    fi
    rm -f "$DOCKERD_PID"
  else
    log "dockerd: not started by testbed up, left alone"
  fi
  if [[ -f $OVS_MARK ]]; then
    log "ovs: stopping (started by testbed up; ovs-ctl stops its daemons by their pidfiles)"
    "$OVS_CTL" stop >&2 || log "ovs: ovs-ctl stop reported a failure"
    rm -f "$OVS_MARK"
  else
    log "ovs: not started by testbed up, left alone"
  fi
  rmdir "$STATE_DIR" 2>/dev/null || true
}

cmd_status() {
  local pid missing
  mapfile -t missing < <(missing_packages)
  if [[ ${#missing[@]} -eq 0 ]]; then echo "packages: all ${#PACKAGES[@]} installed"; else echo "packages: missing ${missing[*]}"; fi
  if docker_ok; then
    pid=$(cat "$DOCKERD_PID" 2>/dev/null || true)
    if [[ -n $pid ]] && pid_is "$pid" dockerd; then
      echo "dockerd: running, started by testbed (pid $pid)"
    else
      echo "dockerd: running, not started by testbed (pid $(pgrep -x dockerd | tr '\n' ' ' | sed 's/ $//'))"
    fi
    echo "docker: server $(docker info --format '{{.ServerVersion}}' 2>/dev/null), client $(command -v docker)"
    if image_current; then echo "image: $IMAGE present"
    elif image_ok; then echo "image: $IMAGE present but older than this testbed ('up' rebuilds it)"
    else echo "image: $IMAGE missing"; fi
  else
    echo "dockerd: not reachable"
  fi
  if ovs_ok; then
    echo "ovs: running ($(ovs-vsctl --timeout=2 get Open_vSwitch . ovs_version 2>/dev/null | tr -d '"'))$([[ -f $OVS_MARK ]] && echo ', started by testbed' || echo ', not started by testbed')"
  else
    echo "ovs: not running"
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
