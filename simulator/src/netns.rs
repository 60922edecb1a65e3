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
use tokio::runtime::Runtime;
use wanmon::protocol::{self, ROUTE_TABLE, Request, Status};

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
    /// With `--impair auto`: a scenario netem cannot play (per-target latency, spikes, a delay
    /// tail) runs on the relay instead. Otherwise such a scenario is refused.
    pub relay_where_netem_cannot: bool,
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
    let impairment = impairment_for(scenario, options)?;
    let options = &Options { impairment, ..options.clone() };
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
    let mut links = build_links(&mut lab, &runtime, &router, scenario, options, &run_id)?;

    // The ground truth: every change of wanmon's default route, timestamped as it arrives.
    let mut indexes = Vec::new();
    for link in &scenario.links {
        indexes.push((runtime.block_on(router.index(&link.name))?, link.name.clone()));
    }
    let events = Netlink::route_events(&router_name, runtime.handle())?;
    let route_changes = Arc::new(Mutex::new(Vec::new()));
    let socket = lab.dir.join("wanmon.sock");
    let start = Instant::now();
    runtime.spawn(record_route_changes(events, indexes, start, Arc::clone(&route_changes)));
    start_daemon(&mut lab, scenario, options, &router_name, &socket)?;
    let played = play(&mut lab, &runtime, &mut links, scenario, options, &socket, start);
    lab.runtime = Some(runtime);
    let samples = played?;
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

/// What impairs this scenario's links: netem only where it can play every condition.
fn impairment_for(scenario: &Scenario, options: &Options) -> Result<Impairment, String> {
    match (options.impairment, scenario.netem_refuses()) {
        (Impairment::Netem, Some(_)) if options.relay_where_netem_cannot => Ok(Impairment::Relay),
        (Impairment::Netem, Some(why)) => Err(format!(
            "{}: netem cannot do {why}; use --impair relay or auto",
            scenario.file.display()
        )),
        (impairment, _) => Ok(impairment),
    }
}

/// Every link of the scenario, impaired, each leading to its own ISP namespace; the system's
/// own default routes through them, as netifd would set them.
fn build_links(
    lab: &mut Lab,
    runtime: &Runtime,
    router: &Netlink,
    scenario: &Scenario,
    options: &Options,
    run_id: &str,
) -> Result<Vec<ImpairedLink>, String> {
    let mut links = Vec::new();
    for (i, link) in scenario.links.iter().enumerate() {
        let isp = lab.namespaces.create(&format!("{run_id}-{i}"), runtime)?;
        let targets: Vec<Ipv4Addr> =
            TARGETS[..link.targets].iter().filter_map(|t| t.parse().ok()).collect();
        let plan = LinkPlan {
            device: &link.name,
            index: i,
            base: &link.base,
            targets: &targets,
            seed: scenario.seed.wrapping_mul(1000).wrapping_add(2 * i as u64),
        };
        links.push(ImpairedLink::build(runtime, options.impairment, router, &isp, plan)?);
        runtime.block_on(router.add_default_route(&link.name, 10 + i as u32))?;
    }
    Ok(links)
}

/// The daemon under test in the router namespace, with the scenario's config.
fn start_daemon(
    lab: &mut Lab,
    scenario: &Scenario,
    options: &Options,
    router_name: &str,
    socket: &std::path::Path,
) -> Result<(), String> {
    let config = lab.dir.join("config.json");
    std::fs::write(&config, &scenario.config_json)
        .map_err(|e| format!("cannot write the config: {e}"))?;
    let log = std::fs::File::create(lab.dir.join("daemon.log")).map_err(|e| e.to_string())?;
    let mut command = Command::new("ip");
    command.args(["netns", "exec", router_name]);
    if let Some(runner) = &options.runner {
        command.arg(runner);
    }
    command
        .arg(&options.binary)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(socket);
    let daemon = command
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", options.binary.display()))?;
    lab.daemon = Some(daemon);
    Ok(())
}

/// Plays the timeline in real time, sampling the daemon's view, until the scenario's end, an
/// interrupt, or the daemon's death.
fn play(
    lab: &mut Lab,
    runtime: &Runtime,
    links: &mut [ImpairedLink],
    scenario: &Scenario,
    options: &Options,
    socket: &std::path::Path,
    start: Instant,
) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut phases = scenario.timeline.iter().peekable();
    let mut next_sample = 0.0;
    loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err("interrupted".to_string());
        }
        let now = start.elapsed().as_secs_f64();
        if now >= scenario.duration_s {
            return Ok(samples);
        }
        if let Some(Ok(Some(status))) = lab.daemon.as_mut().map(Child::try_wait) {
            return Err(format!(
                "the daemon {} exited at {now:.1} s ({status}); {}",
                options.binary.display(),
                last_words(&lab.dir.join("daemon.log"))
            ));
        }
        while let Some(phase) = phases.next_if(|p| p.at_s <= now) {
            let link = &mut links[phase.link];
            let mut condition = link.condition().clone();
            phase.change.apply(&mut condition, &scenario.links[phase.link].base);
            link.apply(runtime, &condition)?;
        }
        if now >= next_sample {
            samples.push(sample(socket, now, links));
            next_sample += options.sample_every_s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The end of a dead daemon's log, for the error that says it died.
fn last_words(log: &std::path::Path) -> String {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    if tail.is_empty() {
        return "it wrote nothing".to_string();
    }
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("its last words:\n{}", tail.join("\n"))
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
        if table != ROUTE_TABLE || route.header.destination_prefix_length != 0 {
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

/// The daemon's status, if it answers.
fn status(socket: &std::path::Path) -> Option<Status> {
    let text = protocol::call(socket, &Request::Status { json: true }).ok()?;
    Status::from_json(&text).ok()
}

fn thousandths(value: i64) -> f64 {
    value as f64 / 1000.0
}

/// The daemon's own view of each link, next to the condition the scenario set: for the timeline
/// and the picture only, never for verdicts.
fn sample(socket: &std::path::Path, t_s: f64, impaired: &[ImpairedLink]) -> Sample {
    let links = status(socket).map(|s| s.links).unwrap_or_default();
    let links = impaired
        .iter()
        .enumerate()
        .map(|(i, impaired)| {
            let condition = ConditionRecord::from(impaired.condition());
            let link = links.get(i);
            let figures = link.and_then(|l| l.figures);
            LinkSample {
                name: link.map(|l| l.name.clone()).unwrap_or_default(),
                condition,
                state: link.map_or_else(|| "unknown".into(), |l| l.state.clone()),
                latency_ms: figures.map(|f| thousandths(f.latency)),
                jitter_ms: figures.map(|f| thousandths(f.jitter)),
                loss_percent: figures.map(|f| thousandths(f.loss)),
                score: link.and_then(|l| l.score).map(thousandths),
                carries_route: link.is_some_and(|l| l.current),
            }
        })
        .collect();
    Sample { t_s, links }
}

/// The daemon's recent decisions with their reasons, from its status: what it says it decided
/// (its history keeps the last 32), shown beside the route changes the kernel reported.
fn decisions(socket: &std::path::Path, now: Duration) -> Vec<DecisionRecord> {
    let Some(status) = status(socket) else { return Vec::new() };
    let mut decisions: Vec<DecisionRecord> = status
        .decisions
        .into_iter()
        .map(|d| DecisionRecord {
            t_ms: (now.as_millis() as u64).saturating_sub(d.age_s * 1000),
            changes_route: d.from.as_deref() != Some(d.to.as_str()),
            from: d.from,
            to: d.to,
            reason: d.reason,
        })
        .collect();
    decisions.reverse();
    decisions
}
