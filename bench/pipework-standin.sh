#!/bin/sh
# A stand-in for pipework's script, to exercise the bench's PIPEWORK row where the real one
# cannot be fetched (bench/README.md): the steps pipework takes for `pipework BRIDGE CONTAINER
# ADDR/LEN@GW` on an existing Linux bridge, in its order and with its programs (docker inspect,
# a /var/run/netns symlink, ip link per step, ip netns exec per guest-side step), without
# arping. Its names carry pt- (a test's objects); they go with the container's netns.
set -e
IFNAME=$1 GUESTNAME=$2 IPADDR=$3
CONTAINER_IFNAME=eth1
[ -d "/sys/class/net/$IFNAME/bridge" ] || { echo "$IFNAME is not a Linux bridge" >&2; exit 1; }
DOCKERPID=$(docker inspect --format='{{ .State.Pid }}' "$GUESTNAME")
[ "$DOCKERPID" != 0 ] || { echo "Container $GUESTNAME is not running" >&2; exit 1; }
NSPID=pt-pw$DOCKERPID
mkdir -p /var/run/netns
rm -f "/var/run/netns/$NSPID"
ln -s "/proc/$DOCKERPID/ns/net" "/var/run/netns/$NSPID"
trap 'rm -f "/var/run/netns/$NSPID"' EXIT
LOCAL_IFNAME=ptpl$DOCKERPID
GUEST_IFNAME=ptpg$DOCKERPID
MTU=$(ip link show "$IFNAME" | awk '{print $5; exit}')
ip link add name "$LOCAL_IFNAME" mtu "$MTU" type veth peer name "$GUEST_IFNAME" mtu "$MTU"
ip link set "$LOCAL_IFNAME" master "$IFNAME"
ip link set "$LOCAL_IFNAME" up
ip link set "$GUEST_IFNAME" netns "$NSPID"
ip netns exec "$NSPID" ip link set "$GUEST_IFNAME" name "$CONTAINER_IFNAME"
GATEWAY=${IPADDR#*@}
IPADDR=${IPADDR%%@*}
ip netns exec "$NSPID" ip addr add "$IPADDR" dev "$CONTAINER_IFNAME"
ip netns exec "$NSPID" ip route delete default >/dev/null 2>&1 || true
ip netns exec "$NSPID" ip link set "$CONTAINER_IFNAME" up
ip netns exec "$NSPID" ip route replace default via "$GATEWAY"
