#!/usr/bin/env bash
# The laptop's NetworkManager, contained: run inside the laptop's network
# namespace and a private mount and UTS namespace, e.g.
#
#   ip netns exec NS unshare --mount --uts --propagation private -- nm-laptop.sh DIR
#
# It gives NetworkManager a private D-Bus system bus, /run, /etc/NetworkManager
# and /var/lib/NetworkManager (all under DIR/nm), then waits until killed.
# Nothing of the host's network configuration is read or written: the
# resolver file, the host name and kernel modules stay out of reach.
# DIR/nm/ready appears once NetworkManager answers on its bus.
set -euo pipefail

DIR="$1"
NM="$DIR/nm"
mkdir -p "$NM/etc/conf.d" "$NM/etc/system-connections" "$NM/etc/dispatcher.d" \
  "$NM/etc/dnsmasq-shared.d" "$NM/lib" "$NM/run/dbus" "$NM/bin"

hostname "${TS_SIM_LAPTOP_NAME:-laptop}"

cat > "$NM/etc/NetworkManager.conf" <<'EOF'
[main]
plugins=keyfile
dns=none
rc-manager=unmanaged
hostname-mode=none
auth-polkit=false
no-auto-default=*

[connectivity]
enabled=false

[logging]
level=INFO
EOF

cat > "$NM/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
EOF

# systemctl is not PID 1's here: record what the dispatcher script asks for.
cat > "$NM/bin/systemctl" <<EOF
#!/bin/sh
echo "\$*" >> "$NM/systemctl.log"
EOF
chmod 755 "$NM/bin/systemctl"
: > "$NM/resolv.conf"

# Read-only /sys is how NetworkManager recognises a container and stops
# waiting for udev; the rest keeps it off the host's files.
mount --bind /sys /sys
mount -o remount,bind,ro /sys
mount --bind "$NM/run" /run
mount --bind "$NM/etc" /etc/NetworkManager
mount --bind "$NM/lib" /var/lib/NetworkManager
mount --bind "$NM/resolv.conf" /etc/resolv.conf
mount --bind "$NM/bin/systemctl" "$(command -v systemctl || echo /usr/bin/systemctl)" 2>/dev/null || true
for m in /sbin/modprobe /usr/sbin/modprobe; do
  [ -e "$m" ] && mount --bind /bin/true "$m"
done

pids=()
stop() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit 0
}
trap stop TERM INT

dbus-daemon --config-file="$NM/dbus.conf" --nofork --nopidfile 2>> "$NM/dbus.log" &
pids+=($!)
for _ in $(seq 1 50); do [ -S /run/dbus/system_bus_socket ] && break; sleep 0.05; done

NetworkManager --no-daemon --pid-file=/run/NetworkManager/NetworkManager.pid >> "$NM/NetworkManager.log" 2>&1 &
pids+=($!)
/usr/lib/NetworkManager/nm-dispatcher --persist >> "$NM/dispatcher.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  if nmcli -t -f RUNNING general status 2>/dev/null | grep -q running; then
    touch "$NM/ready"
    break
  fi
  sleep 0.1
done
[ -e "$NM/ready" ] || echo "nm-laptop: NetworkManager did not answer on its bus" >&2
# Until told to stop, or until NetworkManager exits.
wait "${pids[1]}" || true
stop
