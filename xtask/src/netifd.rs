//! `cargo xtask openwrt`, netifd's part: links named by their OpenWrt interface, or taken from
//! the firewall zone `wan` when the config lists none, their devices and gateways from netifd
//! (`resolve.uc`), kept current by netifd's iface hotplug events. The harness's `wan` and `wwan`
//! have equal metrics (no metric, as a stock config), so the kernel holds only one of their
//! default routes. Every verdict comes from the router's kernel tables and `logread`.

use crate::openwrt::{check, default_route as route, within};
use crate::owrt::{self, exec};
use std::time::Duration;

/// Links by interface only: no device, no gateway.
const BY_INTERFACE: &str = r#"{
  "web": { "listen": null },
  "failback_hold_ms": 5000,
  "links": [
    { "name": "wan", "interface": "wan", "targets": ["192.0.2.1"] },
    { "name": "wwan", "interface": "wwan", "targets": ["198.51.100.1"], "bias": 30 }
  ]
}
"#;

/// No links at all: the zone's. The one target is on both ISPs, so either link reaches it.
const FROM_THE_ZONE: &str = r#"{
  "web": { "listen": null },
  "failback_hold_ms": 5000,
  "targets": ["192.0.2.250"]
}
"#;

fn route_via(gateway: &str, device: &str) -> Result<bool, String> {
    Ok(route()?.contains(&format!("via {gateway} dev {device}")))
}

fn resolved() -> Result<String, String> {
    exec("cat /var/run/wanmon/config.json")
}

/// The gateway the resolved config gives link `name` (empty: none).
fn resolved_gateway(name: &str) -> Result<String, String> {
    let path = format!("@.links[@.name='{name}'].gateway");
    Ok(exec(&format!("jsonfilter -i /var/run/wanmon/config.json -e \"{path}\" || true"))?
        .trim()
        .to_string())
}

pub fn netifd(write_config: impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
    steps(write_config).map_err(|e| format!("{e}\n{}", evidence()))
}

/// What the router shows when a step fails: wanmon's log, its status, the resolved config.
fn evidence() -> String {
    let show = "logread | grep wanmon | tail -n 25; wanmon status; ip route show table 22349; \
                ip route show; cat /var/run/wanmon/config.json";
    exec(show).unwrap_or_else(|e| e)
}

fn steps(write_config: impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
    write_config(BY_INTERFACE)?;
    check("links by interface, equal metrics: devices and gateways from netifd", || {
        exec("/etc/init.d/wanmon restart")?;
        within(Duration::from_secs(15), "a default route via 192.0.2.1 dev eth1", || {
            route_via("192.0.2.1", "eth1")
        })?;
        let resolved = resolved()?.replace([' ', '\n'], "");
        for part in [
            r#""device":"eth1","gateway":"192.0.2.1""#,
            r#""device":"eth2","gateway":"198.51.100.1""#,
        ] {
            if !resolved.contains(part) {
                return Err(format!("the resolved config lacks {part}: {resolved}"));
            }
        }
        let main = exec("ip route show default")?.replace('\n', "; ");
        Ok(format!("{}; the main table has only: {main}", route()?))
    })?;
    interfaces_down_and_up()?;
    gateway_change()?;
    from_the_zone(&write_config)
}

fn interfaces_down_and_up() -> Result<(), String> {
    check("ifdown wan: route to wwan, told by the hotplug event", || {
        exec("ifdown wan")?;
        let took = within(Duration::from_secs(10), "a route via eth2", || {
            route_via("198.51.100.1", "eth2")
        })?;
        // The kernel's own news (wan's address gone) may be faster than the hotplug event.
        within(Duration::from_secs(5), "the hotplug event in logread", || {
            Ok(!exec("logread | grep 'wanmon.*interface wan: ifdown' || true")?.trim().is_empty())
        })?;
        Ok(format!("{took:.1} s, {}", route()?))
    })?;
    check("ifup wan: route back to wan after the failback hold", || {
        exec("ifup wan")?;
        let took =
            within(Duration::from_secs(30), "a route via eth1", || route_via("192.0.2.1", "eth1"))?;
        Ok(format!("{took:.1} s"))
    })?;
    check("ifdown wwan, the backup: the route stays on wan, in the kernel", || {
        exec("ifdown wwan")?;
        within(Duration::from_secs(10), "wwan's gateway gone from the resolved config", || {
            Ok(resolved_gateway("wwan")?.is_empty())
        })?;
        std::thread::sleep(Duration::from_secs(2));
        if !route_via("192.0.2.1", "eth1")? {
            return Err(format!("the route moved: {}", route()?));
        }
        exec("ifup wwan")?;
        within(Duration::from_secs(10), "wwan's gateway back in the resolved config", || {
            Ok(resolved_gateway("wwan")? == "198.51.100.1")
        })?;
        route()
    })
}

/// What a DHCP lease with another gateway does to netifd, with a static interface: a new
/// gateway applied by `network reload`.
fn gateway_change() -> Result<(), String> {
    check("wan's gateway changes in netifd: the route follows", || {
        owrt::router(&["ns", "isp1", "ip", "addr", "add", "192.0.2.9/24", "dev", "eth0"])?;
        exec(
            "uci set network.wan.gateway=192.0.2.9; uci commit network; ubus call network reload",
        )?;
        let took = within(Duration::from_secs(15), "a route via 192.0.2.9", || {
            route_via("192.0.2.9", "eth1")
        })?;
        let shown = format!("{took:.1} s, {}", route()?);
        exec(
            "uci set network.wan.gateway=192.0.2.1; uci commit network; ubus call network reload",
        )?;
        within(Duration::from_secs(15), "a route via 192.0.2.1 again", || {
            route_via("192.0.2.1", "eth1")
        })?;
        Ok(shown)
    })
}

fn from_the_zone(write_config: &impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
    for isp in ["isp1", "isp2"] {
        owrt::router(&["ns", isp, "ip", "addr", "add", "192.0.2.250/32", "dev", "lo"])?;
    }
    write_config(FROM_THE_ZONE)?;
    exec(
        "uci del_list firewall.@zone[1].network=wwan; uci add_list firewall.@zone[1].network=wwan; uci commit firewall",
    )?;
    check("no links: the zone wan's interfaces, wwan up only after the start", || {
        exec("ifdown wwan")?;
        exec("/etc/init.d/wanmon restart")?;
        within(Duration::from_secs(15), "a route via eth1", || route_via("192.0.2.1", "eth1"))?;
        let names = exec("jsonfilter -i /var/run/wanmon/config.json -e '@.links[*].name'")?;
        if names.split_whitespace().collect::<Vec<_>>() != ["wan", "wwan"] {
            return Err(format!("links from the zone: {names:?}, expected wan and wwan"));
        }
        exec("ifup wwan")?;
        within(Duration::from_secs(10), "wwan's gateway in the resolved config", || {
            Ok(resolved_gateway("wwan")? == "198.51.100.1")
        })?;
        owrt::router(&["ns", "isp1", "ip", "link", "set", "eth0", "down"])?;
        let took = within(Duration::from_secs(10), "a route via eth2", || {
            route_via("198.51.100.1", "eth2")
        })?;
        owrt::router(&["ns", "isp1", "ip", "link", "set", "eth0", "up"])?;
        // wwan, a backup from the zone, has a bias: wan, preferred, gets the route back.
        let back = within(Duration::from_secs(30), "a route via eth1 again", || {
            route_via("192.0.2.1", "eth1")
        })?;
        Ok(format!(
            "links wan, wwan; ISP 1 pulled: route to wwan in {took:.1} s, back in {back:.1} s"
        ))
    })
}
