//! `wanmon run`: the daemon. One poll loop serves the probe sockets, the netlink events, the
//! control socket, the web server and the signals; the decision core decides, this file acts.

use super::control::{self, Request as ControlRequest};
use super::http::{self, Action};
use super::icmp::{self, ProbeSocket, Session};
use super::netlink;
use super::plumbing::{self, LinkPlan, Plumbing};
use super::status::{self, Facts};
use super::system::{Hooks, Level, Log, Signals};
use crate::core::config::Listen;
use crate::core::{Config, Decision, Engine, Instant, LinkEvent, LinkName, Mode};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

const PAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/page.html.gz"));
/// Everything is written again this often, in case someone removed a rule.
const FULL_RECONCILE: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Options {
    pub config: PathBuf,
    pub socket: PathBuf,
}

/// A web client: what it sent so far, what it is being sent, and its deadline.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    received: Vec<u8>,
    reply: Vec<u8>,
    sent: usize,
    deadline: std::time::Instant,
}

#[derive(Debug)]
struct Daemon {
    options: Options,
    config: Config,
    engine: Engine,
    started: std::time::Instant,
    plans: Vec<LinkPlan>,
    usable: Vec<bool>,
    /// Per link: the probe socket for IPv4 and IPv6, and the device index they were opened on.
    sockets: Vec<([Option<ProbeSocket>; 2], Option<u32>)>,
    plumbing: Plumbing,
    events: netlink::Socket,
    session: Session,
    signals: Signals,
    log: Log,
    hooks: Hooks,
    control: UnixListener,
    web: Option<TcpListener>,
    connections: Vec<Connection>,
    reconcile_now: bool,
    last_full_reconcile: std::time::Instant,
    stopping: bool,
    /// The web page could not be served yet, and that has been logged.
    web_warned: bool,
}

/// Reads and validates the config; every error with file, line and key.
pub fn load_config(path: &std::path::Path) -> Result<Config, Vec<String>> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![format!("{shown}: cannot read: {e}")])?;
    Config::from_json(&text)
        .map_err(|errors| errors.iter().map(|e| format!("{shown}:{e}")).collect())
}

fn plans_of(config: &Config) -> Vec<LinkPlan> {
    config
        .links
        .iter()
        .map(|link| {
            let mut probe_families: Vec<u8> = link.targets.iter().map(netlink::family_of).collect();
            probe_families.sort_unstable();
            probe_families.dedup();
            LinkPlan {
                device: link.device.clone(),
                configured_gateway: link.gateway,
                probe_families,
                state: plumbing::DeviceState::default(),
            }
        })
        .collect()
}

/// Runs until SIGTERM or SIGINT; then removes every route and rule it wrote.
pub fn run(options: Options) -> Result<(), String> {
    let config = load_config(&options.config).map_err(|errors| {
        format!("{}\nconfig refused ({} error(s)), not starting", errors.join("\n"), errors.len())
    })?;
    let log = Log::open();
    let signals = Signals::install().map_err(|e| format!("cannot catch signals: {e}"))?;
    let control = control::listen(&options.socket)?;
    let mut plumbing = Plumbing::open().map_err(|e| format!("cannot open netlink: {e}"))?;
    for problem in plumbing.remove_all() {
        log.line(Level::Warning, &format!("cleaning up an earlier run: {problem}"));
    }
    let events = netlink::Socket::open(netlink::EVENT_GROUPS)
        .map_err(|e| format!("cannot listen to netlink: {e}"))?;
    let started = std::time::Instant::now();
    let pid = std::process::id();
    let nonce = started.elapsed().subsec_nanos()
        ^ pid.rotate_left(16)
        ^ (std::ptr::addr_of!(log) as usize as u32);
    let mut daemon = Daemon {
        engine: Engine::new(&config, Instant::ZERO),
        plans: plans_of(&config),
        usable: vec![true; config.links.len()],
        sockets: Vec::new(),
        config,
        options,
        started,
        plumbing,
        events,
        session: Session { identifier: (pid & 0xffff) as u16, nonce },
        signals,
        log,
        hooks: Hooks::default(),
        control,
        web: None,
        connections: Vec::new(),
        reconcile_now: true,
        last_full_reconcile: started,
        stopping: false,
        web_warned: false,
    };
    daemon.start();
    let result = daemon.serve();
    daemon.stop();
    result
}

impl Daemon {
    fn now(&self) -> Instant {
        Instant::from_micros(self.started.elapsed().as_micros() as u64)
    }

    fn start(&mut self) {
        let names: Vec<&str> = self.config.links.iter().map(|l| l.name.as_str()).collect();
        self.log
            .line(Level::Notice, &format!("started, {} links: {}", names.len(), names.join(", ")));
        self.observe();
        self.open_web();
    }

    /// Reads the kernel's view of every link, opens missing probe sockets, tells the engine
    /// which links are unusable.
    fn observe(&mut self) {
        if let Err(e) = self.plumbing.observe(&mut self.plans) {
            self.log.line(Level::Error, &format!("cannot read the links from the kernel: {e}"));
        }
        self.sockets.resize_with(self.plans.len(), || ([None, None], None));
        self.sockets.truncate(self.plans.len());
        self.usable.resize(self.plans.len(), true);
        self.update_links();
    }

    /// Follows devices that appeared, vanished, lost carrier or their address.
    fn update_links(&mut self) {
        let now = self.now();
        for index in 0..self.plans.len() {
            let plan = &self.plans[index];
            let device_index = plan.state.index;
            if self.sockets[index].1 != device_index {
                self.sockets[index] = ([None, None], device_index);
                if device_index.is_some() {
                    self.open_sockets(index);
                }
            }
            let usable = self.plans[index].state.usable();
            if usable != self.usable[index] {
                self.usable[index] = usable;
                let event = if usable { LinkEvent::Up } else { LinkEvent::Down };
                let name = self.config.links[index].name;
                match self.plans[index].problem() {
                    Some(problem) if !usable => {
                        self.log.line(Level::Notice, &format!("link {name} down: {problem}"))
                    }
                    _ => self.log.line(Level::Notice, &format!("link {name} up")),
                }
                let decision = self.engine.on_link_event(now, index, event);
                self.reconcile_now = true;
                self.decided(decision);
            }
        }
    }

    fn open_sockets(&mut self, index: usize) {
        let plan = &self.plans[index];
        for (slot, family) in plumbing::FAMILIES.iter().enumerate() {
            if !plan.probe_families.contains(family) {
                continue;
            }
            match ProbeSocket::open(slot == 1, &plan.device, plumbing::link_mark(index)) {
                Ok(socket) => self.sockets[index].0[slot] = Some(socket),
                Err(e) => self.log.line(
                    Level::Error,
                    &format!("cannot open a probe socket on {}: {e}", plan.device),
                ),
            }
        }
    }

    fn open_web(&mut self) {
        self.web = None;
        let address = match &self.config.web.listen {
            None => return,
            Some(Listen::Address(address)) => *address,
            Some(Listen::Device { device, port }) => match self.plumbing.addresses_of(device) {
                Ok(addresses) if !addresses.is_empty() => SocketAddr::new(addresses[0], *port),
                _ => {
                    if !self.web_warned {
                        self.log.line(
                            Level::Warning,
                            &format!("web page not served yet: {device} has no address"),
                        );
                        self.web_warned = true;
                    }
                    return;
                }
            },
        };
        match TcpListener::bind(address).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
            Ok(listener) => {
                self.log.line(Level::Info, &format!("web page on http://{address}/"));
                self.web = Some(listener);
            }
            Err(e) => {
                self.log.line(Level::Error, &format!("cannot serve the web page on {address}: {e}"))
            }
        }
    }

    fn current_index(&self) -> Option<usize> {
        self.engine.current().and_then(|link| self.engine.link_index(link.name().as_str()))
    }

    fn reconcile(&mut self) {
        self.reconcile_now = false;
        self.last_full_reconcile = std::time::Instant::now();
        let chosen = self.current_index();
        for problem in self.plumbing.apply(&self.plans, chosen) {
            self.log.line(Level::Warning, &problem);
        }
        if self.web.is_none() && self.config.web.listen.is_some() {
            self.open_web();
        }
    }

    /// Acts on a decision: logs it, moves the route, runs the hook.
    fn decided(&mut self, decision: Option<Decision>) {
        let Some(decision) = decision else { return };
        self.log.line(Level::Notice, &decision.to_string());
        if !decision.changes_route() {
            return;
        }
        let chosen = self.current_index();
        for problem in self.plumbing.set_default(&self.plans, chosen) {
            self.log.line(Level::Error, &problem);
        }
        if let Some(argv) = &self.config.hook {
            let from = decision.from.map(|f| f.to_string()).unwrap_or_default();
            self.hooks.start(argv, &from, decision.to.as_str(), &decision.to_string(), &self.log);
        }
    }

    fn send_probes(&mut self, now: Instant) {
        while let Some(probe) = self.engine.poll_probe(now) {
            let slot = usize::from(probe.address.is_ipv6());
            let sent = match &self.sockets[probe.link].0[slot] {
                Some(socket) => socket
                    .send(probe.address, &icmp::echo_request(slot == 1, self.session, probe.seq)),
                None => Err(io::Error::new(io::ErrorKind::NotConnected, "no probe socket")),
            };
            if sent.is_err() {
                let decision = self.engine.on_send_failed(now, &probe);
                self.decided(decision);
            }
        }
    }

    fn receive_probes(&mut self, link: usize, slot: usize) {
        loop {
            // A reload may have changed the links since the poll.
            let received =
                match self.sockets.get(link).and_then(|(sockets, _)| sockets[slot].as_ref()) {
                    Some(socket) => socket.receive(self.session),
                    None => return,
                };
            let Ok(Some((source, seq))) = received else {
                return;
            };
            let now = self.now();
            let target =
                self.engine.links()[link].targets().iter().position(|t| t.address() == source);
            if let Some(target) = target {
                let decision = self.engine.on_reply(now, link, target, seq);
                self.decided(decision);
            }
        }
    }

    fn netlink_events(&mut self) {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut links_changed = false;
        let mut addresses_changed = false;
        let mut gateways_changed = false;
        loop {
            let len = match self.events.receive(&mut buffer) {
                Ok(0) => break,
                Ok(len) => len,
                Err(e) => {
                    // ENOBUFS: events were lost. Read everything afresh.
                    self.log.line(
                        Level::Warning,
                        &format!("netlink events lost ({e}); reading the state again"),
                    );
                    links_changed = true;
                    break;
                }
            };
            for message in netlink::messages(&buffer[..len]) {
                match message.kind {
                    netlink::RTM_NEWLINK | netlink::RTM_DELLINK => {
                        if let Some(info) = netlink::parse_link(message.payload) {
                            let gone = message.kind == netlink::RTM_DELLINK;
                            for plan in &mut self.plans {
                                if plan.device == info.name || plan.state.index == Some(info.index)
                                {
                                    links_changed = true;
                                    if gone {
                                        plan.state.index = None;
                                        plan.state.flags = 0;
                                    } else {
                                        plan.state.index = Some(info.index);
                                        plan.state.flags = info.flags;
                                    }
                                }
                            }
                        }
                    }
                    netlink::RTM_NEWADDR | netlink::RTM_DELADDR => {
                        let index = netlink::parse_address(message.payload).map(|a| a.index);
                        addresses_changed |= self
                            .plans
                            .iter()
                            .any(|p| p.state.index.is_some() && p.state.index == index);
                    }
                    netlink::RTM_NEWROUTE | netlink::RTM_DELROUTE => {
                        if let Some(route) = netlink::parse_route(message.payload) {
                            if self.plumbing.disturbed(message.kind, &route) {
                                self.reconcile_now = true;
                            }
                            let ours = route.protocol == plumbing::PROTOCOL;
                            let system_default = route.dst_len == 0
                                && route.table == netlink::RT_TABLE_MAIN
                                && !ours;
                            gateways_changed |= system_default
                                && self.plans.iter().any(|p| p.state.index == route.oif);
                        }
                    }
                    _ => {}
                }
            }
        }
        if links_changed {
            self.observe();
            self.reconcile_now = true;
            return;
        }
        if addresses_changed {
            if let Err(e) = self.plumbing.observe_addresses(&mut self.plans) {
                self.log.line(Level::Warning, &format!("cannot read addresses: {e}"));
            }
            self.update_links();
        }
        if gateways_changed {
            let before: Vec<_> = self.plans.iter().map(|p| p.state.system_gateways).collect();
            if let Err(e) = self.plumbing.observe_gateways(&mut self.plans) {
                self.log.line(Level::Warning, &format!("cannot read routes: {e}"));
            }
            if self.plans.iter().zip(before).any(|(p, b)| p.state.system_gateways != b) {
                self.reconcile_now = true;
            }
        }
    }

    fn reload(&mut self) -> Result<String, String> {
        let config = load_config(&self.options.config).map_err(|errors| {
            for error in &errors {
                self.log.line(Level::Error, error);
            }
            let message = format!(
                "config refused ({} error(s)), still running on the previous one",
                errors.len()
            );
            self.log.line(Level::Error, &message);
            format!("{}\n{message}", errors.join("\n"))
        })?;
        let now = self.now();
        let web_changed = config.web.listen != self.config.web.listen;
        let old_devices: Vec<String> = self.plans.iter().map(|p| p.device.clone()).collect();
        let mut old_sockets = std::mem::take(&mut self.sockets);
        for problem in self.plumbing.remove_all() {
            self.log.line(Level::Warning, &problem);
        }
        self.config = config;
        self.plans = plans_of(&self.config);
        // Sockets of devices that stay are kept: replies in flight still find their probe.
        self.sockets = self
            .plans
            .iter()
            .map(|plan| match old_devices.iter().position(|d| *d == plan.device) {
                Some(old) => std::mem::take(&mut old_sockets[old]),
                None => ([None, None], None),
            })
            .collect();
        self.usable = self.engine_usable_guess();
        let decision = self.engine.reload(&self.config, now);
        self.decided(decision);
        self.observe();
        self.reconcile();
        if web_changed {
            self.open_web();
        }
        let message = format!("config reloaded from {}", self.options.config.display());
        self.log.line(Level::Notice, &message);
        Ok(message)
    }

    /// After a reload the engine keeps each link's state; this makes the next observation
    /// report only real changes.
    fn engine_usable_guess(&self) -> Vec<bool> {
        self.config
            .links
            .iter()
            .map(|l| {
                self.engine.link_index(l.name.as_str()).is_none_or(|i| {
                    !matches!(
                        self.engine.links()[i].state(),
                        crate::core::LinkState::Dead(crate::core::DeadCause::LinkDown)
                    )
                })
            })
            .collect()
    }

    fn facts_routes(&self) -> Vec<(&str, Option<IpAddr>)> {
        self.plumbing
            .installed
            .iter()
            .flatten()
            .filter_map(|route| {
                let plan = self.plans.iter().find(|p| p.state.index == Some(route.oif))?;
                Some((plan.device.as_str(), route.gateway))
            })
            .collect()
    }

    fn status(&self, json: bool) -> String {
        let problems: Vec<Option<String>> = self.plans.iter().map(LinkPlan::problem).collect();
        let facts = Facts {
            now: self.now(),
            version: env!("CARGO_PKG_VERSION"),
            routes: &self.facts_routes(),
            problems: &problems,
        };
        if json { status::json(&self.engine, &facts) } else { status::text(&self.engine, &facts) }
    }

    fn set_mode(&mut self, mode: Mode) -> Result<String, String> {
        let now = self.now();
        let decision = self.engine.set_mode(now, mode).map_err(|e| e.to_string())?;
        let message = match mode {
            Mode::Auto => "automatic choice restored".to_string(),
            Mode::Forced(name) => format!("forced to {name}"),
        };
        self.log.line(Level::Notice, &format!("operator: {message}"));
        self.decided(decision);
        Ok(message)
    }

    fn force(&mut self, link: &str) -> Result<String, String> {
        let name =
            LinkName::new(link).map_err(|_| format!("no link named {link:?} in the config"))?;
        self.set_mode(Mode::Forced(name))
    }

    fn control_request(&mut self) {
        let Ok((stream, _)) = self.control.accept() else {
            return;
        };
        let result = match control::read_request(&stream) {
            Err(e) => Err(format!("cannot read the request: {e}")),
            Ok(line) => match control::parse(&line) {
                Err(e) => Err(e),
                Ok(ControlRequest::Status { json }) => Ok(self.status(json)),
                Ok(ControlRequest::Force(link)) => self.force(&link),
                Ok(ControlRequest::Auto) => self.set_mode(Mode::Auto),
                Ok(ControlRequest::Reload) => self.reload(),
            },
        };
        let _ = (&stream).write_all(control::answer(&result).as_bytes());
    }

    fn accept_web(&mut self) {
        let Some(listener) = &self.web else { return };
        while let Ok((stream, _)) = listener.accept() {
            if self.connections.len() >= http::MAX_CONNECTIONS {
                let _ = stream.set_nonblocking(true);
                let _ = (&stream).write_all(&http::error_response(503, "too many connections"));
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let deadline =
                std::time::Instant::now() + Duration::from_millis(http::CONNECTION_DEADLINE_MS);
            self.connections.push(Connection {
                stream,
                received: Vec::new(),
                reply: Vec::new(),
                sent: 0,
                deadline,
            });
        }
    }

    /// Reads from, answers and writes to one web client; false when it is done.
    fn serve_connection(&mut self, index: usize) -> bool {
        if self.connections[index].reply.is_empty() {
            let mut chunk = [0u8; 2048];
            loop {
                match self.connections[index].stream.read(&mut chunk) {
                    Ok(0) => return false,
                    Ok(n) => {
                        let connection = &mut self.connections[index];
                        connection.received.extend_from_slice(&chunk[..n]);
                        if connection.received.len() > http::MAX_HEAD + http::MAX_BODY + 4 {
                            connection.reply = http::error_response(413, "request too large");
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => return false,
                }
            }
            if self.connections[index].reply.is_empty() {
                match http::parse(&self.connections[index].received) {
                    Ok(None) => return true,
                    Ok(Some(request)) => self.connections[index].reply = self.respond(&request),
                    Err(refusal) => {
                        self.connections[index].reply =
                            http::error_response(refusal.status, refusal.reason)
                    }
                }
            }
        }
        let connection = &mut self.connections[index];
        while connection.sent < connection.reply.len() {
            match connection.stream.write(&connection.reply[connection.sent..]) {
                Ok(0) => return false,
                Ok(n) => connection.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        false
    }

    fn respond(&mut self, request: &http::Request) -> Vec<u8> {
        let head_only = request.method == "HEAD";
        let token = self.config.web.token.clone();
        let answer = |result: Result<String, String>| match result {
            Ok(message) => {
                let body = format!("{{\"message\":\"{}\"}}", crate::json::escape(&message));
                http::response(200, "application/json", "", body.as_bytes(), false)
            }
            Err(message) => http::error_response(409, &message),
        };
        match http::route(request, token.as_deref()) {
            Action::Page => http::response(
                200,
                "text/html; charset=utf-8",
                "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n",
                PAGE,
                head_only,
            ),
            Action::Status => {
                http::response(200, "application/json", "", self.status(true).as_bytes(), head_only)
            }
            Action::Force(link) => {
                let result = self.force(&link);
                answer(result)
            }
            Action::Auto => {
                let result = self.set_mode(Mode::Auto);
                answer(result)
            }
            Action::Refuse(status, message) => http::error_response(status, &message),
        }
    }

    fn serve(&mut self) -> Result<(), String> {
        loop {
            let now = self.now();
            self.send_probes(now);
            let decision = self.engine.tick(now);
            self.decided(decision);
            if self.reconcile_now || self.last_full_reconcile.elapsed() >= FULL_RECONCILE {
                self.reconcile();
            }
            self.hooks.reap(&self.log);
            let wall = std::time::Instant::now();
            self.connections.retain(|c| c.deadline > wall);
            if self.stopping {
                return Ok(());
            }
            let mut timeout = Duration::from_micros(self.engine.next_deadline().since(self.now()))
                .min(Duration::from_secs(1));
            if let Some(first) = self.connections.iter().map(|c| c.deadline).min() {
                timeout = timeout.min(first.saturating_duration_since(wall));
            }
            if !self.hooks.is_empty() {
                timeout = timeout.min(Duration::from_millis(200));
            }
            self.wait(timeout)?;
        }
    }

    /// Waits for any input or the timeout, then handles what became ready.
    fn wait(&mut self, timeout: Duration) -> Result<(), String> {
        #[derive(Clone, Copy)]
        enum Source {
            Signals,
            Netlink,
            Control,
            Web,
            Probe(usize, usize),
            Client(usize),
        }
        let mut sources = vec![
            (Source::Signals, self.signals.as_raw_fd()),
            (Source::Netlink, self.events.as_raw_fd()),
            (Source::Control, self.control.as_raw_fd()),
        ];
        if let Some(web) = &self.web {
            sources.push((Source::Web, web.as_raw_fd()));
        }
        for (link, (sockets, _)) in self.sockets.iter().enumerate() {
            for (slot, socket) in sockets.iter().enumerate() {
                if let Some(socket) = socket {
                    sources.push((Source::Probe(link, slot), socket.as_raw_fd()));
                }
            }
        }
        for (index, connection) in self.connections.iter().enumerate() {
            sources.push((Source::Client(index), connection.stream.as_raw_fd()));
        }
        let mut fds: Vec<libc::pollfd> = sources
            .iter()
            .map(|(source, fd)| {
                let writing =
                    matches!(source, Source::Client(i) if !self.connections[*i].reply.is_empty());
                libc::pollfd {
                    fd: *fd as RawFd,
                    events: if writing { libc::POLLOUT } else { libc::POLLIN },
                    revents: 0,
                }
            })
            .collect();
        let millis = timeout.as_millis().min(1000) as i32;
        // SAFETY: fds is a valid array of pollfd of the length passed.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(format!("poll failed: {error}"))
            };
        }
        let mut finished = Vec::new();
        for (fd, (source, _)) in fds.iter().zip(&sources) {
            if fd.revents == 0 {
                continue;
            }
            match *source {
                Source::Signals => {
                    for signal in self.signals.take() {
                        if signal == libc::SIGHUP {
                            let _ = self.reload();
                        } else {
                            self.log.line(Level::Notice, &format!("signal {signal}: stopping"));
                            self.stopping = true;
                        }
                    }
                }
                Source::Netlink => self.netlink_events(),
                Source::Control => self.control_request(),
                Source::Web => self.accept_web(),
                Source::Probe(link, slot) => self.receive_probes(link, slot),
                Source::Client(index) => {
                    if !self.serve_connection(index) {
                        finished.push(index);
                    }
                }
            }
        }
        for index in finished.into_iter().rev() {
            self.connections.swap_remove(index);
        }
        Ok(())
    }

    /// Hands routing back to the system: removes every route and rule wanmon wrote.
    fn stop(&mut self) {
        for problem in self.plumbing.remove_all() {
            self.log.line(Level::Error, &format!("while stopping: {problem}"));
        }
        let _ = std::fs::remove_file(&self.options.socket);
        self.log.line(Level::Notice, "stopped; the system's routes apply again");
    }
}
