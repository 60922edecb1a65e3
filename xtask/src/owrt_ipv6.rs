//! `cargo xtask openwrt`, IPv6 for LAN hosts: the primary (wan) delegates 2001:db8:a::/48 to the
//! LAN, the backup (wwan, a phone hotspot) delegates nothing, and its ISP drops every source
//! that is not its own, as ISPs do. netifd writes the addresses and routes (`route6` sections
//! with a `source`: only source-specific default routes, as odhcp6c's script leaves them), fw4
//! the masquerading; wanmon finds its IPv6 gateways in those routes. wanmon
//! warns that the LAN's IPv6 would be dropped through wwan, with the fix; a LAN host's ping
//! through wwan fails until the fix, as given, is run; then the host reaches the target through
//! wwan, and through wan again after the failback. Verdicts from the kernel's tables, the LAN
//! host's pings and the status.

use crate::openwrt::{check, within};
use crate::owrt::{self, exec};
use std::time::Duration;

/// Both links probe one IPv4 and one IPv6 target; the IPv6 target is on both ISPs.
const CONFIG: &str = r#"{
  "web": { "listen": null },
  "failback_hold_ms": 5000,
  "links": [
    { "name": "wan", "interface": "wan", "targets": ["192.0.2.1", "2001:db8:ff::1"] },
    { "name": "wwan", "interface": "wwan", "targets": ["198.51.100.1", "2001:db8:ff::1"], "bias": 30 }
  ]
}
"#;

const TARGET: &str = "2001:db8:ff::1";

/// netifd's side, as odhcp6c's script leaves it (`sourcefilter`, OpenWrt's default): the IPv6
/// default routes only from a source, one per delegated prefix and one per own address prefix,
/// no plain one; distinct metrics (equal IPv6 routes would merge); the LAN's address from wan's
/// prefix.
fn network() -> String {
    let mut commands = vec![
        "uci set network.wan.metric=10; uci set network.wwan.metric=20".to_string(),
        "uci set network.wan.ip6addr=2001:db8:1::2/64; uci set network.wan.ip6prefix=2001:db8:a::/48"
            .into(),
        "uci set network.wwan.ip6addr=2001:db8:2::2/64; uci set network.lan.ip6addr=2001:db8:a:1::1/64"
            .into(),
    ];
    for (name, interface, gateway, source) in [
        ("pd", "wan", "2001:db8:1::1", "2001:db8:a::/48"),
        ("own1", "wan", "2001:db8:1::1", "2001:db8:1::/64"),
        ("own2", "wwan", "2001:db8:2::1", "2001:db8:2::/64"),
    ] {
        commands.push(format!(
            "uci set network.{name}=route6; uci set network.{name}.interface={interface}; \
             uci set network.{name}.target=::/0; uci set network.{name}.gateway={gateway}; \
             uci set network.{name}.source={source}"
        ));
    }
    commands.push("uci commit network; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding".into());
    commands.push("ubus call network reload".into());
    commands.join("; ")
}

fn ns(name: &str, command: &str) -> Result<(), String> {
    let args: Vec<&str> = ["ns", name].into_iter().chain(command.split(' ')).collect();
    let out = owrt::router(&args)?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!("{name}: `{command}` failed: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The ISPs and the LAN host: ISP 1 routes the prefix back; ISP 2 accepts only its own sources.
fn peers() -> Result<(), String> {
    for (isp, address) in [("isp1", "2001:db8:1::1/64"), ("isp2", "2001:db8:2::1/64")] {
        ns(isp, &format!("ip -6 addr add {address} dev eth0 nodad"))?;
        ns(isp, &format!("ip -6 addr add {TARGET}/128 dev lo"))?;
    }
    ns("isp1", "ip -6 route add 2001:db8:a::/48 via 2001:db8:1::2")?;
    ns("isp2", "nft add table ip6 bcp38")?;
    let out = owrt::router(&[
        "ns",
        "isp2",
        "nft",
        "add chain ip6 bcp38 in { type filter hook prerouting priority -300; }; \
         add rule ip6 bcp38 in ip6 saddr != { 2001:db8:2::/64, fe80::/10 } drop",
    ])?;
    if !out.status.success() {
        return Err(format!("isp2's filter: {}", String::from_utf8_lossy(&out.stderr)));
    }
    ns("lan", "ip -6 addr add 2001:db8:a:1::100/64 dev eth0 nodad")?;
    ns("lan", "ip -6 route add default via 2001:db8:a:1::1")
}

fn ipv6_route() -> Result<String, String> {
    crate::openwrt::default_route_of("-6")
}

fn lan_reaches_the_target() -> Result<bool, String> {
    let out = owrt::router(&["ns", "lan", "ping", "-6", "-c", "1", "-W", "2", TARGET])?;
    Ok(out.status.success())
}

/// ISP 1 stops answering while its link stays up: the LAN keeps wan's prefix.
fn isp1_silent(on: bool) -> Result<(), String> {
    if on {
        ns("isp1", "nft add table inet silent")?;
        let chain = "add chain inet silent in { type filter hook input priority 0; policy drop; }";
        let out = owrt::router(&["ns", "isp1", "nft", chain])?;
        if out.status.success() { Ok(()) } else { Err("isp1's drop-all failed".into()) }
    } else {
        ns("isp1", "nft delete table inet silent")
    }
}

pub fn ipv6(write_config: impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
    steps(write_config).map_err(|e| {
        let show = "logread | grep wanmon | tail -n 15; wanmon status; ip -6 route; ip -6 rule";
        format!("{e}\n{}", exec(show).unwrap_or_else(|e| e))
    })
}

fn steps(write_config: impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
    check(
        "IPv6: wan delegates a prefix to the LAN, wwan none: wanmon's IPv6 route on wan",
        || {
            exec(&network())?;
            peers()?;
            write_config(CONFIG)?;
            exec("/etc/init.d/wanmon restart")?;
            within(Duration::from_secs(20), "an IPv6 default route via eth1", || {
                Ok(ipv6_route()?.contains("dev eth1"))
            })?;
            let source_route = exec("ip -6 route show default")?;
            if !source_route.contains("from 2001:db8:a::/48 via 2001:db8:1::1 dev eth1")
                || source_route.lines().any(|l| l.starts_with("default via"))
            {
                return Err(format!("not source-specific routes only: {source_route}"));
            }
            // Duplicate address detection holds the router's new addresses for a moment.
            let took =
                within(Duration::from_secs(10), "a ping through wan", lan_reaches_the_target)?;
            Ok(format!("{}; the LAN host reaches {TARGET} ({took:.1} s)", ipv6_route()?))
        },
    )?;
    let fix = warned_about_wwan()?;
    check("ISP 1 silent: IPv6 route to wwan; without masq6 the LAN's ping is dropped", || {
        isp1_silent(true)?;
        let took = within(Duration::from_secs(10), "an IPv6 route via eth2", || {
            Ok(ipv6_route()?.contains("dev eth2"))
        })?;
        if lan_reaches_the_target()? {
            return Err("the LAN host's prefix got through ISP 2: the check means nothing".into());
        }
        Ok(format!("{took:.1} s, {}", ipv6_route()?))
    })?;
    check("the fix, as given: the LAN host reaches the target through wwan", || {
        exec(&fix)?;
        within(Duration::from_secs(10), "the warning gone", || {
            Ok(!exec("wanmon status")?.contains("LAN hosts' IPv6"))
        })?;
        within(Duration::from_secs(10), "a ping through wwan", lan_reaches_the_target)?;
        Ok("masq6 on wwan's zone".into())
    })?;
    check("ISP 1 back: IPv6 route back on wan, the LAN host reaches the target", || {
        isp1_silent(false)?;
        let took = within(Duration::from_secs(30), "an IPv6 route via eth1", || {
            Ok(ipv6_route()?.contains("dev eth1"))
        })?;
        if !lan_reaches_the_target()? {
            return Err("the LAN host cannot reach the target after the failback".into());
        }
        Ok(format!("{took:.1} s"))
    })
}

/// wwan, and only wwan, is warned about, with the uci commands that fix it.
fn warned_about_wwan() -> Result<String, String> {
    let mut fix = String::new();
    check("the backup would drop the LAN's prefix: wanmon says so, with the fix", || {
        let status = exec("wanmon status")?;
        let warned = "LAN hosts' IPv6 addresses come from the prefix of wan, which the ISP behind wwan drops";
        if status.matches("LAN hosts' IPv6").count() != 1 || !status.contains(warned) {
            return Err(format!("wwan (and only wwan) should be warned about: {status}"));
        }
        let key = "Fix: ";
        let start = status.find(key).ok_or("no fix given")? + key.len();
        fix = status[start..].lines().next().unwrap_or_default().to_string();
        Ok(fix.clone())
    })?;
    Ok(fix)
}
