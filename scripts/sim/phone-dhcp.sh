#!/bin/sh
# udhcpc event script for the simulated phone: configure the address and the
# default route, nothing else (never touch the host's resolver).
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
