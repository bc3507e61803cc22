#!/usr/bin/env bash
# Lists everything the tests' prefix names that is still on the machine (netns, links,
# containers, OVS bridges/ports, firewall rules, processes, files) and exits 1 if there is any.
# Tests name what they create `pt-<6 hex>...` (`pt<hex>` where a dash can't go), so only names
# that START with `pt` count: unrelated things that merely contain "pt" are left out.
#
#   scripts/leak-check.sh                   report leaks, exit 1 if any
#   scripts/leak-check.sh --save FILE       record what is there now (e.g. before a CI run), exit 0
#   scripts/leak-check.sh --except FILE     report only what is not in FILE (leftovers of an earlier run)
set -uo pipefail

mode=check
file=
case "${1:-}" in
  --save | --except)
    mode=${1#--}
    file=${2:?usage: $0 [--save FILE | --except FILE]}
    ;;
  '') ;;
  *)
    echo "usage: $0 [--save FILE | --except FILE]" >&2
    exit 2
    ;;
esac

found=()
add() { found+=("$1"); } # "kind: what"

# netns: `ip netns list` prints "NAME (id: N)".
while read -r name _; do
  [[ $name == pt-* ]] && add "netns: $name"
done < <(ip netns list 2>/dev/null)

alias_re=' alias (plumb:([^ ]*[=/,:])?pt-[^ ]*)'
# Host links named pt*, and links whose plumb owner mark (alias) names a test object.
while IFS= read -r line; do
  name=${line#*: }
  name=${name%%:*}
  name=${name%%@*}
  if [[ $name == pt* ]]; then
    add "link: $name"
  elif [[ $line =~ $alias_re ]]; then
    add "link: $name (alias ${BASH_REMATCH[1]})"
  fi
done < <(ip -o link show 2>/dev/null)

# Docker containers and networks (only when an engine answers).
if timeout 10 docker info >/dev/null 2>&1; then
  while read -r name; do
    [[ $name == pt-* ]] && add "container: $name"
  done < <(docker ps -a --format '{{.Names}}' 2>/dev/null)
  while read -r name; do
    [[ $name == pt-* ]] && add "docker network: $name"
  done < <(docker network ls --format '{{.Name}}' 2>/dev/null)
fi

# OVS bridges, and ports named pt* on any bridge (a test port may sit on a shared bridge).
if ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
  while read -r name; do
    [[ $name == pt* ]] && add "ovs bridge: $name"
  done < <(ovs-vsctl --timeout=5 list-br 2>/dev/null)
  while read -r name; do
    name=${name//\"/}
    [[ $name == pt* ]] && add "ovs port: $name"
  done < <(ovs-vsctl --timeout=5 --bare --columns=name list Port 2>/dev/null)
fi

# Firewall rules: plumb comments its rules `plumb:BRIDGE`; tests' bridges are pt-*.
rule_re='--comment "?([^ "]*[^[:alnum:]_" -])?(plumb:)?pt-'
ifrule_re=' -[io] pt'
for save in iptables-save ip6tables-save; do
  command -v "$save" >/dev/null || continue
  table=
  while IFS= read -r line; do
    [[ $line == \** ]] && table=${line#\*}
    [[ $line == -A* ]] || continue
    if [[ $line =~ $rule_re || $line =~ $ifrule_re ]]; then
      add "${save%-save} ($table): $line"
    fi
  done < <("$save" 2>/dev/null)
done

# Processes the tests started (dnsmasq, DHCP clients, ...) with a pt- name in their argv.
# mapfile reads /proc without forking, so this script's own children don't show up.
self=$$
proc_re='(^|[^[:alnum:]_-])pt-[[:alnum:]]'
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [[ $pid == "$self" ]] && continue
  mapfile -d '' argv 2>/dev/null <"$d/cmdline" || continue  # stderr first: a process gone meanwhile says nothing
  [[ ${#argv[@]} -gt 0 ]] || continue
  cmd="${argv[*]}"
  [[ $cmd == *leak-check* ]] && continue
  if [[ $cmd =~ $proc_re ]]; then
    add "process: $pid ${cmd:0:200}"
  fi
done

# Files: leases, pidfiles, sockets and scratch dirs.
while IFS= read -r f; do
  add "file: $f"
done < <(
  {
    find /run/plumb* -name 'pt-*' 2>/dev/null
    find /run /tmp -maxdepth 1 -name 'pt-*' 2>/dev/null
  } | sort -u
)

# plumb's replay records of test containers (named pt-*) in the default record store.
for f in /var/lib/plumb/records/*.json; do
  [[ -e $f ]] || continue
  grep -q '"name": "pt-' "$f" 2>/dev/null && add "replay record: $f"
done

case $mode in
  save)
    : >"$file"
    ((${#found[@]} == 0)) || printf '%s\n' "${found[@]}" >"$file"
    echo "leak-check: recorded ${#found[@]} pre-existing item(s) in $file" >&2
    exit 0
    ;;
  except)
    if [[ -r $file ]]; then
      declare -A old=()
      while IFS= read -r l; do [[ -n $l ]] && old[$l]=1; done <"$file"
      kept=()
      for l in "${found[@]}"; do [[ -z ${old[$l]+x} ]] && kept+=("$l"); done
      skipped=$((${#found[@]} - ${#kept[@]}))
      ((skipped > 0)) && echo "leak-check: ignoring $skipped item(s) that were there before (listed in $file)" >&2
      found=("${kept[@]}")
    fi
    ;;
esac

if [[ ${#found[@]} -eq 0 ]]; then
  echo "leak-check: clean (nothing named pt-* left)"
  exit 0
fi
echo "leak-check: ${#found[@]} leftover(s) with the test prefix:"
printf '  %s\n' "${found[@]}"
exit 1
