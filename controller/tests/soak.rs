//! The chaos soak: the real daemon in the namespace lab under a seeded random mix of outages,
//! carrier pulls, deleted routes and rules, good and bad reloads, forced links, hostile web and
//! control clients, and `kill -9` with a restart. Every 100 ms the kernel's own tables are
//! checked against what is true of the links: a default route exists while a link works, and it
//! never stays on a broken link longer than the failover budget while another works. At the end
//! SIGTERM must leave nothing of wanmon behind, and the daemon's RSS and open descriptors must be
//! flat. `cargo xtask soak --minutes N` runs it; CI runs a few minutes of it.
//!
//! Needs root: `#[ignore]`, run by `cargo xtask soak` (and so CI) as root.

mod lab;

use lab::*;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use wanmon::protocol;

/// How long the route may stay on a broken link while another works: detection (about 1 s for
/// silence, 0.1 s for carrier) with room for a loaded 2-core machine.
const FAILOVER_BUDGET: Duration = Duration::from_secs(5);
/// After a start, the daemon may take this long to make its first choice.
const FIRST_CHOICE: Duration = Duration::from_secs(4);
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// A small seeded generator (xorshift*): the same seed, the same run.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What is true of one link, as the lab made it.
#[derive(Clone, Copy)]
struct Truth {
    dropped: bool,
    pulled: bool,
    /// Since when it has been broken, or working.
    since: Instant,
}

impl Truth {
    fn works(&self) -> bool {
        !self.dropped && !self.pulled
    }
}

const LINKS: [&str; 2] = ["wan", "wwan"];

struct Soak {
    lab: Lab,
    random: Random,
    truth: [Truth; 2],
    started: Instant,
    /// Held open by hostile clients until the next action.
    held_web: Vec<std::net::TcpStream>,
    held_control: Vec<UnixStream>,
    last_kill: Instant,
    checks: u64,
    actions: Vec<(&'static str, u32)>,
    /// The newest actions with when they were taken and what was true after them, for a
    /// failure's report.
    trace: std::collections::VecDeque<String>,
    /// Since when wanmon's table has had no default route.
    route_missing_since: Option<Instant>,
    /// Whether the route may be missing at all: only once someone else deleted it or no link
    /// worked since it was last seen. A reload, a rewrite or a restart replaces it in place.
    route_may_vanish: bool,
}

#[test]
#[ignore = "needs root: network namespaces; run by `cargo xtask soak`"]
fn chaos_soak() {
    let seconds: u64 =
        std::env::var("WANMON_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 =
        std::env::var("WANMON_SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    println!("soak: {seconds} s, seed {seed} (WANMON_SOAK_SEED={seed} repeats it)");
    let mut lab = Lab::new("soak");
    let config = soak_config(&lab, 20);
    lab.start(&config);
    let now = Instant::now();
    let working = Truth { dropped: false, pulled: false, since: now };
    let mut soak = Soak {
        lab,
        random: Random(seed | 1),
        truth: [working; 2],
        started: now,
        held_web: Vec::new(),
        held_control: Vec::new(),
        last_kill: now,
        checks: 0,
        actions: Vec::new(),
        trace: std::collections::VecDeque::new(),
        route_missing_since: None,
        route_may_vanish: true,
    };
    let (first_rss, first_fds) = soak.settle_and_measure();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut next_action = Instant::now();
    while Instant::now() < end {
        if Instant::now() >= next_action {
            let quiet_end = end.saturating_duration_since(Instant::now()) < Duration::from_secs(30);
            soak.act(quiet_end);
            next_action = Instant::now() + Duration::from_millis(300 + soak.random.below(2_700));
        }
        soak.check();
        std::thread::sleep(CHECK_EVERY);
    }
    soak.finish(first_rss, first_fds);
}

fn soak_config(lab: &Lab, hysteresis: u32) -> std::path::PathBuf {
    lab.config(&format!(
        r#""forced_link_dies": "fallback", "failback_hold_ms": 5000, "hysteresis": {hysteresis}, "#
    ))
}

impl Soak {
    /// Every link working, the daemon settled: its RSS and descriptors now.
    fn settle_and_measure(&mut self) -> (u64, usize) {
        self.restore_all();
        std::thread::sleep(Duration::from_secs(8));
        let measured = (self.lab.rss_kib().unwrap_or(0), self.open_fds());
        println!("daemon after settling: RSS {} KiB, {} open descriptors", measured.0, measured.1);
        measured
    }

    fn open_fds(&self) -> usize {
        let pid = self.lab.daemon.as_ref().map_or(0, std::process::Child::id);
        std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
    }

    fn act(&mut self, quiet_end: bool) {
        self.held_web.clear();
        self.held_control.clear();
        let action = match self.random.below(14) {
            0..=2 => self.toggle_outage(),
            3..=4 => self.toggle_carrier(),
            5 => self.delete_route(),
            6 => self.delete_rule(),
            7 => self.reload(true),
            8 => self.reload(false),
            9 => self.force_or_auto(),
            10 => self.hostile_web(),
            11 => self.hostile_control(),
            12 if !quiet_end && self.last_kill.elapsed() > Duration::from_secs(60) => {
                self.kill_and_restart()
            }
            _ => self.restore_all(),
        };
        match self.actions.iter_mut().find(|(name, _)| *name == action) {
            Some((_, count)) => *count += 1,
            None => self.actions.push((action, 1)),
        }
        let state = |t: &Truth| if t.works() { "works" } else { "broken" };
        let line = format!(
            "{:>7.1} s  {action}: wan {}, wwan {}",
            self.started.elapsed().as_secs_f64(),
            state(&self.truth[0]),
            state(&self.truth[1])
        );
        if self.trace.len() == 40 {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn isp(&self, link: usize) -> String {
        if link == 0 { self.lab.isp_a.clone() } else { self.lab.isp_b.clone() }
    }

    fn toggle_outage(&mut self) -> &'static str {
        let link = self.random.below(2) as usize;
        let truth = &mut self.truth[link];
        let was_working = truth.works();
        truth.dropped = !truth.dropped;
        self.lab.drop_all(&self.isp(link), self.truth[link].dropped);
        self.mark(link, was_working);
        "outage on/off"
    }

    fn toggle_carrier(&mut self) -> &'static str {
        let link = self.random.below(2) as usize;
        let was_working = self.truth[link].works();
        self.truth[link].pulled = !self.truth[link].pulled;
        let state = if self.truth[link].pulled { "down" } else { "up" };
        sh(&["ip", "-n", &self.isp(link), "link", "set", "isp", state]);
        self.mark(link, was_working);
        "carrier pulled/back"
    }

    /// Notes when a link's truth flipped between working and broken.
    fn mark(&mut self, link: usize, was_working: bool) {
        if self.truth[link].works() != was_working {
            self.truth[link].since = Instant::now();
        }
    }

    fn restore_all(&mut self) -> &'static str {
        for link in 0..2 {
            let was_working = self.truth[link].works();
            if self.truth[link].dropped {
                self.truth[link].dropped = false;
                self.lab.drop_all(&self.isp(link), false);
            }
            if self.truth[link].pulled {
                self.truth[link].pulled = false;
                sh(&["ip", "-n", &self.isp(link), "link", "set", "isp", "up"]);
            }
            self.mark(link, was_working);
        }
        "everything restored"
    }

    fn delete_route(&mut self) -> &'static str {
        let table = protocol::ROUTE_TABLE.to_string();
        let _ = std::process::Command::new("ip")
            .args(["-n", &self.lab.router, "route", "del", "default", "table", &table])
            .output();
        self.route_may_vanish = true;
        "route deleted"
    }

    fn delete_rule(&mut self) -> &'static str {
        let priority =
            [protocol::PRIORITY_ROUTE, protocol::PRIORITY_SUPPRESS][self.random.below(2) as usize];
        let _ = std::process::Command::new("ip")
            .args(["-n", &self.lab.router, "rule", "del", "priority", &priority.to_string()])
            .output();
        "rule deleted"
    }

    fn reload(&mut self, good: bool) -> &'static str {
        if good {
            soak_config(&self.lab, 15 + self.random.below(10) as u32);
            self.lab.signal("-HUP");
            "reload (good)"
        } else {
            let path = self.lab.dir.join("config.json");
            std::fs::write(&path, b"{\"links\": [{\"name\": \"wan\", \"device\": 7}]")
                .expect("write");
            self.lab.signal("-HUP");
            std::thread::sleep(Duration::from_millis(50));
            soak_config(&self.lab, 20);
            "reload (bad, refused)"
        }
    }

    fn force_or_auto(&mut self) -> &'static str {
        let link = self.random.below(3) as usize;
        let steady = |t: &Truth| t.works() && t.since.elapsed() > Duration::from_secs(3);
        match LINKS.get(link) {
            Some(name) if steady(&self.truth[link]) => {
                let _ = self.lab.cli(&["force", name]);
                "force"
            }
            _ => {
                let _ = self.lab.cli(&["auto"]);
                "auto"
            }
        }
    }

    fn hostile_web(&mut self) -> &'static str {
        let held: Vec<std::net::TcpStream> = self.lab.in_router(|| {
            let mut held = Vec::new();
            for request in [
                &b"GET / HTTP/1.1\r\n"[..],
                b"\x16\x03\x01\x02\x00\x01\x00",
                b"GET /api/status HTTP/1.1\r\nHost: rebind.example\r\n\r\n",
                b"POST /api/mode HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong-token-0000\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"mode\":\"auto\"}",
                b"POST /api/mode HTTP/1.1\r\nContent-Length: +5\r\nContent-Length: 5\r\n\r\nabcde",
            ] {
                for _ in 0..3 {
                    if let Ok(mut stream) = std::net::TcpStream::connect("127.0.0.1:8080") {
                        let _ = stream.write_all(request);
                        held.push(stream);
                    }
                }
            }
            held
        });
        self.held_web = held;
        "hostile web clients"
    }

    fn hostile_control(&mut self) -> &'static str {
        for line in [&b""[..], b"status", b"\xff\xfe\n", b"force ../../etc\n"] {
            if let Ok(mut stream) = UnixStream::connect(self.lab.socket()) {
                let _ = stream.write_all(line);
                self.held_control.push(stream);
            }
        }
        "hostile control clients"
    }

    fn kill_and_restart(&mut self) -> &'static str {
        self.lab.signal("-KILL");
        let _ = self.lab.wait_exit();
        self.last_kill = Instant::now();
        self.started = Instant::now();
        let config = self.lab.dir.join("config.json");
        self.lab.spawn(&config, true);
        "kill -9 and restart"
    }

    /// The invariants, from the kernel's tables and the lab's truth.
    fn check(&mut self) {
        self.checks += 1;
        let exited = self.lab.daemon.as_mut().and_then(|d| d.try_wait().ok().flatten());
        assert!(exited.is_none(), "the daemon exited on its own ({exited:?})\n{}", self.tail());
        let now = Instant::now();
        if now.duration_since(self.started) < FIRST_CHOICE {
            return;
        }
        let device = self.lab.table_device(protocol::ROUTE_TABLE);
        let working: Vec<usize> = (0..2).filter(|l| self.truth[*l].works()).collect();
        if working.is_empty() {
            self.route_may_vanish = true;
            return;
        }
        let Some(device) = device else {
            assert!(
                self.route_may_vanish,
                "wanmon's default route went missing while {:?} works and nothing removed it\n{}",
                working.iter().map(|l| LINKS[*l]).collect::<Vec<_>>(),
                self.tail()
            );
            let missing = *self.route_missing_since.get_or_insert(now);
            let since = working.iter().map(|l| self.truth[*l].since).min().unwrap_or(now);
            assert!(
                now.duration_since(since.max(self.started).max(missing)) < FAILOVER_BUDGET,
                "no default route of wanmon's while {:?} works\n{}",
                working.iter().map(|l| LINKS[*l]).collect::<Vec<_>>(),
                self.tail()
            );
            return;
        };
        self.route_missing_since = None;
        self.route_may_vanish = false;
        let Some(on) = LINKS.iter().position(|l| *l == device) else { return };
        if self.truth[on].works() {
            return;
        }
        // On a broken link while another works: allowed only within the budget, counted from
        // the latest of its breaking, the other's return and the daemon's start.
        let other = 1 - on;
        let from = self.truth[on].since.max(self.truth[other].since).max(self.started);
        assert!(
            now.duration_since(from) < FAILOVER_BUDGET,
            "the route stayed on broken {device} for {:?} while {} worked\n{}",
            now.duration_since(from),
            LINKS[other],
            self.tail()
        );
    }

    /// What a failure reports: the newest actions (time since the daemon's start, what was true
    /// after each) and the daemon's log since the soak began.
    fn tail(&self) -> String {
        let trace: Vec<&str> = self.trace.iter().map(String::as_str).collect();
        let log = self.lab.log();
        let lines: Vec<&str> = log.lines().rev().take(200).collect();
        let log: Vec<&str> = lines.into_iter().rev().collect();
        format!("newest actions:\n{}\ndaemon log:\n{}", trace.join("\n"), log.join("\n"))
    }

    fn finish(mut self, first_rss: u64, first_fds: usize) {
        self.held_web.clear();
        self.held_control.clear();
        let (last_rss, last_fds) = self.settle_and_measure();
        println!("actions: {:?}", self.actions);
        println!(
            "invariants checked {} times (every {} ms), none broken",
            self.checks,
            CHECK_EVERY.as_millis()
        );
        println!("RSS {first_rss} -> {last_rss} KiB, open descriptors {first_fds} -> {last_fds}");
        assert!(last_fds <= first_fds + 2, "descriptors grew: {first_fds} -> {last_fds}");
        assert!(
            last_rss <= first_rss + first_rss / 4 + 256,
            "RSS grew: {first_rss} -> {last_rss} KiB"
        );
        self.lab.signal("-TERM");
        assert!(self.lab.wait_exit().success(), "{}", self.tail());
        assert_eq!(self.lab.our_rules(), 0, "rules left after SIGTERM");
        assert_eq!(self.lab.routes().0, 0, "routes left after SIGTERM");
        println!("after SIGTERM: no rule, no route of wanmon's");
    }
}
