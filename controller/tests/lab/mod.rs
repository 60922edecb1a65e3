//! The namespace lab the root-only tests share: a router with two links to two "ISP"
//! namespaces holding the probe targets (documentation addresses), the daemon under test in
//! the router, and readers of the kernel's tables there. Each test binary uses part of it.
#![allow(dead_code)]

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wanmon::daemon::netlink::{self, DumpKind, Socket};
use wanmon::protocol;

/// Namespace tests run one at a time: timings stay meaningful on a 2-core machine.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub const TARGET: &str = "192.0.2.1";

/// `ip netns exec NS` and the daemon under test: the host build, or another build given in
/// `WANMON_BINARY`, run through `WANMON_RUNNER` (`qemu-mipsel-static` for the router's build).
pub fn daemon_in(ns: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]);
    if let Some(runner) = std::env::var_os("WANMON_RUNNER").filter(|r| !r.is_empty()) {
        command.arg(runner);
    }
    command.arg(
        std::env::var_os("WANMON_BINARY").unwrap_or_else(|| env!("CARGO_BIN_EXE_wanmon").into()),
    );
    command
}
pub const TOKEN: &str = "0123456789abcdef";

pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A veth pair between two namespaces, each end `(namespace, device, address/prefix)`, both up.
pub fn veth_pair(a: (&str, &str, &str), b: (&str, &str, &str)) {
    sh(&[
        "ip", "link", "add", a.1, "netns", a.0, "type", "veth", "peer", "name", b.1, "netns", b.0,
    ]);
    for (ns, device, address) in [a, b] {
        sh(&["ip", "-n", ns, "addr", "add", address, "dev", device]);
        sh(&["ip", "-n", ns, "link", "set", device, "up"]);
    }
}

pub fn require_root() {
    let uid = String::from_utf8(sh(&["id", "-u"]).stdout).unwrap_or_default();
    assert_eq!(
        uid.trim(),
        "0",
        "these tests need root for network namespaces: run `sudo cargo xtask ci`"
    );
    assert!(
        Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success()),
        "these tests need nftables (apt-get install nftables; `cargo xtask ci` installs it)"
    );
}

/// Runs `work` on a thread of its own that has entered namespace `ns`: sockets it opens live
/// there.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("namespace file");
        // SAFETY: setns on this thread only; what it opens keeps the namespace.
        let result = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(result, 0, "setns: {}", std::io::Error::last_os_error());
        work()
    })
}

/// Three namespaces wired like a home router with a wired WAN and a hotspot; removed on drop.
pub struct Lab {
    pub router: String,
    pub isp_a: String,
    pub isp_b: String,
    pub dir: std::path::PathBuf,
    pub daemon: Option<Child>,
}

impl Lab {
    /// A lab with the daemon running on the default two-link config, holding the lock that keeps
    /// namespace tests one at a time.
    pub fn started(tag: &str) -> (std::sync::MutexGuard<'static, ()>, Lab) {
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut lab = Lab::new(tag);
        let config = lab.config("");
        lab.start(&config);
        (serial, lab)
    }

    pub fn new(tag: &str) -> Lab {
        require_root();
        let id = format!("{}{}", tag, std::process::id() % 100_000);
        let lab = Lab {
            router: format!("wmr-{id}"),
            isp_a: format!("wma-{id}"),
            isp_b: format!("wmb-{id}"),
            dir: std::env::temp_dir().join(format!("wanmon-netns-{id}")),
            daemon: None,
        };
        std::fs::create_dir_all(&lab.dir).expect("temp dir");
        for ns in [&lab.router, &lab.isp_a, &lab.isp_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // Each link, and the system's own default route through it, as netifd would set it.
        for (link, isp, router_address, isp_address, gateway, metric) in [
            ("wan", &lab.isp_a, "198.51.100.2/30", "198.51.100.1/30", "198.51.100.1", "10"),
            ("wwan", &lab.isp_b, "198.51.100.6/30", "198.51.100.5/30", "198.51.100.5", "20"),
        ] {
            veth_pair((&lab.router, link, router_address), (isp, "isp", isp_address));
            for target in ["192.0.2.1/32", "203.0.113.1/32"] {
                sh(&["ip", "-n", isp, "addr", "add", target, "dev", "lo"]);
            }
            let router = &lab.router;
            sh(&[
                "ip", "-n", router, "route", "add", "default", "via", gateway, "dev", link,
                "metric", metric,
            ]);
        }
        lab
    }

    pub fn config(&self, extra: &str) -> std::path::PathBuf {
        let path = self.dir.join("config.json");
        let text = format!(
            r#"{{ {extra}
  "targets": ["192.0.2.1", "203.0.113.1"],
  "web": {{"listen": "127.0.0.1:8080", "token": "{TOKEN}"}},
  "links": [
    {{"name": "wan", "device": "wan"}},
    {{"name": "wwan", "device": "wwan", "gateway": "198.51.100.5", "bias": 20}}
  ]
}}"#
        );
        std::fs::write(&path, text).expect("config");
        path
    }

    pub fn socket(&self) -> String {
        self.dir.join("wanmon.sock").display().to_string()
    }

    /// Runs the daemon on `config`, its log in `daemon.log` (appended to: a restart keeps what
    /// the run before said); does not wait for anything.
    pub fn spawn(&mut self, config: &std::path::Path, append: bool) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(self.dir.join("daemon.log"))
            .expect("log file");
        let child = daemon_in(&self.router)
            .args(["run", "--config"])
            .arg(config)
            .args(["--socket", &self.socket()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("daemon starts");
        self.daemon = Some(child);
    }

    pub fn start(&mut self, config: &std::path::Path) {
        self.spawn(config, false);
        // Ready when the daemon answers and reports its first route, and the kernel routes through it.
        self.wait_for("the first choice", Duration::from_secs(10), |lab| {
            let status = lab.cli(&["status"]);
            String::from_utf8_lossy(&status.stdout)
                .contains("route: default via 198.51.100.1 dev wan")
                && lab.route_device().is_some_and(|d| d == "wan")
        });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn signal(&mut self, signal: &str) {
        let pid = self.daemon.as_ref().expect("running").id().to_string();
        // `ip netns exec` execs the daemon, so the child's pid is the daemon's.
        sh(&["kill", signal, &pid]);
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within 5 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `work` on a thread that has entered the router namespace: sockets it opens live there.
    pub fn in_router<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        spawn_in(&self.router, work).join().expect("thread in the router namespace")
    }

    /// A netlink socket that lives in the router namespace.
    pub fn netlink(&self) -> Socket {
        self.in_router(|| Socket::open(0).expect("netlink socket"))
    }

    /// The state of a link as the daemon reports it (`up`, `dead`, ...).
    pub fn link_state(&self, name: &str) -> Option<String> {
        use wanmon::json::{self, Value};
        let out = self.cli(&["status", "--json"]);
        let doc = json::parse(&String::from_utf8_lossy(&out.stdout)).ok()?;
        let field = |value: &Value, key: &str| match value {
            Value::Object(members) => {
                members.iter().find(|(k, _)| k == key).map(|(_, v)| v.value.clone())
            }
            _ => None,
        };
        let Some(Value::Array(links)) = field(&doc.value, "links") else { return None };
        let link =
            links.iter().find(|l| field(&l.value, "name") == Some(Value::String(name.into())))?;
        match field(&link.value, "state") {
            Some(Value::String(state)) => Some(state),
            _ => None,
        }
    }

    /// The device the kernel routes ordinary traffic to the target through.
    pub fn route_device(&self) -> Option<String> {
        self.route_device_to(TARGET)
    }

    pub fn route_device_to(&self, target: &str) -> Option<String> {
        let mut socket = self.netlink();
        let route = socket.route_to(&target.parse::<IpAddr>().ok()?, 0).ok()?;
        device_name(&mut socket, route.oif?)
    }

    /// The device of the default route in one of wanmon's tables, read from the kernel.
    pub fn table_device(&self, table: u32) -> Option<String> {
        let mut socket = self.netlink();
        let mut oif = None;
        socket
            .dump(DumpKind::Routes, 0, |_, payload| {
                if let Some(r) =
                    netlink::parse_route(payload).filter(|r| r.table == table && r.dst_len == 0)
                {
                    oif = r.oif;
                }
            })
            .ok()?;
        device_name(&mut socket, oif?)
    }

    pub fn our_rules(&self) -> usize {
        let mut count = 0;
        self.netlink()
            .dump(DumpKind::Rules, 0, |_, payload| {
                count += usize::from(
                    netlink::parse_rule(payload).is_some_and(|r| r.protocol == protocol::PROTOCOL),
                );
            })
            .expect("rule dump");
        count
    }

    /// (our routes in any table, the system's default routes in main)
    pub fn routes(&self) -> (usize, usize) {
        let (mut ours, mut system) = (0, 0);
        self.netlink()
            .dump(DumpKind::Routes, 0, |_, payload| {
                if let Some(r) = netlink::parse_route(payload) {
                    ours += usize::from(r.protocol == protocol::PROTOCOL);
                    system += usize::from(
                        r.dst_len == 0
                            && r.table == netlink::RT_TABLE_MAIN
                            && r.protocol != protocol::PROTOCOL,
                    );
                }
            })
            .expect("route dump");
        (ours, system)
    }

    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        condition: impl Fn(&Lab) -> bool,
    ) -> Duration {
        let start = Instant::now();
        while start.elapsed() < limit {
            if condition(self) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = self.cli(&["status"]);
        panic!(
            "waited {limit:?} for {what}\ndaemon log:\n{}\nstatus:\n{}",
            self.log(),
            String::from_utf8_lossy(&status.stdout)
        );
    }

    pub fn drop_all(&self, isp: &str, on: bool) {
        if on {
            sh(&["ip", "netns", "exec", isp, "nft", "add", "table", "inet", "wmtest"]);
            sh(&[
                "ip",
                "netns",
                "exec",
                isp,
                "nft",
                "add",
                "chain",
                "inet",
                "wmtest",
                "in",
                "{ type filter hook input priority 0; policy drop; }",
            ]);
        } else {
            sh(&["ip", "netns", "exec", isp, "nft", "delete", "table", "inet", "wmtest"]);
        }
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        daemon_in(&self.router)
            .args(args)
            .args(["--socket", &self.socket()])
            .output()
            .expect("cli runs")
    }

    /// An HTTP request to the daemon's web server from inside the router namespace.
    pub fn http(&self, request: &str) -> String {
        use std::io::{Read, Write};
        let request = request.to_string();
        self.in_router(move || {
            let mut stream =
                std::net::TcpStream::connect("127.0.0.1:8080").expect("web server answers");
            stream.write_all(request.as_bytes()).expect("send");
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        })
    }

    /// A netlink socket in the router namespace subscribed to link events.
    pub fn link_events(&self) -> Socket {
        self.in_router(|| Socket::open(1).expect("netlink event socket"))
    }

    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.daemon.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
    }
}

/// Waits for the kernel to announce that `device` lost its carrier; returns when it did.
/// The name of the device with this index, from the kernel's link dump.
pub fn device_name(socket: &mut Socket, index: u32) -> Option<String> {
    let mut name = None;
    socket
        .dump(DumpKind::Links, 0, |_, payload| {
            if let Some(link) = netlink::parse_link(payload).filter(|l| l.index == index) {
                name = Some(link.name);
            }
        })
        .ok()?;
    name
}

pub fn wait_no_carrier(events: &Socket, device: &str) -> Instant {
    let start = Instant::now();
    let mut buffer = vec![0u8; 16 * 1024];
    while start.elapsed() < Duration::from_secs(3) {
        let len = events.receive(&mut buffer).expect("netlink events");
        if len == 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        for message in netlink::messages(&buffer[..len]) {
            if message.kind == netlink::RTM_NEWLINK {
                if let Some(link) = netlink::parse_link(message.payload) {
                    if link.name == device && link.flags & netlink::IFF_LOWER_UP == 0 {
                        return Instant::now();
                    }
                }
            }
        }
    }
    panic!("the kernel never announced that {device} lost its carrier");
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.router, &self.isp_a, &self.isp_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
