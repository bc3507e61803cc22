// The two POSIX sh scripts plumb writes into a lease's state dir: the client's hook and the
// supervisor. Shipped as string constants because the CLI is one esbuild bundle with no files.

/** Quote a string for a POSIX shell: single quotes, with embedded ones closed and escaped. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

export interface HookParams {
  /** the state dir the hook reports into (on the host's filesystem: the client shares our mount ns) */
  stateDir: string
  ifname: string
  client: 'udhcpc' | 'dhclient' | 'dhcpcd'
  /** the guest's mount namespace file for --resolv, and its inode when plumb checked it */
  mntNsPath?: string
  mntNsIno?: number
}

// The hook runs inside the guest's netns (the client runs there) but on the host's filesystem,
// so it must write nothing but the state dir: no /etc/resolv.conf, no /etc/hostname (what
// Debian's default.script and dhclient-script do, and why pipework rewrote hosts' resolvers).
// It normalises the three clients' environments to A/P/GW/DNS/SRV/LT/R121, applies the lease
// with its lifetime (so an address dies with its lease if the client ever dies), records what
// it applied in $D/applied so a later lease or a deconfig removes exactly that, and reports the
// lease in $D/lease.json (written to a temp file and renamed: plumb polls it).
const HOOK_BODY = String.raw`
PATH=${'${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}'}
export PATH
[ -d "$D" ] || exit 0
exec 2>>"$D/log"

isip() { case $1 in ''|*[!0-9.]*) return 1;; *.*.*.*) return 0;; *) return 1;; esac; }
isnum() { case $1 in ''|*[!0-9]*) return 1;; *) return 0;; esac; }

m2p() {
  n=0; o_ifs=$IFS; IFS=.; set -- $1; IFS=$o_ifs
  for o in "$@"; do
    case $o in 255) n=$((n+8));; 254) n=$((n+7));; 252) n=$((n+6));; 248) n=$((n+5));; 240) n=$((n+4));; 224) n=$((n+3));; 192) n=$((n+2));; 128) n=$((n+1));; esac
  done
  echo $n
}

# RFC 3442 bytes ("24 198 19 5 198 19 5 1 ...", dhclient) to "198.19.5.0/24 198.19.5.1 ..." pairs
r3442() {
  set -- $(echo "$1" | tr ',' ' '); out=
  while [ $# -gt 0 ]; do
    w=$1; shift; nb=$(( (w + 7) / 8 )); d=; i=0
    while [ $i -lt 4 ]; do
      if [ $i -lt $nb ]; then [ $# -gt 0 ] || return 0; d="$d${'${d:+.}'}$1"; shift; else d="$d${'${d:+.}'}0"; fi
      i=$((i + 1))
    done
    [ $# -ge 4 ] || return 0
    out="$out $d/$w $1.$2.$3.$4"; shift 4
  done
  echo $out
}

ev=; act=
case $CLIENT in
udhcpc)
  ev=$1
  A=$ip; P=$mask; [ -n "$P" ] || P=$(m2p "$subnet"); GW=${'${router%% *}'}; DNS=$dns; SRV=$serverid; LT=$lease; DOM=$domain
  R121=$staticroutes
  case $ev in bound|renew) act=apply;; deconfig) act=unapply;; *) act=log;; esac
  ;;
dhclient)
  ev=$reason
  A=$new_ip_address; P=$(m2p "$new_subnet_mask"); GW=${'${new_routers%% *}'}; DNS=$new_domain_name_servers
  SRV=$new_dhcp_server_identifier; LT=$new_dhcp_lease_time; DOM=$new_domain_name
  R121=; [ -z "$new_rfc3442_classless_static_routes" ] || R121=$(r3442 "$new_rfc3442_classless_static_routes")
  case $ev in
    PREINIT) act=up;;
    BOUND|RENEW|REBIND|REBOOT) act=apply;;
    EXPIRE|FAIL|RELEASE|STOP) act=unapply;;
    # TIMEOUT offers an old lease from the lease file: refuse it, plumb wants a server's answer
    TIMEOUT) echo "$(date +%s) $ev" >>"$D/events"; exit 1;;
    *) act=log;;
  esac
  ;;
dhcpcd)
  ev=$reason
  A=$new_ip_address; P=$new_subnet_cidr; [ -n "$P" ] || P=$(m2p "$new_subnet_mask"); GW=${'${new_routers%% *}'}
  DNS=$new_domain_name_servers; SRV=$new_dhcp_server_identifier; LT=$new_dhcp_lease_time; DOM=$new_domain_name
  R121=$new_classless_static_routes
  case $ev in
    PREINIT) act=up;;
    BOUND|RENEW|REBIND|REBOOT) act=apply;;
    EXPIRE|NAK|RELEASE|STOP|DEPARTED) act=unapply;;
    *) act=log;;
  esac
  ;;
esac

echo "$(date +%s) $ev $A" >>"$D/events"

drop() {
  kind=$1; shift
  case $kind in
    addr) ip addr del "$1" dev "$IF";;
    route) ip route del "$@" dev "$IF";;
  esac
}

unapply() {
  if [ -f "$D/applied" ]; then
    # routes first, the address last: a route via the lease's gateway needs the address
    grep '^route ' "$D/applied" | while read -r kind rest; do drop "$kind" $rest; done
    grep '^addr ' "$D/applied" | while read -r kind rest; do drop "$kind" $rest; done
    rm -f "$D/applied"
  fi
  rm -f "$D/lease.json"
}

resolv() {
  [ -n "$MNT" ] && [ -n "$DNS" ] || return 0
  # the guest's mount ns file may name another process by now (pid reuse): check its inode
  if [ "$(stat -L -c %i "$MNT" 2>/dev/null)" != "$MNTINO" ]; then
    echo "plumb-hook: $MNT is no longer the guest's mount namespace: /etc/resolv.conf not written" >&2
    return 0
  fi
  {
    echo "# written by plumb from the DHCP lease on $IF"
    case $DOM in ''|*[!A-Za-z0-9.-]*) ;; *) echo "search $DOM";; esac
    for s in $DNS; do isip "$s" && echo "nameserver $s"; done
  } | nsenter --mount="$MNT" sh -c 'cat > /etc/resolv.conf' ||
    echo "plumb-hook: could not write the guest's /etc/resolv.conf" >&2
}

apply() {
  if ! isip "$A" || ! isnum "$P" || [ "$P" -gt 32 ]; then
    echo "plumb-hook: $ev without a usable address ($A/$P): ignored" >&2
    return 0
  fi
  LFT=forever; isnum "$LT" && [ "$LT" -lt 4294967295 ] && LFT=$LT
  isip "$GW" || GW=
  isip "$SRV" || SRV=
  new="addr $A/$P"
  if [ -n "$R121" ]; then
    # RFC 3442: with classless routes offered, the router option is ignored
    set -- $R121
    while [ $# -ge 2 ]; do
      if [ "$2" = 0.0.0.0 ]; then new="$new
route $1"; else new="$new
route $1 via $2"; fi
      shift 2
    done
  elif [ -n "$GW" ]; then
    new="$new
route default via $GW"
  fi
  # what the previous lease set and this one does not: remove it
  if [ -f "$D/applied" ]; then
    while read -r kind rest; do
      printf '%s\n' "$new" | grep -Fqx "$kind $rest" || drop "$kind" $rest
    done <"$D/applied"
  fi
  ip link set dev "$IF" up
  # replace, with the lease's lifetime: renewals push valid_lft back up; a dead client's address expires
  ip addr replace "$A/$P" dev "$IF" valid_lft $LFT preferred_lft $LFT || return 1
  printf '%s\n' "$new" | grep '^route ' | while read -r kind rest; do
    ip route replace $rest dev "$IF" proto dhcp || echo "plumb-hook: route $rest not set" >&2
  done
  printf '%s\n' "$new" >"$D/applied.tmp" && mv -f "$D/applied.tmp" "$D/applied"
  dnsj=
  for s in $DNS; do isip "$s" && dnsj="$dnsj${'${dnsj:+,}'}\"$s\""; done
  printf '{"event":"%s","address":"%s","prefix":%s,"router":"%s","dns":[%s],"server":"%s","leaseTime":%s,"obtainedAt":%s}\n' \
    "$ev" "$A" "$P" "$GW" "$dnsj" "$SRV" "$(isnum "$LT" && echo "$LT" || echo 0)" "$(date +%s)" >"$D/lease.json.tmp" &&
    mv -f "$D/lease.json.tmp" "$D/lease.json"
  resolv
}

case $act in
  up) ip link set dev "$IF" up;;
  apply) apply;;
  unapply) unapply;;
esac
exit 0
`

/** The hook script for one lease: its parameters baked in (quoted), then the shared body. */
export function hookScript(p: HookParams): string {
  return [
    '#!/bin/sh',
    "# plumb's DHCP hook: applies the lease inside the guest's netns, reports it to plumb's state dir,",
    '# and writes nothing else on the host (never Debian\'s default.script / dhclient-script).',
    `D=${shQuote(p.stateDir)}`,
    `IF=${shQuote(p.ifname)}`,
    `CLIENT=${p.client}`,
    `MNT=${shQuote(p.mntNsPath ?? '')}`,
    `MNTINO=${p.mntNsIno ?? ''}`,
    HOOK_BODY,
  ].join('\n')
}

// The supervisor: the client is a member of the guest's netns and so keeps it alive, which
// means "the netns is gone" can never be seen from inside. This loop watches from outside:
// every second it checks that the guest's init pid still has the same netns inode and that the
// netns file still names the same inode; when either is gone it stops the client by pid and
// removes the state dir. `sleep & wait` keeps the TERM trap prompt (a foreground sleep would
// delay it up to a second). A `stopping` file means plumb's stopDhcp is in charge: step aside.
// Arguments: STATE_DIR WATCH_PID WATCH_PID_INO WATCH_PATH WATCH_PATH_INO CLIENT_ARGV...
export const SUPERVISOR_SCRIPT = String.raw`# plumb's DHCP supervisor: runs the client for as long as the guest lives
D=$1 WPID=$2 WPIDINO=$3 WPATH=$4 WPATHINO=$5
shift 5
cd / || exit 1
echo $$ >"$D/supervisor.pid"
"$@" </dev/null &
C=$!
echo "$C" >"$D/client.pid"
S=

# Whether $D is still this supervisor's: plumb removes it once it stopped us, and a new client for
# the same interface may have made it again since, with its own supervisor's pid in it.
mine() {
  [ "$(cat "$D/supervisor.pid" 2>/dev/null)" = "$$" ]
}

gone() {
  if [ -n "$WPID" ] && [ "$(stat -L -c %i "/proc/$WPID/ns/net" 2>/dev/null)" != "$WPIDINO" ]; then
    echo "plumb-supervisor: guest pid $WPID is gone" >&2; return 0
  fi
  if [ -n "$WPATH" ] && [ "$(stat -L -c %i "$WPATH" 2>/dev/null)" != "$WPATHINO" ]; then
    echo "plumb-supervisor: guest netns $WPATH is gone" >&2; return 0
  fi
  return 1
}

finish() {
  [ -z "$S" ] || kill "$S" 2>/dev/null
  [ -e "$D/stopping" ] && exit 0
  kill -TERM "$C" 2>/dev/null
  i=0
  while kill -0 "$C" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$C" 2>/dev/null
  mine && rm -rf "$D"
  exit 0
}
trap finish TERM INT HUP

while kill -0 "$C" 2>/dev/null; do
  [ -e "$D/stopping" ] && exit 0
  gone && finish
  sleep 1 &
  S=$!
  wait "$S"
  S=
done
# the client exited by itself (crashed, or was told to): nothing left to supervise
echo "plumb-supervisor: client $C exited" >&2
[ -e "$D/stopping" ] || ! mine || rm -rf "$D"
exit 0
`
