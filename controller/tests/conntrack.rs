//! After the switch, traffic really flows: a LAN host behind the router's NAT keeps a UDP flow
//! going at 20 packets a second while the wired WAN breaks. With `conntrack_cleanup` (the
//! default) the flow continues through the backup within a second of the switch. Without it, a
//! source-NATed flow (`snat to` each link's fixed address) keeps its conntrack entry and the old
//! WAN's address, and never recovers while it keeps sending; a masqueraded one is reset by the
//! kernel itself at its first packet out of the new device (that packet is lost). A second flow,
//! routed through the backup all along, is untouched.
//!
//! Needs root (network namespaces, nftables): `#[ignore]`, run by `cargo xtask ci` as root.

mod lab;

use lab::*;
use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LAN_HOST: &str = "192.0.2.130";
/// A server both ISPs reach (anycast-like: each ISP has it), and one only the backup has.
const SERVER: &str = "203.0.113.50";
const BACKUP_ONLY_SERVER: &str = "203.0.113.60";
const PORT: u16 = 5000;

/// Echoes every datagram to `address` until `stop`, from that address (as a NATed flow's reply
/// must come); returns the source addresses it heard from.
fn echo_server(
    ns: &str,
    address: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<IpAddr>> {
    spawn_in(ns, move || {
        let socket = UdpSocket::bind((address, PORT)).expect("bind echo server");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let mut buffer = [0u8; 64];
        let mut heard = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Ok((len, from)) = socket.recv_from(&mut buffer) {
                let _ = socket.send_to(&buffer[..len], from);
                if !heard.contains(&from.ip()) {
                    heard.push(from.ip());
                }
            }
        }
        heard
    })
}

/// Sends from `local` to `server` every 50 ms from a fixed port until `stop`; returns when
/// each echo came.
fn flow(
    ns: &str,
    (local, server): (&'static str, &'static str),
    port: u16,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Instant>> {
    spawn_in(ns, move || {
        let socket = UdpSocket::bind((local, port)).expect("bind flow");
        socket.set_read_timeout(Some(Duration::from_millis(5))).expect("timeout");
        let mut echoes = Vec::new();
        let mut next = Instant::now();
        let mut buffer = [0u8; 64];
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= next {
                let _ = socket.send_to(b"keepalive", (server, PORT));
                next += Duration::from_millis(50);
            }
            if socket.recv_from(&mut buffer).is_ok() {
                echoes.push(Instant::now());
            }
        }
        echoes
    })
}

/// A LAN namespace behind the router, masquerading on both WANs, the servers on the ISPs.
fn wire(lab: &Lab, lan: &str, nat: Nat) {
    let router = &lab.router;
    let _ = std::process::Command::new("ip").args(["netns", "del", lan]).output();
    sh(&["ip", "netns", "add", lan]);
    veth_pair((router, "lan", "192.0.2.129/25"), (lan, "eth0", &format!("{LAN_HOST}/25")));
    sh(&["ip", "-n", lan, "link", "set", "lo", "up"]);
    sh(&["ip", "-n", lan, "route", "add", "default", "via", "192.0.2.129"]);
    sh(&["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let nft = |command: &str| sh(&["ip", "netns", "exec", router, "nft", command]);
    nft("add table ip wmnat");
    nft("add chain ip wmnat post { type nat hook postrouting priority 100; }");
    match nat {
        Nat::Masquerade => nft(r#"add rule ip wmnat post oifname { "wan", "wwan" } masquerade"#),
        Nat::Snat => {
            nft(r#"add rule ip wmnat post oifname "wan" snat to 198.51.100.2"#);
            nft(r#"add rule ip wmnat post oifname "wwan" snat to 198.51.100.6"#)
        }
    };
    for isp in [&lab.isp_a, &lab.isp_b] {
        sh(&["ip", "-n", isp, "addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
    }
    sh(&["ip", "-n", &lab.isp_b, "addr", "add", &format!("{BACKUP_ONLY_SERVER}/32"), "dev", "lo"]);
    // The backup-only server is reached through wwan whatever the default route: a specific
    // route in main, which wanmon's rules leave in force.
    sh(&[
        "ip",
        "-n",
        router,
        "route",
        "add",
        BACKUP_ONLY_SERVER,
        "via",
        "198.51.100.5",
        "dev",
        "wwan",
    ]);
}

/// How the router translates LAN addresses: fw4's zone masquerading, or source NAT to each
/// link's fixed address (a business line with static addresses). The kernel drops a
/// masqueraded flow's entry itself when its packets leave by another device (losing one
/// packet); a source-NATed flow keeps its entry, and the old address with it.
#[derive(Clone, Copy, Debug)]
enum Nat {
    Masquerade,
    Snat,
}

/// What became of the two flows when wan broke.
struct Outcome {
    /// From the route's move to the moved flow's first echo after its silence (0 if it came
    /// before the move was seen).
    recovered: Option<Duration>,
    /// The longest silence of the flow through the backup around the switch.
    untouched_gap: Duration,
    log: String,
}

fn break_wan_under_flows(nat: Nat, cleanup: &str) -> Outcome {
    let mut lab = Lab::new(&format!("ct{}", &cleanup[..2]));
    let lan = format!("wml-{}", &lab.router[4..]);
    wire(&lab, &lan, nat);
    let config = lab.config(&format!(r#""conntrack_cleanup": "{cleanup}", "#));
    lab.start(&config);
    let stop = Arc::new(AtomicBool::new(false));
    let servers = [
        echo_server(&lab.isp_a, SERVER, stop.clone()),
        echo_server(&lab.isp_b, SERVER, stop.clone()),
        echo_server(&lab.isp_b, BACKUP_ONLY_SERVER, stop.clone()),
    ];
    let moved = flow(&lan, (LAN_HOST, SERVER), 40_000, stop.clone());
    let steady = flow(&lan, (LAN_HOST, BACKUP_ONLY_SERVER), 40_001, stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    let broken = Instant::now();
    lab.drop_all(&lab.isp_a.clone(), true);
    lab.wait_for("the route to move to wwan", Duration::from_secs(8), |l| {
        l.route_device().as_deref() == Some("wwan")
    });
    let switched = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let moved = moved.join().expect("flow");
    let steady = steady.join().expect("flow");
    for server in servers {
        server.join().expect("server");
    }
    let _ = std::process::Command::new("ip").args(["netns", "del", &lan]).output();
    assert!(moved.iter().any(|t| *t < broken), "the flow never worked before the break");
    let recovered = resumed(&moved, broken, switched);
    let untouched_gap = longest_silence(&steady, broken - Duration::from_secs(1));
    Outcome { recovered, untouched_gap, log: lab.log() }
}

/// From `switched` to the first echo after `broken` that ends a silence (echoes already in
/// flight when the ISP started dropping end none); `None` if none did.
fn resumed(echoes: &[Instant], broken: Instant, switched: Instant) -> Option<Duration> {
    echoes
        .windows(2)
        .find(|w| w[1] > broken && w[1] - w[0] > Duration::from_millis(300))
        .map(|w| w[1].saturating_duration_since(switched))
}

/// The longest wait between echoes from `since` on.
fn longest_silence(echoes: &[Instant], since: Instant) -> Duration {
    let after: Vec<Instant> = echoes.iter().copied().filter(|t| *t > since).collect();
    after.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(Duration::MAX)
}

#[test]
#[ignore = "needs root: network namespaces and nftables"]
fn a_natted_flow_follows_the_switch_only_with_the_cleanup() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for nat in [Nat::Snat, Nat::Masquerade] {
        let with = break_wan_under_flows(nat, "on");
        let recovered = with
            .recovered
            .unwrap_or_else(|| panic!("{nat:?}: the flow never recovered\n{}", with.log));
        println!(
            "{nat:?}, cleanup on: the flow continues through wwan {} ms after the switch; \
             the flow through wwan was silent at most {} ms",
            recovered.as_millis(),
            with.untouched_gap.as_millis()
        );
        assert!(recovered <= Duration::from_secs(1), "{nat:?}: took {recovered:?}\n{}", with.log);
        // A source-NATed entry is wanmon's to remove. A masqueraded one the kernel also drops
        // at the first packet that leaves by wwan, which may come before the cleanup does.
        let removed = with.log.contains("conntrack: 1 LAN flow(s) through wan removed");
        assert!(removed || matches!(nat, Nat::Masquerade), "{}", with.log);
        assert!(!with.log.contains("cannot remove"), "{}", with.log);
        // The kernel has conntrack netlink: no warning at the start either.
        assert!(!with.log.contains("conntrack_cleanup is on, but"), "{}", with.log);
        assert!(with.untouched_gap < Duration::from_millis(500), "the other flow was disturbed");
    }
    let without = break_wan_under_flows(Nat::Snat, "off");
    println!("Snat, cleanup off: recovered {:?} (None: stuck on wan's address)", without.recovered);
    assert_eq!(
        without.recovered, None,
        "source NAT without the cleanup stays stuck\n{}",
        without.log
    );
    assert!(!without.log.contains("conntrack:"), "{}", without.log);
    // Masquerading without the cleanup: the kernel drops the entry at the first packet that
    // leaves by the new device; shown for the record, not wanmon's doing.
    let masquerade = break_wan_under_flows(Nat::Masquerade, "off");
    println!(
        "Masquerade, cleanup off: recovered {:?} (the kernel's own reset)",
        masquerade.recovered
    );
}

/// IPv6 as OpenWrt sets it up when the primary delegates a prefix and the backup does not (a
/// phone hotspot): LAN hosts have addresses from wan's 2001:db8:a::/48 only.
const LAN_HOST6: &str = "2001:db8:a:1::100";
const SERVER6: &str = "2001:db8:ff::1";
const WWAN6: &str = "2001:db8:2::2";

/// The lab's IPv6: netifd's routes on the router (a source-specific default route for the
/// delegated prefix, a plain one for the router's own traffic), the primary's ISP routing the
/// prefix back, the backup's ISP dropping every source that is not its own (BCP38, as ISPs
/// do). With `masq6` the router masquerades IPv6 leaving wwan, as fw4's `masq6` does for a
/// zone holding wwan alone; the primary's traffic keeps its addresses.
fn wire_ipv6(lab: &Lab, lan: &str, masq6: bool) {
    let router = &lab.router;
    let ip = |args: &[&str]| sh(&[&["ip"][..], args].concat());
    let _ = std::process::Command::new("ip").args(["netns", "del", lan]).output();
    sh(&["ip", "netns", "add", lan]);
    veth_pair((router, "lan", "192.0.2.129/25"), (lan, "eth0", &format!("{LAN_HOST}/25")));
    sh(&["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    for (ns, device, address) in [
        (router.as_str(), "lan", "2001:db8:a:1::1/64"),
        (lan, "eth0", "2001:db8:a:1::100/64"),
        (router, "wan", "2001:db8:1::2/64"),
        (&lab.isp_a, "isp", "2001:db8:1::1/64"),
        (router, "wwan", "2001:db8:2::2/64"),
        (&lab.isp_b, "isp", "2001:db8:2::1/64"),
        (&lab.isp_a, "lo", "2001:db8:ff::1/128"),
        (&lab.isp_b, "lo", "2001:db8:ff::1/128"),
    ] {
        ip(&["-n", ns, "addr", "add", address, "dev", device, "nodad"]);
    }
    ip(&["-n", lan, "-6", "route", "add", "default", "via", "2001:db8:a:1::1"]);
    delegated_route(lab, "add");
    for route in [
        "default via 2001:db8:1::1 dev wan metric 10",
        "default via 2001:db8:2::1 dev wwan metric 20",
    ] {
        ip(&[&["-n", router, "-6", "route", "add"][..], &route.split(' ').collect::<Vec<_>>()]
            .concat());
    }
    ip(&["-n", &lab.isp_a, "-6", "route", "add", "2001:db8:a::/48", "via", "2001:db8:1::2"]);
    let nft = |ns: &str, command: &str| sh(&["ip", "netns", "exec", ns, "nft", command]);
    nft(&lab.isp_b, "add table ip6 bcp38");
    nft(&lab.isp_b, "add chain ip6 bcp38 in { type filter hook prerouting priority -300; }");
    nft(
        &lab.isp_b,
        r#"add rule ip6 bcp38 in iifname "isp" ip6 saddr != { 2001:db8:2::/64, fe80::/10 } drop"#,
    );
    if masq6 {
        nft(router, "add table ip6 wmnat6");
        nft(router, "add chain ip6 wmnat6 post { type nat hook postrouting priority 100; }");
        nft(router, r#"add rule ip6 wmnat6 post oifname "wwan" masquerade"#);
    }
}

/// netifd's route for the prefix wan delegated: added, or deleted (netifd takes an interface's
/// routes away when it goes down).
fn delegated_route(lab: &Lab, change: &str) {
    let route = "default from 2001:db8:a::/48 via 2001:db8:1::1 dev wan metric 10";
    let args = [
        &["ip", "-n", &lab.router, "-6", "route", change][..],
        &route.split(' ').collect::<Vec<_>>(),
    ];
    sh(&args.concat());
}

/// What became of a LAN host's IPv6 flows when wan broke (and came back).
struct Ipv6Outcome {
    /// From the move to wwan to the first echo after the flow's silence.
    failover: Option<Duration>,
    /// Whether a flow started after the move got echoes through wwan.
    new_flow_works: bool,
    /// The flow's longest silence from the move back to wan on (with `fail_back`).
    failback_gap: Option<Duration>,
    /// The sources each ISP's server heard: (primary, backup).
    heard: (Vec<IpAddr>, Vec<IpAddr>),
    log: String,
}

fn break_wan_under_an_ipv6_flow(masq6: bool, cleanup: &str, fail_back: bool) -> Ipv6Outcome {
    let mut lab = Lab::new(&format!("c6{}{}", u8::from(masq6), &cleanup[..2]));
    let lan = format!("wml-{}", &lab.router[4..]);
    wire_ipv6(&lab, &lan, masq6);
    let config = lab.dir.join("v6.json");
    let text = format!(
        r#"{{"conntrack_cleanup": "{cleanup}", "targets": ["{SERVER6}"], "failback_hold_ms": 3000,
            "links": [{{"name": "wan", "device": "wan"}}, {{"name": "wwan", "device": "wwan", "bias": 20}}]}}"#
    );
    std::fs::write(&config, text).expect("config");
    lab.spawn(&config, false);
    let on =
        |device: &'static str| move |l: &Lab| l.route_device_to(SERVER6).as_deref() == Some(device);
    lab.wait_for("the route on wan", Duration::from_secs(15), |l| {
        String::from_utf8_lossy(&l.cli(&["status"]).stdout)
            .contains("default via 2001:db8:1::1 dev wan")
    });
    let stop = Arc::new(AtomicBool::new(false));
    let servers = [&lab.isp_a, &lab.isp_b].map(|isp| echo_server(isp, SERVER6, stop.clone()));
    let moved = flow(&lan, (LAN_HOST6, SERVER6), 40_000, stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    let broken = Instant::now();
    lab.drop_all(&lab.isp_a.clone(), true);
    // wan's interface goes down too: its source-specific route is gone before the switch, so
    // the cleanup must know the prefix from before.
    delegated_route(&lab, "del");
    lab.wait_for("the IPv6 route to move to wwan", Duration::from_secs(8), on("wwan"));
    let switched = Instant::now();
    let late = flow(&lan, (LAN_HOST6, SERVER6), 40_001, stop.clone());
    std::thread::sleep(Duration::from_secs(3));
    let mut back = None;
    if fail_back {
        delegated_route(&lab, "add");
        lab.drop_all(&lab.isp_a.clone(), false);
        lab.wait_for("the IPv6 route back on wan", Duration::from_secs(15), on("wan"));
        back = Some(Instant::now());
        std::thread::sleep(Duration::from_secs(2));
    }
    stop.store(true, Ordering::Relaxed);
    let (moved, late) = (moved.join().expect("flow"), late.join().expect("flow"));
    let [primary, backup] = servers.map(|s| s.join().expect("server"));
    let _ = std::process::Command::new("ip").args(["netns", "del", &lan]).output();
    assert!(
        moved.iter().any(|t| *t < broken),
        "the flow never worked before the break\n{}",
        lab.log()
    );
    let failback_gap = back.map(|back| longest_silence(&moved, back - Duration::from_secs(1)));
    Ipv6Outcome {
        failover: resumed(&moved, broken, switched),
        new_flow_works: !late.is_empty(),
        failback_gap,
        heard: (primary, backup),
        log: lab.log(),
    }
}

#[test]
#[ignore = "needs root: network namespaces and nftables"]
fn an_ipv6_lan_host_reaches_the_internet_through_the_backup_and_back() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ip = |a: &str| a.parse::<IpAddr>().expect("address");
    let with = break_wan_under_an_ipv6_flow(true, "on", true);
    let failover =
        with.failover.unwrap_or_else(|| panic!("the flow never recovered\n{}", with.log));
    let failback = with.failback_gap.expect("failed back");
    println!(
        "IPv6, masq6 on wwan, cleanup on: the flow continues through wwan {} ms after the switch; \
         back on wan, its longest silence was {} ms",
        failover.as_millis(),
        failback.as_millis()
    );
    assert!(failover <= Duration::from_secs(1), "took {failover:?}\n{}", with.log);
    assert!(
        failback <= Duration::from_secs(1),
        "silent {failback:?} at the failback\n{}",
        with.log
    );
    assert!(with.new_flow_works, "a new flow got nothing through wwan\n{}", with.log);
    // Through the primary the host keeps its own address; through the backup it is masqueraded.
    assert_eq!(with.heard, (vec![ip(LAN_HOST6)], vec![ip(WWAN6)]), "{}", with.log);
    // The un-NATed entry is wanmon's to remove; the masqueraded ones through wwan the kernel
    // may reset first at the failback.
    let line = "conntrack: 1 LAN flow(s) through wan removed";
    assert!(with.log.contains(line), "no {line:?}\n{}", with.log);

    let without = break_wan_under_an_ipv6_flow(true, "off", false);
    println!("IPv6, masq6 on wwan, cleanup off: recovered {:?} (None: stuck)", without.failover);
    assert_eq!(
        without.failover, None,
        "an un-NATed entry leaves wwan with wan's prefix\n{}",
        without.log
    );
    assert!(without.new_flow_works, "{}", without.log);

    let no_masq6 = break_wan_under_an_ipv6_flow(false, "on", false);
    println!(
        "IPv6, no masq6: recovered {:?}, a new flow {}",
        no_masq6.failover,
        if no_masq6.new_flow_works { "works" } else { "gets nothing" }
    );
    assert!(no_masq6.failover.is_none() && !no_masq6.new_flow_works, "{}", no_masq6.log);
    assert!(no_masq6.heard.1.is_empty(), "the backup's ISP let wan's prefix through");
}
