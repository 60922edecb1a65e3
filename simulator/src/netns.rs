//! The `netns` engine: a scenario on real network namespaces with the real daemon.
//!
//! A router namespace holds one TUN device per link; each link leads through the seeded
//! impairment relay to its own ISP namespace, which holds the probe targets (documentation
//! addresses). The daemon binary under test (the host build, or the router's build under
//! qemu-user) runs in the router namespace. The timeline is played in real time, and the route
//! changes are taken from the kernel's own route events in the router namespace, the ground
//! truth, never from the daemon's report. Everything is torn down on every path out.

use crate::namespaces::{Namespaces, inside, point_to_point, sh};
use crate::record::{ConditionRecord, DecisionRecord, LinkSample, RouteChange, RunRecord, Sample};
use crate::relay;
use crate::scenario::{Carrier, Condition, Scenario, TARGETS};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wanmon::daemon::{control, netlink, plumbing};
use wanmon::json::{self, Value};

/// Set by SIGINT/SIGTERM: every run stops and tears down.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static RUNS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes Ctrl-C stop the runs cleanly instead of leaving namespaces behind.
pub fn catch_interrupts() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(signal, on_interrupt as *const () as libc::sighandler_t);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The daemon to run.
    pub binary: PathBuf,
    /// A program to run it through, such as `qemu-mipsel-static`.
    pub runner: Option<String>,
    pub sample_every_s: f64,
}

/// Everything a run created, removed on drop whatever happened.
struct Lab {
    namespaces: Namespaces,
    daemon: Option<Child>,
    runtime: Option<tokio::runtime::Runtime>,
    dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The namespace names a run uses all start with this; a test checks none is left behind.
pub const PREFIX: &str = "wsim";

/// Runs a scenario in real time; the record's route changes come from the kernel.
pub fn run(scenario: &Scenario, options: &Options) -> Result<RunRecord, String> {
    let run_id = format!(
        "{}{}-{}",
        PREFIX,
        std::process::id() % 100_000,
        RUNS.fetch_add(1, Ordering::SeqCst)
    );
    let router = format!("{run_id}-r");
    let mut lab = Lab {
        namespaces: Namespaces::default(),
        daemon: None,
        runtime: None,
        dir: std::env::temp_dir().join(format!("wanmon-{run_id}")),
    };
    std::fs::create_dir_all(&lab.dir)
        .map_err(|e| format!("cannot create {}: {e}", lab.dir.display()))?;
    // Removed in Lab's drop, after the daemon and the relay it held are gone.
    lab.namespaces.create(&router)?;
    for i in 0..scenario.links.len() {
        lab.namespaces.create(&format!("{run_id}-{i}"))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the relay: {e}"))?;
    let mut conditions = Vec::new();
    let mut carriers: Vec<RawFd> = Vec::new();
    for (i, link) in scenario.links.iter().enumerate() {
        let isp = lab.namespaces.0[i + 1].clone();
        let device = link.name.clone();
        let router_tun = inside(&router, move || relay::open_tun(&device))?
            .map_err(|e| format!("TUN {}: {e}", link.name))?;
        let isp_tun =
            inside(&isp, || relay::open_tun("isp"))?.map_err(|e| format!("TUN isp: {e}"))?;
        let (mine, peer) =
            (format!("198.51.100.{}", 4 * i + 2), format!("198.51.100.{}", 4 * i + 1));
        point_to_point(&router, &link.name, &mine, &peer)?;
        point_to_point(&isp, "isp", &peer, &mine)?;
        for target in &TARGETS[..link.targets] {
            sh(&["ip", "-n", &isp, "addr", "add", &format!("{target}/32"), "dev", "lo"])?;
        }
        // The system's own default routes, as netifd would set them.
        sh(&[
            "ip",
            "-n",
            &router,
            "route",
            "add",
            "default",
            "dev",
            &link.name,
            "metric",
            &(10 + i).to_string(),
        ])?;
        carriers.push(router_tun.as_raw_fd());
        let condition = Arc::new(Mutex::new(link.base.clone()));
        conditions.push(Arc::clone(&condition));
        let targets: Arc<Vec<IpAddr>> =
            Arc::new(TARGETS[..link.targets].iter().filter_map(|t| t.parse().ok()).collect());
        let seed = scenario.seed.wrapping_mul(1000).wrapping_add(2 * i as u64);
        runtime
            .block_on(async {
                let a = Arc::new(relay::async_tun(router_tun)?);
                let b = Arc::new(relay::async_tun(isp_tun)?);
                tokio::spawn(relay::relay(
                    a.clone(),
                    b.clone(),
                    condition.clone(),
                    targets.clone(),
                    true,
                    seed,
                ));
                tokio::spawn(relay::relay(b, a, condition, targets, false, seed + 1));
                Ok::<_, std::io::Error>(())
            })
            .map_err(|e| format!("cannot start the relay of {}: {e}", link.name))?;
    }
    lab.runtime = Some(runtime);

    // Link names to devices indexes, for reading the route events.
    let names: Vec<String> = scenario.links.iter().map(|l| l.name.clone()).collect();
    let indexes = inside(&router, move || -> Result<Vec<(u32, String)>, String> {
        let mut socket = netlink::Socket::open(0).map_err(|e| e.to_string())?;
        let mut found = Vec::new();
        socket
            .dump(netlink::DumpKind::Links, 0, |_, payload| {
                if let Some(link) = netlink::parse_link(payload).filter(|l| names.contains(&l.name))
                {
                    found.push((link.index, link.name));
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(found)
    })??;
    let events = inside(&router, || netlink::Socket::open(0x40))?
        .map_err(|e| format!("route events: {e}"))?;

    let config = lab.dir.join("config.json");
    std::fs::write(&config, &scenario.config_json)
        .map_err(|e| format!("cannot write the config: {e}"))?;
    let socket = lab.dir.join("wanmon.sock");
    let log = std::fs::File::create(lab.dir.join("daemon.log")).map_err(|e| e.to_string())?;
    let mut command = Command::new("ip");
    command.args(["netns", "exec", &router]);
    if let Some(runner) = &options.runner {
        command.arg(runner);
    }
    command
        .arg(&options.binary)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket);
    let start = Instant::now();
    lab.daemon = Some(
        command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", options.binary.display()))?,
    );

    // The ground truth: every change of wanmon's default route, timestamped as it happens.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || watch_routes(events, indexes, start, stop))
    };

    let mut samples = Vec::new();
    let mut phases = scenario.timeline.iter().peekable();
    let mut next_sample = 0.0;
    let end = scenario.duration_s;
    let result = loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            break Err("interrupted".to_string());
        }
        let now = start.elapsed().as_secs_f64();
        if now >= end {
            break Ok(());
        }
        while let Some(phase) = phases.next_if(|p| p.at_s <= now) {
            let mut condition =
                conditions[phase.link].lock().map_err(|_| "condition lock poisoned")?;
            let before = condition.carrier;
            phase.change.apply(&mut condition, &scenario.links[phase.link].base);
            if condition.carrier != before {
                relay::set_carrier(carriers[phase.link], condition.carrier == Carrier::Up)
                    .map_err(|e| {
                        format!(
                            "cannot set the carrier of {}: {e}",
                            scenario.links[phase.link].name
                        )
                    })?;
            }
        }
        if now >= next_sample {
            samples.push(sample(&socket, now, &conditions));
            next_sample += options.sample_every_s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::SeqCst);
    let route_changes = watcher.join().map_err(|_| "the route watcher panicked")?;
    result?;
    let decisions = decisions(&socket, start.elapsed());
    let record = RunRecord::judged(scenario, "netns", decisions, route_changes, samples, 1.0);
    if let Some(mut daemon) = lab.daemon.take() {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
        let _ = daemon.wait();
    }
    Ok(record)
}

/// Listens to the router namespace's route events until told to stop.
fn watch_routes(
    events: netlink::Socket,
    indexes: Vec<(u32, String)>,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<RouteChange> {
    let mut changes: Vec<RouteChange> = Vec::new();
    let mut current: Option<String> = None;
    let mut buffer = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let mut pollfd = libc::pollfd { fd: events.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pollfd, 1, 100) } <= 0 {
            continue;
        }
        let at = start.elapsed();
        let Ok(len) = events.receive(&mut buffer) else { continue };
        for message in netlink::messages(&buffer[..len]) {
            let Some(route) = netlink::parse_route(message.payload) else { continue };
            if route.table != plumbing::ROUTE_TABLE
                || route.dst_len != 0
                || message.kind != netlink::RTM_NEWROUTE
            {
                continue;
            }
            let to = indexes
                .iter()
                .find(|(index, _)| Some(*index) == route.oif)
                .map(|(_, name)| name.clone())
                .filter(|to| current.as_ref() != Some(to));
            if let Some(to) = to {
                changes.push(RouteChange {
                    t_ms: at.as_millis() as u64,
                    from: current.clone(),
                    to: to.clone(),
                });
                current = Some(to);
            }
        }
    }
    changes
}

/// The daemon's own view of each link, next to the condition the scenario set: for the timeline
/// and the picture only, never for verdicts.
fn sample(socket: &std::path::Path, t_s: f64, conditions: &[Arc<Mutex<Condition>>]) -> Sample {
    let status = control::call(socket, "status json").ok().and_then(|text| json::parse(&text).ok());
    let field = |value: &Value, key: &str| match value {
        Value::Object(members) => {
            members.iter().find(|(k, _)| k == key).map(|(_, v)| v.value.clone())
        }
        _ => None,
    };
    let number = |value: Option<Value>| match value {
        Some(Value::Number(text)) => text.parse::<f64>().ok(),
        _ => None,
    };
    let links: Vec<Value> = match status.as_ref().and_then(|s| field(&s.value, "links")) {
        Some(Value::Array(items)) => items.into_iter().map(|i| i.value).collect(),
        _ => Vec::new(),
    };
    let links = conditions
        .iter()
        .enumerate()
        .map(|(i, condition)| {
            let condition = condition
                .lock()
                .map(|c| ConditionRecord::from(&*c))
                .unwrap_or_else(|p| ConditionRecord::from(&*p.into_inner()));
            let link = links.get(i).cloned().unwrap_or(Value::Null);
            LinkSample {
                name: match field(&link, "name") {
                    Some(Value::String(name)) => name,
                    _ => String::new(),
                },
                condition,
                state: match field(&link, "state") {
                    Some(Value::String(state)) => state,
                    _ => "unknown".into(),
                },
                latency_ms: number(field(&link, "latency_ms")),
                jitter_ms: number(field(&link, "jitter_ms")),
                loss_percent: number(field(&link, "loss_percent")),
                score: number(field(&link, "score")),
                carries_route: field(&link, "current") == Some(Value::Bool(true)),
            }
        })
        .collect();
    Sample { t_s, links }
}

/// The daemon's recent decisions with their reasons, from its status: what it says it decided
/// (its history keeps the last 32), shown beside the route changes the kernel reported.
fn decisions(socket: &std::path::Path, now: Duration) -> Vec<DecisionRecord> {
    let Some(status) =
        control::call(socket, "status json").ok().and_then(|text| json::parse(&text).ok())
    else {
        return Vec::new();
    };
    let field = |value: &Value, key: &str| match value {
        Value::Object(members) => {
            members.iter().find(|(k, _)| k == key).map(|(_, v)| v.value.clone())
        }
        _ => None,
    };
    let text = |value: Option<Value>| match value {
        Some(Value::String(text)) => Some(text),
        _ => None,
    };
    let Some(Value::Array(items)) = field(&status.value, "decisions") else { return Vec::new() };
    let mut decisions: Vec<DecisionRecord> = items
        .iter()
        .filter_map(|item| {
            let age_s = match field(&item.value, "age_s") {
                Some(Value::Number(n)) => n.parse::<u64>().ok()?,
                _ => return None,
            };
            let from = text(field(&item.value, "from"));
            let to = text(field(&item.value, "to"))?;
            Some(DecisionRecord {
                t_ms: (now.as_millis() as u64).saturating_sub(age_s * 1000),
                changes_route: from.as_deref() != Some(to.as_str()),
                from,
                to,
                reason: text(field(&item.value, "reason")).unwrap_or_default(),
            })
        })
        .collect();
    decisions.reverse();
    decisions
}
