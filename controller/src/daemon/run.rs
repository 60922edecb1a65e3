//! `wanmon run`: the daemon, a thin poll loop around the [`Controller`]. It performs the
//! controller's actions (sockets, routes, hooks, log lines), feeds it what the sockets bring (probe
//! replies, netlink news, operator commands, SIGHUP reloads), and serves the control socket and the
//! web page. Everything it decides is I/O: which link is usable and what a switch means is the
//! controller's.

use super::clients::{Limits, Received, Server};
use super::conntrack;
use super::control::{self, ListenError, Step};
use super::http::{self, Action as WebAction};
use super::icmp::Session;
use super::kernel;
use super::netlink;
use super::plumbing::Plumbing;
use super::probes::Probes;
use super::status;
use super::stream::StreamListener;
use super::system::{self, Hooks, Level, Log, Signals};
use crate::config_file::{self, Refused};
use crate::core::config::Listen;
use crate::core::{Action, Controller, Instant, LinkIndex, Links, Micros, Mode};
use crate::protocol::status::{RouteStatus, Status};
use crate::protocol::{self, Request, RequestError};
use crate::text::{self, OsError, Show};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

/// Served as it is: LZMA packs the plain page into the router's binary smaller than a gzipped
/// copy would take (which it cannot compress further), and 7 KB is nothing on a LAN.
const PAGE: &[u8] = include_bytes!("page.html");
/// Everything is written again this often, in case a change went unnoticed.
const FULL_REWRITE: Micros = 30_000_000;
/// Control clients at a time; each must be done within a second.
const CONTROL_LIMITS: Limits = Limits { clients: 8, request: 1_000_000, total: 1_000_000 };

#[derive(Debug)]
pub struct Options {
    pub config: PathBuf,
    pub socket: PathBuf,
}

/// Why the daemon did not start, or stopped on its own.
#[derive(Debug)]
pub enum RunError {
    Config(Refused),
    Signals(io::Error),
    Control(ListenError),
    Netlink(io::Error),
    Poll(io::Error),
}

impl crate::text::Show for RunError {
    fn show(&self, out: &mut String) {
        match self {
            RunError::Config(refused) => {
                put!(out, refused, "\nconfig refused (", refused.errors, " error(s)), not starting")
            }
            RunError::Signals(cause) => put!(out, "cannot catch signals: ", OsError(cause)),
            RunError::Control(cause) => cause.show(out),
            RunError::Netlink(cause) => put!(out, "cannot open netlink: ", OsError(cause)),
            RunError::Poll(cause) => put!(out, "poll failed: ", OsError(cause)),
        }
    }
}

crate::display_by_show!(RunError);

impl std::error::Error for RunError {}

/// Why an operator's command (control socket, web API, SIGHUP) was refused.
#[derive(Debug)]
enum Refusal {
    Mode(crate::core::ModeError),
    /// The new config, with its errors; the daemon runs on the previous one.
    Config(Refused),
    Request(RequestError),
}

impl crate::text::Show for Refusal {
    fn show(&self, out: &mut String) {
        match self {
            Refusal::Mode(e) => e.show(out),
            Refusal::Config(refused) => put!(
                out,
                refused,
                "\nconfig refused (",
                refused.errors,
                " error(s)), still running on the previous one"
            ),
            Refusal::Request(e) => e.show(out),
        }
    }
}

crate::display_by_show!(Refusal);

#[derive(Debug)]
struct Daemon {
    options: Options,
    controller: Controller,
    /// The monotonic clock's reading at the start: the origin of the core's time.
    started: Instant,
    plumbing: Plumbing,
    events: netlink::Socket,
    /// Where netlink events are read into: allocated once.
    event_buffer: Vec<u8>,
    probes: Probes,
    signals: Signals,
    log: Log,
    hooks: Hooks,
    control: Server<StreamListener>,
    web: Server<StreamListener>,
    /// The web page could not be served yet, and that has been logged.
    web_warned: bool,
    /// The names the web page answers to (its addresses it answers to anyway).
    web_names: Vec<String>,
    /// Conntrack entries removed after switches, for the status.
    flows_cleared: u64,
    last_full_write: Instant,
    stopping: bool,
}

/// What a ready descriptor of the poll set belongs to.
#[derive(Clone, Copy, Debug)]
enum Source {
    Signals,
    Netlink,
    Control,
    ControlClient(usize),
    Web,
    WebClient(usize),
    Probe(LinkIndex, usize),
}

/// Runs until SIGTERM or SIGINT; then removes every route and rule it wrote.
pub fn run(options: Options) -> Result<(), RunError> {
    let config = config_file::load(&options.config, Links::Required).map_err(RunError::Config)?;
    let log = Log::open();
    let signals = Signals::install().map_err(RunError::Signals)?;
    let control = control::listen(&options.socket).map_err(RunError::Control)?;
    let mut plumbing = Plumbing::open().map_err(RunError::Netlink)?;
    for problem in plumbing.clean_up_keeping_the_route() {
        log.say(Level::Warning, &text!("cleaning up an earlier run: ", problem));
    }
    let events = netlink::Socket::open(netlink::EVENT_GROUPS).map_err(RunError::Netlink)?;
    let started = system::monotonic_now();
    let pid = kernel::getpid() as u32;
    let nonce = started.as_micros() as u32
        ^ pid.rotate_left(16)
        ^ (std::ptr::addr_of!(log) as usize as u32);
    let mut daemon = Daemon {
        controller: Controller::new(config, Instant::ZERO),
        options,
        started,
        plumbing,
        events,
        event_buffer: vec![0; 64 * 1024],
        probes: Probes::new(Session { identifier: (pid & 0xffff) as u16, nonce }),
        signals,
        log,
        hooks: Hooks::default(),
        control: Server::new(Some(control), CONTROL_LIMITS),
        web: Server::new(None, http::LIMITS),
        web_warned: false,
        web_names: Vec::new(),
        flows_cleared: 0,
        last_full_write: started,
        stopping: false,
    };
    daemon.start();
    let result = daemon.serve();
    daemon.stop();
    result
}

/// The names the page answers to: `localhost`, the router's host name (which
/// [`http::host_allowed`] also takes in the local domains), and the config's `web.hosts`.
fn web_names(configured: &[String]) -> Vec<String> {
    let mut names = Vec::with_capacity(configured.len() + 2);
    names.push("localhost".to_string());
    let mut buffer = [0u8; 65];
    // SAFETY: the buffer is valid for writes of the length passed.
    if unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0 {
        let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
        if let Some(host) = text::utf8(&buffer[..end]) {
            names.push(host.to_string());
        }
    }
    names.extend_from_slice(configured);
    names
}

impl Daemon {
    fn now(&self) -> Instant {
        Instant::from_micros(system::monotonic_now().since(self.started))
    }

    fn start(&mut self) {
        let names: Vec<&str> =
            self.controller.config().links.iter().map(|l| l.name.as_str()).collect();
        self.log.say(
            Level::Notice,
            &text!("started, ", names.len(), " links: ", text::comma_separated(&names)),
        );
        self.check_conntrack();
        self.open_web();
        self.perform();
    }

    /// Says at once, not at the first switch (which may come months later), when the kernel
    /// cannot do the conntrack cleanup the config asks for.
    fn check_conntrack(&self) {
        if !self.controller.config().conntrack_cleanup {
            return;
        }
        if let Err(e @ conntrack::ClearError::NoInterface(_)) = conntrack::available() {
            self.log.say(Level::Warning, &text!("conntrack_cleanup is on, but ", e));
        }
    }

    /// Performs the controller's actions and sends the probes that are due, until it has
    /// neither (the controller's contract).
    fn perform(&mut self) {
        let now = self.now();
        loop {
            while let Some(action) = self.controller.poll_action() {
                self.act(action, now);
            }
            let mut sent = false;
            while let Some(probe) = self.controller.poll_probe(now) {
                sent = true;
                if self.probes.send(&probe).is_err() {
                    self.controller.handle_send_failed(now, &probe);
                }
            }
            if !sent {
                return;
            }
        }
    }

    fn act(&mut self, action: Action, now: Instant) {
        match action {
            Action::BindProbes { link, device } => {
                for (family, e) in self.probes.bind(self.controller.plans(), link, device) {
                    let device = &self.controller.plans()[link].device;
                    self.log.say(
                        Level::Error,
                        &text!(
                            "cannot open an ",
                            family.name(),
                            " probe socket on ",
                            device,
                            ": ",
                            e
                        ),
                    );
                }
            }
            Action::KeepProbes(keep) => {
                for e in self.probes.keep(&keep) {
                    self.log.say(Level::Error, &text!("cannot re-mark a probe socket: ", e));
                }
            }
            Action::Observe => self.observe(now),
            Action::ClearRoutingKeepingTheRoute => self.problems(Level::Warning, |d| {
                d.plumbing.clear_keeping_the_route(d.controller.plans())
            }),
            Action::WriteRouting => {
                self.last_full_write = self.now();
                let current = self.controller.current();
                let plans = self.controller.plans();
                for problem in self.plumbing.apply(plans, current) {
                    self.log.say(Level::Warning, &text!(problem));
                }
                if self.web.listener.is_none() && self.controller.config().web.listen.is_some() {
                    self.open_web();
                }
            }
            Action::WriteDefaultRoute => {
                let current = self.controller.current();
                let plans = self.controller.plans();
                for problem in self.plumbing.set_default(plans, current) {
                    self.log.say(Level::Error, &text!(problem));
                }
            }
            Action::ClearConntrack { from } => self.clear_conntrack(from),
            Action::RunHook(decision) => {
                if let Some(argv) = &self.controller.config().hook {
                    let from = decision.from.map(|f| text!(f)).unwrap_or_default();
                    let reason = text!(decision);
                    self.hooks.start(argv, &from, decision.to.as_str(), &reason, &self.log);
                }
            }
            Action::Log(event) => self.log.say(event.level(), &text!(event)),
        }
    }

    /// Removes the conntrack entries of the LAN's flows through link `from`: NATed to its
    /// addresses, or routed from the IPv6 prefixes it delegated. They start afresh through the
    /// link the route moved to.
    fn clear_conntrack(&mut self, from: LinkIndex) {
        let device = &self.controller.plans()[from].device;
        let left = conntrack::LeftLink {
            addresses: self.plumbing.addresses_of(device).unwrap_or_default(),
            prefixes: self.plumbing.source_prefixes(device),
        };
        match conntrack::clear(&left) {
            Ok(0) => {}
            Ok(cleared) => {
                self.flows_cleared += cleared as u64;
                self.log.say(
                    Level::Info,
                    &text!(
                        "conntrack: ",
                        cleared,
                        " LAN flow(s) through ",
                        device,
                        " removed; they continue through the new link"
                    ),
                );
            }
            Err(e) => self.log.say(
                Level::Info,
                &text!("conntrack: cannot remove the LAN flows through ", device, ": ", e),
            ),
        }
    }

    fn problems<E: Show>(&mut self, level: Level, work: impl FnOnce(&mut Daemon) -> Vec<E>) {
        for problem in work(self) {
            self.log.say(level, &text!(problem));
        }
    }

    /// Reads every link's device from the kernel and tells the controller.
    fn observe(&mut self, now: Instant) {
        let devices: Vec<&str> =
            self.controller.plans().iter().map(|p| p.device.as_str()).collect();
        match self.plumbing.observe(&devices) {
            Ok(facts) => self.controller.handle_devices(now, facts),
            Err(e) => {
                self.log.say(
                    Level::Error,
                    &text!("cannot read the links from the kernel: ", OsError(&e)),
                );
            }
        }
    }

    fn open_web(&mut self) {
        self.web.listener = None;
        self.web_names = web_names(&self.controller.config().web.hosts);
        let address = match &self.controller.config().web.listen {
            None => return,
            Some(Listen::Address(address)) => *address,
            Some(Listen::Device { device, port }) => match self.plumbing.addresses_of(device) {
                Ok(addresses) if !addresses.is_empty() => SocketAddr::new(addresses[0], *port),
                _ => {
                    if !self.web_warned {
                        self.log.say(
                            Level::Warning,
                            &text!("web page not served yet: ", device, " has no address"),
                        );
                        self.web_warned = true;
                    }
                    return;
                }
            },
        };
        let url = page_url(address);
        match StreamListener::tcp(address) {
            Ok(listener) => {
                self.log.say(Level::Info, &text!("web page on ", url));
                self.web.listener = Some(listener);
            }
            Err(e) => {
                self.log.say(
                    Level::Error,
                    &text!("cannot serve the web page on ", url, ": ", OsError(&e)),
                );
            }
        }
    }

    /// A page on a device's address moves with it: the LAN address changed, the page is there.
    fn follow_web_address(&mut self) {
        let Some(Listen::Device { device, port }) = &self.controller.config().web.listen else {
            return;
        };
        let wanted = match self.plumbing.addresses_of(device) {
            Ok(addresses) => addresses.first().map(|a| SocketAddr::new(*a, *port)),
            Err(_) => return,
        };
        let bound = self.web.listener.as_ref().and_then(StreamListener::local_address);
        if wanted != bound {
            self.web_warned = false;
            self.open_web();
        }
    }

    /// Reads the netlink events: news of the links' devices makes the daemon observe them again,
    /// a disturbed route of wanmon's makes it write its routing again.
    fn netlink_events(&mut self) {
        let (mut observe, mut disturbed, mut addresses) = (false, false, false);
        loop {
            let len = match self.events.receive(&mut self.event_buffer) {
                Ok(0) => break,
                Ok(len) => len,
                Err(e) => {
                    // ENOBUFS: events were lost. Read everything afresh.
                    self.log.say(
                        Level::Warning,
                        &text!("netlink events lost (", OsError(&e), "); reading the state again"),
                    );
                    (observe, disturbed, addresses) = (true, true, true);
                    break;
                }
            };
            for message in netlink::messages(&self.event_buffer[..len]) {
                let news = self.plumbing.news(&message, self.controller.plans());
                observe |= news.devices;
                disturbed |= news.routing;
                addresses |= matches!(message.kind, netlink::RTM_NEWADDR | netlink::RTM_DELADDR);
            }
        }
        if addresses {
            self.follow_web_address();
        }
        if disturbed {
            self.controller.handle_routing_disturbed();
        }
        if observe {
            self.observe(self.now());
        }
        self.perform();
    }

    fn reload(&mut self) -> Result<String, Refusal> {
        let config =
            config_file::load(&self.options.config, Links::Required).map_err(|errors| {
                let refusal = Refusal::Config(errors);
                let text = text!(refusal);
                for line in crate::text::byte_separated(&text, b'\n').filter(|l| !l.is_empty()) {
                    self.log.say(Level::Error, line);
                }
                refusal
            })?;
        let web_changed = config.web.listen != self.controller.config().web.listen;
        let cleanup_enabled =
            config.conntrack_cleanup && !self.controller.config().conntrack_cleanup;
        self.controller.handle_reload(self.now(), config);
        if cleanup_enabled {
            self.check_conntrack();
        }
        self.perform();
        if web_changed {
            self.open_web();
        } else {
            self.web_names = web_names(&self.controller.config().web.hosts);
        }
        let message = text!("config reloaded from ", crate::shown_path(&self.options.config));
        self.log.say(Level::Notice, &message);
        Ok(message)
    }

    fn status(&self) -> Status {
        let plans = self.controller.plans();
        let mut routes = Vec::with_capacity(2);
        for route in self.plumbing.installed.iter().flatten() {
            if let Some(plan) = plans.iter().find(|p| p.facts.index == Some(route.oif)) {
                let gateway = route.gateway.as_ref().map(crate::address::text);
                routes.push(RouteStatus { device: plan.device.clone(), gateway });
            }
        }
        status::of(&self.controller, routes, self.flows_cleared, self.now())
    }

    fn set_mode(&mut self, mode: Mode) -> Result<String, Refusal> {
        self.controller.handle_mode(self.now(), mode).map_err(Refusal::Mode)?;
        self.perform();
        Ok(match mode {
            Mode::Auto => "automatic choice restored".to_string(),
            Mode::Forced(name) => text!("forced to ", name),
        })
    }

    fn force(&mut self, link: &str) -> Result<String, Refusal> {
        self.controller.handle_force(self.now(), link).map_err(Refusal::Mode)?;
        self.perform();
        Ok(text!("forced to ", link))
    }

    fn control_answer(&mut self, request: Result<Request, RequestError>) -> String {
        let result = match request {
            Err(e) => Err(Refusal::Request(e)),
            Ok(Request::Status { json: true }) => Ok(self.status().to_json()),
            Ok(Request::Status { json: false }) => Ok(self.status().to_text()),
            Ok(Request::Force(link)) => self.force(&link),
            Ok(Request::Auto) => self.set_mode(Mode::Auto),
            Ok(Request::Reload) => self.reload(),
        };
        protocol::answer(&result)
    }

    /// Serves control client `index`; false once it is done.
    fn control_client(&mut self, index: usize) -> bool {
        let Some(client) = self.control.clients.get(index) else { return false };
        if client.answered() {
            return client.send();
        }
        let request = match control::read(client) {
            Step::Waiting => return true,
            Step::Done => return false,
            Step::Request(request) => request,
        };
        let answer = self.control_answer(request);
        self.control.clients.get(index).is_some_and(|c| c.answer(answer.into_bytes()))
    }

    /// Serves web client `index`; false once it is done.
    fn web_client(&mut self, index: usize) -> bool {
        let Some(client) = self.web.clients.get(index) else { return false };
        if client.answered() {
            return client.send();
        }
        let received = client.receive(http::MAX_HEAD + http::MAX_BODY + 4);
        let reply = match received {
            Received::Failed => return false,
            Received::TooLarge => http::error_response(413, "request too large"),
            Received::Waiting | Received::Closed => match http::parse(client.request()) {
                Ok(None) if received == Received::Closed => return false,
                Ok(None) => return true,
                Ok(Some(request)) => self.respond(&request),
                Err(refusal) => http::error_response(refusal.status, refusal.reason),
            },
        };
        self.web.clients.get(index).is_some_and(|c| c.answer(reply))
    }

    fn respond(&mut self, request: &http::Request) -> Vec<u8> {
        let head_only = request.method == "HEAD";
        let answer = |result: Result<String, Refusal>| match result {
            Ok(message) => {
                let body = text!("{\"message\":\"", crate::json::escape(&message), "\"}");
                http::response(200, "application/json", "", body.as_bytes(), false)
            }
            Err(refusal) => http::error_response(409, &text!(refusal)),
        };
        let token = self.controller.config().web.token.as_deref();
        match http::route(request, token, &self.web_names) {
            WebAction::Page => http::response(200, "text/html; charset=utf-8", "", PAGE, head_only),
            WebAction::Status => {
                let body = self.status().to_json();
                http::response(200, "application/json", "", body.as_bytes(), head_only)
            }
            WebAction::Force(link) => answer(self.force(&link)),
            WebAction::Auto => answer(self.set_mode(Mode::Auto)),
            WebAction::Refuse(status, message) => http::error_response(status, &message),
        }
    }

    fn serve(&mut self) -> Result<(), RunError> {
        loop {
            let now = self.now();
            self.controller.handle_timeout(now);
            if now.since(self.last_full_write) >= FULL_REWRITE {
                self.controller.handle_routing_disturbed();
            }
            self.perform();
            self.hooks.reap(&self.log);
            // Read again: performing (routes written, a hook forked) takes time of its own.
            let now = self.now();
            self.control.clients.expire(now);
            self.web.clients.expire(now);
            if self.stopping {
                return Ok(());
            }
            self.wait(self.timeout(now))?;
        }
    }

    /// How long the loop may sleep: until the controller's next deadline, a client's deadline,
    /// or a hook's check, and never more than a second.
    fn timeout(&self, now: Instant) -> Micros {
        let mut timeout = self.controller.poll_timeout().since(now).min(1_000_000);
        for clients in [&self.control.clients, &self.web.clients] {
            timeout = clients.next_deadline().map_or(timeout, |d| timeout.min(d.since(now)));
        }
        if !self.hooks.is_empty() {
            timeout = timeout.min(200_000);
        }
        timeout
    }

    /// Every descriptor the loop waits on, with what it belongs to.
    fn poll_set(&self) -> (Vec<Source>, Vec<libc::pollfd>) {
        let (mut sources, mut fds) = (Vec::with_capacity(8), Vec::with_capacity(8));
        let mut add = |source: Source, fd: RawFd, writing: bool| {
            sources.push(source);
            let events = if writing { libc::POLLOUT } else { libc::POLLIN };
            fds.push(libc::pollfd { fd, events, revents: 0 });
        };
        add(Source::Signals, self.signals.as_raw_fd(), false);
        add(Source::Netlink, self.events.as_raw_fd(), false);
        if let Some(listener) = &self.control.listener {
            add(Source::Control, listener.as_raw_fd(), false);
        }
        for (i, client) in self.control.clients.all().iter().enumerate() {
            add(Source::ControlClient(i), client.fd(), client.answered());
        }
        if let Some(listener) = &self.web.listener {
            add(Source::Web, listener.as_raw_fd(), false);
        }
        for (i, client) in self.web.clients.all().iter().enumerate() {
            add(Source::WebClient(i), client.fd(), client.answered());
        }
        for (link, slot, fd) in self.probes.descriptors() {
            add(Source::Probe(link, slot), fd, false);
        }
        (sources, fds)
    }

    /// Waits for any input or the timeout, then handles what became ready.
    fn wait(&mut self, timeout: Micros) -> Result<(), RunError> {
        let (sources, mut fds) = self.poll_set();
        let millis = poll_millis(timeout);
        // SAFETY: fds is a valid array of pollfd of the length passed.
        let ready = unsafe { kernel::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::EINTR) => Ok(()),
                _ => Err(RunError::Poll(error)),
            };
        }
        let (mut control_done, mut web_done) = (Vec::new(), Vec::new());
        let (mut control_waiting, mut web_waiting) = (false, false);
        for (fd, source) in fds.iter().zip(sources) {
            match source {
                _ if fd.revents == 0 => {}
                Source::Control => control_waiting = true,
                Source::Web => web_waiting = true,
                _ => self.dispatch(source, &mut control_done, &mut web_done),
            }
        }
        self.control.clients.remove(control_done);
        self.web.clients.remove(web_done);
        // Only now: a newcomer may replace a waiting client, which would renumber the clients
        // the poll set above still counted by index.
        let now = self.now();
        if control_waiting {
            let busy = protocol::answer(&Err::<String, _>("busy: too many control clients"));
            self.control.accept(now, busy.as_bytes());
        }
        if web_waiting {
            self.web.accept(now, &http::error_response(503, "too many connections"));
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        source: Source,
        control_done: &mut Vec<usize>,
        web_done: &mut Vec<usize>,
    ) {
        match source {
            Source::Signals => self.signalled(),
            Source::Netlink => self.netlink_events(),
            Source::ControlClient(index) if !self.control_client(index) => control_done.push(index),
            Source::WebClient(index) if !self.web_client(index) => web_done.push(index),
            Source::Probe(link, slot) => {
                while let Some((source, seq)) = self.probes.receive(link, slot) {
                    self.controller.handle_reply(self.now(), link, source, seq);
                    self.perform();
                }
            }
            Source::ControlClient(_) | Source::WebClient(_) | Source::Control | Source::Web => {}
        }
    }

    fn signalled(&mut self) {
        for signal in self.signals.take() {
            if signal == libc::SIGHUP {
                let _ = self.reload();
            } else {
                self.log.say(Level::Notice, &text!("signal ", signal, ": stopping"));
                self.stopping = true;
            }
        }
    }

    /// Hands routing back to the system: removes every route and rule wanmon wrote.
    fn stop(&mut self) {
        for problem in self.plumbing.remove_all() {
            self.log.say(Level::Error, &text!("while stopping: ", problem));
        }
        let _ = system::remove_file(&self.options.socket);
        self.log.say(Level::Notice, "stopped; the system's routes apply again");
    }
}

/// `http://ADDRESS:PORT/`, IPv6 in brackets; by hand, as `SocketAddr`'s `Display` costs 744 bytes
/// of flash for two log lines.
fn page_url(address: SocketAddr) -> String {
    let ip = crate::address::text(&address.ip());
    match address.ip() {
        IpAddr::V4(_) => text!("http://", ip, ":", address.port(), "/"),
        IpAddr::V6(_) => text!("http://[", ip, "]:", address.port(), "/"),
    }
}

/// poll(2)'s timeout for `timeout`: rounded up, as rounded down a deadline less than a
/// millisecond away made poll return at once, again and again until it passed (a busy loop that
/// no count of sleeps shows); at most a second.
fn poll_millis(timeout: Micros) -> i32 {
    timeout.div_ceil(1_000).min(1_000) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_url_brackets_an_ipv6_address() {
        assert_eq!(page_url("192.0.2.1:8080".parse().unwrap()), "http://192.0.2.1:8080/");
        assert_eq!(page_url("[2001:db8::1]:80".parse().unwrap()), "http://[2001:db8::1]:80/");
    }

    #[test]
    fn the_loop_sleeps_until_the_deadline_not_short_of_it() {
        let slept: Vec<i32> = [0, 1, 999, 1_000, 1_001, 250_400, 1_000_000, u64::MAX]
            .into_iter()
            .map(poll_millis)
            .collect();
        assert_eq!(slept, [0, 1, 1, 1, 2, 251, 1_000, 1_000]);
    }
}
