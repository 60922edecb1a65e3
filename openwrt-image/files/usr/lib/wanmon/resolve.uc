#!/usr/bin/ucode
// wanmon's links as netifd knows them: reads the user's config (ARGV[0]) and writes the one the
// daemon runs on (ARGV[1]) with, for each link naming an OpenWrt "interface", the device and
// the IPv4 gateway netifd holds for it. netifd keeps an interface's gateway even when its
// kernel route was replaced by another interface's (equal metrics), so it is the source of
// truth, not the main table. With no "links" at all, the links are the interfaces of the
// firewall zone "wan" (the zone that masquerades), in netifd's metric order, one per device;
// the first is preferred (the others get a bias of 30 points, as the shipped config's backup).
// Each link whose LAN traffic the firewall would not masquerade gets a "warning" with the uci
// commands that fix it (the daemon shows it in its status and page; the init script logs it);
// with "require_masquerade": true it is disabled as well. A link that carries IPv6 (probes IPv6
// targets) but delegated no prefix to the LAN, while another link did, is warned about unless
// its zone masquerades IPv6 too: the LAN hosts' addresses are the other link's, which this
// link's ISP drops.
// Run by the init script at start and reload and by the iface hotplug script; prints
// "changed" when the written config differs from the one before.
'use strict';

import { readfile, writefile, rename } from 'fs';
import { connect } from 'ubus';
import { cursor } from 'uci';

const source = ARGV[0] ?? '/etc/wanmon/config.json';
const output = ARGV[1] ?? '/var/run/wanmon/config.json';

function fail(message) {
	warn(`wanmon: ${message}\n`);
	exit(1);
}

let text = readfile(source);
if (text == null)
	fail(`cannot read ${source}`);
let config;
try {
	config = json(text);
}
catch (e) {
	// The daemon's own check names the line and key; pass the text through unchanged.
	config = null;
}

let bus = connect();
let interfaces = bus?.call('network.interface', 'dump')?.interface ?? [];

function status_of(name) {
	for (let i in interfaces)
		if (i.interface == name)
			return i;
	return null;
}

function gateway_of(status) {
	if (!status?.up)
		return null;
	for (let route in status.route ?? [])
		if (route.target == '0.0.0.0' && route.mask == 0 && route.nexthop != '0.0.0.0')
			return route.nexthop;
	return null;
}

function device_of(status, name) {
	return status?.l3_device ?? status?.device ?? name;
}

const IPV6_ONLY = ['dhcpv6', '6in4', '6rd', '6to4', 'dslite', 'map', '464xlat'];

// The firewall's zones: the wan zone's networks and uci name, each network's zone, the networks
// masqueraded (IPv4, and IPv6 with masq6).
let wan = { networks: [], section: '@zone[1]' }, masqueraded = {}, zone_of = {}, masqueraded6 = {};
let zone_index = 0;
cursor().foreach('firewall', 'zone', (zone) => {
	let networks = type(zone.network) == 'array' ? zone.network : split(zone.network ?? '', ' ');
	if (zone.name == 'wan')
		wan = { networks, section: `@zone[${zone_index}]` };
	for (let name in networks) {
		if (zone_of[name] == null)
			zone_of[name] = `@zone[${zone_index}]`;
		if (zone.masq == '1')
			masqueraded[name] = true;
		if (zone.masq6 == '1')
			masqueraded6[name] = true;
	}
	zone_index++;
});

function interface_of(device) {
	for (let i in interfaces)
		if (i.l3_device == device || i.device == device)
			return i.interface;
	return null;
}

// Why the LAN's traffic through this link would not be masqueraded, with the fix; or null.
function firewall_warning(link) {
	let name = link.interface ?? interface_of(link.device);
	if (name == null)
		return `no netifd interface uses ${link.device}: add one in /etc/config/network, then put it in the firewall zone wan`;
	if (masqueraded[name])
		return null;
	return `interface ${name} is in no firewall zone with masquerading: LAN traffic through it is rejected. Fix: uci add_list firewall.${wan.section}.network='${name}'; uci commit firewall; /etc/init.d/firewall reload; /etc/init.d/wanmon reload`;
}

// The interfaces that delegated an IPv6 prefix to the LAN (DHCPv6-PD, a static ip6prefix).
function delegating() {
	let found = [];
	for (let i in interfaces)
		if (i.up && length(i['ipv6-prefix'] ?? []))
			push(found, i);
	return found;
}

function carries_ipv6(link) {
	for (let target in link.targets ?? config.targets ?? [])
		if (index(`${target}`, ':') >= 0)
			return true;
	return false;
}

// Why LAN hosts' IPv6 traffic through this link would be dropped, with the fix; or null.
function ipv6_warning(link) {
	let name = link.interface ?? interface_of(link.device);
	let zone = zone_of[name];
	if (!carries_ipv6(link) || zone == null || masqueraded6[name])
		return null;
	let prefixes = delegating();
	let own = filter(prefixes, (i) => device_of(i, i.interface) == link.device);
	if (!length(prefixes) || length(own))
		return null;
	return `LAN hosts' IPv6 addresses come from the prefix of ${prefixes[0].interface}, which the ISP behind ${name} drops: masquerade IPv6 there. Fix: uci set firewall.${zone}.masq6='1'; uci commit firewall; /etc/init.d/firewall reload; /etc/init.d/wanmon reload`;
}

function zone_links() {
	let networks = wan.networks;
	let found = [];
	for (let name in networks) {
		let status = status_of(name);
		// IPv6-only protocols share the device of their IPv4 sibling (wan6 beside wan).
		if (status && !(status.proto in IPV6_ONLY))
			push(found, { name, metric: status.metric ?? 0, order: length(found) });
	}
	sort(found, (a, b) => (a.metric - b.metric) || (a.order - b.order));
	let links = [], devices = {};
	for (let link in found) {
		let device = device_of(status_of(link.name), link.name);
		if (devices[device])
			continue;
		devices[device] = true;
		// The first is the primary; a backup must be better by this much to keep the route.
		push(links, length(links) ? { name: link.name, interface: link.name, bias: 30 }
			: { name: link.name, interface: link.name });
	}
	return links;
}

if (type(config) == 'object') {
	if (config.links == null) {
		config.links = zone_links();
		if (!length(config.links))
			fail(`${source}: no links, and the firewall zone wan lists no interface netifd knows; name the links ("interface": "wan") or put the uplinks in the zone`);
	}
	for (let link in (type(config.links) == 'array' ? config.links : [])) {
		if (type(link) != 'object' || type(link.interface) != 'string')
			continue;
		let status = status_of(link.interface);
		if (link.device == null)
			link.device = device_of(status, link.interface);
		if (link.gateway == null)
			link.gateway = gateway_of(status);
	}
	for (let link in (type(config.links) == 'array' ? config.links : [])) {
		if (type(link) != 'object' || type(link.device) != 'string' || link.enabled === false)
			continue;
		delete link.warning;
		let warning = firewall_warning(link);
		if (warning && config.require_masquerade === true) {
			link.enabled = false;
			warning = `disabled (require_masquerade): ${warning}`;
		}
		warning ??= ipv6_warning(link);
		if (warning)
			link.warning = warning;
	}
	text = sprintf('%.2J\n', config);
}

let before = readfile(output);
if (before == text)
	exit(0);
if (!writefile(`${output}.new`, text) || !rename(`${output}.new`, output))
	fail(`cannot write ${output}`);
print('changed\n');
