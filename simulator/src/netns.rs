//! The `netns` engine: a scenario on real network namespaces with the real daemon.
//!
//! A router namespace holds one device per link; each link leads through the impairment (netem
//! on a veth pair, or the seeded relay between TUN devices: `impair.rs`) to its own ISP
//! namespace, which holds the probe targets (documentation addresses). Links, addresses and
//! routes are set up, and route events read, over rtnetlink. The daemon binary under test (the host build, or the router's build under
//! qemu-user) runs in the router namespace. The timeline is played in real time, and the route
//! changes are taken from the kernel's own route events in the router namespace, the ground
//! truth, never from the daemon's report. Everything is torn down on every path out.

use crate::impair::{ImpairedLink, Impairment, LinkPlan};
use crate::namespaces::{Namespaces, Netlink, RouteEvents};
use crate::record::{ConditionRecord, DecisionRecord, LinkSample, RouteChange, RunRecord, Sample};
use crate::scenario::{Scenario, TARGETS};
use futures_util::StreamExt;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::route::RouteAttribute;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wanmon::daemon::{control, plumbing};
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
    /// What impairs the links: netem or the relay (see `Impairment::choose`).
    pub impairment: Impairment,
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
    let router_name = format!("{run_id}-r");
    let mut lab = Lab {
        namespaces: Namespaces::default(),
        daemon: None,
        runtime: None,
        dir: std::env::temp_dir().join(format!("wanmon-{run_id}")),
    };
    std::fs::create_dir_all(&lab.dir)
        .map_err(|e| format!("cannot create {}: {e}", lab.dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the relay: {e}"))?;
    // Removed in Lab's drop, after the daemon and the relay it held are gone.
    let router = lab.namespaces.create(&router_name, &runtime)?;
    let mut links = Vec::new();
    for (i, link) in scenario.links.iter().enumerate() {
        let isp = lab.namespaces.create(&format!("{run_id}-{i}"), &runtime)?;
        let targets: Vec<Ipv4Addr> =
            TARGETS[..link.targets].iter().filter_map(|t| t.parse().ok()).collect();
        let plan = LinkPlan {
            device: &link.name,
            index: i,
            base: &link.base,
            targets: &targets,
            seed: scenario.seed.wrapping_mul(1000).wrapping_add(2 * i as u64),
        };
        links.push(ImpairedLink::build(&runtime, options.impairment, &router, &isp, plan)?);
        // The system's own default routes, as netifd would set them.
        runtime.block_on(router.add_default_route(&link.name, 10 + i as u32))?;
    }

    // The ground truth: every change of wanmon's default route, timestamped as it arrives.
    let mut indexes = Vec::new();
    for link in &scenario.links {
        indexes.push((runtime.block_on(router.index(&link.name))?, link.name.clone()));
    }
    let events = Netlink::route_events(&router_name, runtime.handle())?;
    let route_changes = Arc::new(Mutex::new(Vec::new()));

    let config = lab.dir.join("config.json");
    std::fs::write(&config, &scenario.config_json)
        .map_err(|e| format!("cannot write the config: {e}"))?;
    let socket = lab.dir.join("wanmon.sock");
    let log = std::fs::File::create(lab.dir.join("daemon.log")).map_err(|e| e.to_string())?;
    let mut command = Command::new("ip");
    command.args(["netns", "exec", &router_name]);
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
    runtime.spawn(record_route_changes(events, indexes, start, Arc::clone(&route_changes)));
    lab.daemon = Some(
        command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", options.binary.display()))?,
    );

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
        if let Some(Ok(Some(status))) = lab.daemon.as_mut().map(Child::try_wait) {
            let log = std::fs::read_to_string(lab.dir.join("daemon.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let said = if tail.is_empty() {
                "it wrote nothing".to_string()
            } else {
                format!("its last words:\n{}", tail.join("\n"))
            };
            break Err(format!(
                "the daemon {} exited at {now:.1} s ({status}); {said}",
                options.binary.display()
            ));
        }
        let mut changed = Ok(());
        while let Some(phase) = phases.next_if(|p| p.at_s <= now) {
            let link = &mut links[phase.link];
            let mut condition = link.condition().clone();
            phase.change.apply(&mut condition, &scenario.links[phase.link].base);
            changed = changed.and(link.apply(&runtime, &condition));
        }
        if changed.is_err() {
            break changed;
        }
        if now >= next_sample {
            samples.push(sample(&socket, now, &links));
            next_sample += options.sample_every_s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    lab.runtime = Some(runtime);
    result?;
    let route_changes = route_changes.lock().map_err(|_| "the route watcher panicked")?.clone();
    let decisions = decisions(&socket, start.elapsed());
    let mut record = RunRecord::judged(scenario, "netns", decisions, route_changes, samples, 1.0);
    record.impairment = Some(options.impairment.name().to_string());
    if let Some(mut daemon) = lab.daemon.take() {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
        let _ = daemon.wait();
    }
    Ok(record)
}

/// Records every change of wanmon's default route (its table, prefix length 0) as the router
/// namespace's route events report it, until the runtime shuts down.
async fn record_route_changes(
    mut events: RouteEvents,
    indexes: Vec<(u32, String)>,
    start: Instant,
    changes: Arc<Mutex<Vec<RouteChange>>>,
) {
    while let Some((message, _)) = events.next().await {
        let at = start.elapsed();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) = message.payload
        else {
            continue;
        };
        let table = route
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(table) => Some(*table),
                _ => None,
            })
            .unwrap_or(u32::from(route.header.table));
        let oif = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(index) => Some(*index),
            _ => None,
        });
        if table != plumbing::ROUTE_TABLE || route.header.destination_prefix_length != 0 {
            continue;
        }
        let Some((_, to)) = indexes.iter().find(|(index, _)| Some(*index) == oif) else {
            continue;
        };
        let Ok(mut changes) = changes.lock() else { return };
        let current = changes.last().map(|c: &RouteChange| c.to.clone());
        if current.as_ref() != Some(to) {
            changes.push(RouteChange {
                t_ms: at.as_millis() as u64,
                from: current,
                to: to.clone(),
            });
        }
    }
}

/// The daemon's own view of each link, next to the condition the scenario set: for the timeline
/// and the picture only, never for verdicts.
fn sample(socket: &std::path::Path, t_s: f64, impaired: &[ImpairedLink]) -> Sample {
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
    let links = impaired
        .iter()
        .enumerate()
        .map(|(i, impaired)| {
            let condition = ConditionRecord::from(impaired.condition());
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
