# wanmon: which links would carry no NATed LAN traffic. Sourced by the init script (start and
# reload: the log) and the rpcd plugin (LuCI). A link's device is found among netifd's
# interfaces; that interface must be in a firewall zone with masquerading, as fw4's `wan` zone
# is. The stock zone lists `wan` and `wan6` only, so a backup such as `wwan` is rejected by the
# firewall until it is added. Prints one line per such link:
#   LINK<TAB>DEVICE<TAB>INTERFACE (or -)<TAB>the commands that fix it

wanmon_zones() {
	local config="${1:-/etc/wanmon/config.json}" interfaces i name device iface fix
	interfaces=$(ubus call network.interface dump 2>/dev/null)
	i=0
	while name=$(jsonfilter -i "$config" -e "@.links[$i].name" 2>/dev/null) && [ -n "$name" ]; do
		device=$(jsonfilter -i "$config" -e "@.links[$i].device")
		i=$((i + 1))
		[ "$(jsonfilter -i "$config" -e "@.links[$((i - 1))].enabled" 2>/dev/null)" = false ] && continue
		iface=$(echo "$interfaces" | jsonfilter -e "@.interface[@.l3_device='$device'].interface" | head -n 1)
		[ -n "$iface" ] || iface=$(echo "$interfaces" | jsonfilter -e "@.interface[@.device='$device'].interface" | head -n 1)
		if [ -z "$iface" ]; then
			printf '%s\t%s\t-\tno netifd interface uses %s: add one in /etc/config/network, then put it in the wan zone\n' \
				"$name" "$device" "$device"
			continue
		fi
		wanmon_masqueraded "$iface" && continue
		fix="uci add_list firewall.$(wanmon_wan_zone).network='$iface'; uci commit firewall; /etc/init.d/firewall reload"
		printf '%s\t%s\t%s\t%s\n' "$name" "$device" "$iface" "$fix"
	done
}

# Whether interface $1 is in a zone with masquerading.
wanmon_masqueraded() {
	local zone
	for zone in $(uci -q show firewall | sed -n 's/^firewall\.\([^.=]*\)=zone$/\1/p'); do
		[ "$(uci -q get "firewall.$zone.masq")" = 1 ] || continue
		for network in $(uci -q get "firewall.$zone.network"); do
			[ "$network" = "$1" ] && return 0
		done
	done
	return 1
}

# The section of the zone named wan (stock: @zone[1]), as uci names it.
wanmon_wan_zone() {
	local zone
	for zone in $(uci -q show firewall | sed -n 's/^firewall\.\([^.=]*\)=zone$/\1/p'); do
		[ "$(uci -q get "firewall.$zone.name")" = wan ] && { echo "$zone"; return; }
	done
	echo '@zone[1]'
}

# Each such link as a warning in the log.
wanmon_log_zones() {
	wanmon_zones "$1" | while IFS="$(printf '\t')" read -r name device iface fix; do
		logger -t wanmon -p daemon.warn \
			"link $name ($device, interface $iface) is in no firewall zone with masquerading: LAN traffic through it is rejected. Fix: $fix"
	done
}
