//! `cargo xtask openwrt`: the packages on OpenWrt's own userland (netifd, procd, ubusd, apk 3,
//! built from upstream sources by `../shared/openwrt-userland/`), as a user meets them: installed
//! with apk, started by procd, a bad config refused with the reason in `logread`, a reload, a
//! crash respawned, an outage of the wired uplink, an upgrade that keeps the edited config, links
//! found through netifd ([`crate::netifd`]), and removal that hands routing back. Every verdict
//! is read from the router's kernel tables, `logread`, apk and procd, not from wanmon's own
//! report.

use crate::owrt::{self, exec};
use crate::{is_root, root};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// wanmon's config for the harness router: `wan` on eth1 (ISP 1), `wwan` on eth2 (ISP 2), each
/// probing its ISP's address, the gateways given: the harness's interfaces have no metric, as a
/// stock config, so netifd's second default route replaced the first in the main table.
const CONFIG: &str = r#"{
  "web": { "listen": null },
  "links": [
    { "name": "wan", "device": "eth1", "gateway": "192.0.2.1", "targets": ["192.0.2.1"] },
    { "name": "wwan", "device": "eth2", "gateway": "198.51.100.1", "targets": ["198.51.100.1"], "bias": 30 }
  ]
}
"#;

/// The router, taken down whatever happens.
struct Router;

impl Router {
    fn up() -> Result<Router, String> {
        let _ = owrt::router(&["down"]);
        let out = owrt::router(&["up"])?;
        if !out.status.success() {
            return Err(format!("router.sh up failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(Router)
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = owrt::router(&["down"]);
    }
}

/// Waits up to `limit` for `check` to hold; its last answer says why not.
pub(crate) fn within(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool, String>,
) -> Result<f64, String> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(start.elapsed().as_secs_f64());
        }
        if start.elapsed() > limit {
            return Err(format!("{what}: not within {:.0} s", limit.as_secs_f64()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// wanmon's default route, as the router's kernel holds it (its table 22349). The kernel drops
/// a table with its last route, so between a restart's cleanup and the new daemon's first route
/// "table does not exist" is no route yet, not a failure.
pub(crate) fn default_route() -> Result<String, String> {
    default_route_of("-4")
}

/// wanmon's default route of one address family (`-4` or `-6`).
pub(crate) fn default_route_of(family: &str) -> Result<String, String> {
    match exec(&format!("ip {family} route show table 22349 default")) {
        Ok(routes) => Ok(routes.trim().to_string()),
        Err(e) if e.contains("FIB table does not exist") => Ok(String::new()),
        Err(e) => Err(e),
    }
}

fn running() -> Result<bool, String> {
    Ok(exec("ubus call service list '{\"name\":\"wanmon\"}'")?.contains("\"running\": true"))
}

/// The daemon's pid as procd holds it for the service's instance, empty when none runs. Not
/// `pidof wanmon`: that names every `wanmon` process of the moment, and under CI's load it
/// named a second one beside the daemon ("981 980") as often as it found none yet.
pub(crate) fn daemon_pid() -> Result<String, String> {
    let pid = exec(
        "ubus call service list '{\"name\":\"wanmon\"}' \
         | jsonfilter -e '@.wanmon.instances.*.pid' || true",
    )?;
    Ok(pid.trim().to_string())
}

/// Whether any process named `wanmon` runs: the daemon, or a command of its.
fn any_wanmon_process() -> Result<bool, String> {
    Ok(!exec("pidof wanmon || true")?.trim().is_empty())
}

/// The pid of a daemon that is up: procd reports an instance (and its pid) as soon as it has
/// forked it, while the unpacker is still starting the daemon. A pid to compare with later is
/// taken once the daemon answers on its control socket.
pub(crate) fn running_pid() -> Result<String, String> {
    within(Duration::from_secs(10), "wanmon answers", || {
        Ok(exec("wanmon status >/dev/null 2>&1 && echo up || true")?.contains("up"))
    })?;
    daemon_pid()
}

/// A step of the test, printed with what it showed.
pub(crate) fn check(
    name: &str,
    body: impl FnOnce() -> Result<String, String>,
) -> Result<(), String> {
    let shown = body().map_err(|e| format!("{name}: {e}"))?;
    println!("  ok  {name}: {shown}");
    Ok(())
}

pub(crate) fn write_config(text: &str) -> Result<(), String> {
    let file = root().join("target/owrt-state/wanmon-config.json");
    std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let out = owrt::router(&["cp", &file.display().to_string(), "/etc/wanmon/config.json"])?;
    if out.status.success() { Ok(()) } else { Err("router.sh cp failed".into()) }
}

pub(crate) fn install(package: &Path) -> Result<String, String> {
    let out = owrt::router(&["install-apk", &package.display().to_string()])?;
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() { Ok(said) } else { Err(format!("apk add failed: {said}")) }
}

/// The same package at a later release (`r2`, `r3`): what an upgrade installs.
fn later_release(daemon: &Path, release: u32) -> Result<PathBuf, String> {
    let stage = root().join("target/dist/x86_64/stage-apk/wanmon");
    let upgrade = root().join("target/dist/x86_64/stage-apk/post-upgrade");
    let image = root().join("openwrt-image/control");
    let scripts = [
        ("post-install", image.join("postinst")),
        ("post-upgrade", upgrade),
        ("pre-deinstall", image.join("prerm")),
    ];
    let out = daemon.with_file_name(format!("wanmon-next-r{release}.apk"));
    let meta = crate::apk::Meta {
        name: "wanmon",
        arch: "x86_64",
        depends: &crate::package::DAEMON_DEPENDS.join(" "),
        description: "wanmon, the next release",
        conffiles: &["/etc/wanmon/config.json"],
        scripts: &scripts,
    };
    let version = format!("{}-r{release}", crate::package::version());
    crate::apk::build_version(&stage, &meta, &out, &version)?;
    Ok(out)
}

pub fn openwrt(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(format!("openwrt: got {args:?}; usage: cargo xtask openwrt"));
    }
    if !is_root() {
        return Err("openwrt: needs root (network namespaces, the harness router)".into());
    }
    owrt::ensure_built()?;
    crate::dist::dist(&["--target".to_string(), "x86_64".to_string()])?;
    let daemon =
        root().join(format!("target/dist/apk/x86_64/wanmon-{}.apk", crate::apk::apk_version()));
    let upgrade = later_release(&daemon, 2)?;
    let started = Instant::now();
    let _router = Router::up()?;
    println!(
        "OpenWrt's userland up (netifd, procd, ubusd, fw4, apk 3) in namespace {}",
        owrt::NETNS
    );
    lifecycle(&upgrade)?;
    println!("OpenWrt harness: every check passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A stand-in for a package every image has and the harness's apk database lacks: `libc` (its
/// C library is the host's), `luci-base` (it runs no LuCI, only its rpcd and uhttpd): an empty
/// package of that name.
fn stand_in(name: &'static str, arch: &'static str, version: &str) -> Result<PathBuf, String> {
    let dir = root().join(format!("target/owrt-state/stand-in-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data/lib/apk/packages"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = dir.join(format!("{name}.apk"));
    let meta = crate::apk::Meta {
        name,
        arch,
        depends: "",
        description: "stand-in for a package of the image",
        conffiles: &[],
        scripts: &[],
    };
    crate::apk::build_version(&dir.join("data"), &meta, &out, version)?;
    Ok(out)
}

fn lifecycle(upgrade: &Path) -> Result<(), String> {
    for name in crate::package::DAEMON_DEPENDS {
        install(&stand_in(name, "x86_64", "1.2.5-r1")?)?;
    }
    crate::owrt_deploy::first_install()?;
    check("started by procd at install", || {
        within(Duration::from_secs(10), "procd runs wanmon", running)?;
        Ok(format!("pid {}", daemon_pid()?))
    })?;
    check(
        "equal metrics: wan's system route replaced, the route stays on a link that can carry it",
        || {
            let stock = CONFIG
                .replace(r#""gateway": "192.0.2.1", "#, "")
                .replace(r#""gateway": "198.51.100.1", "#, "");
            write_config(&stock)?;
            exec("/etc/init.d/wanmon restart")?;
            within(Duration::from_secs(15), "a default route via eth2", || {
                Ok(default_route()?.contains("dev eth2"))
            })?;
            let log = exec("logread | grep 'wanmon.*link wan down' | tail -n 1")?;
            if !log.contains("no IPv4 gateway for eth1") {
                return Err(format!("logread does not say why wan cannot carry: {log:?}"));
            }
            Ok(format!("{}; {}", default_route()?, log.trim()))
        },
    )?;
    write_config(CONFIG)?;
    exec("/etc/init.d/wanmon restart")?;
    check("with the gateways given: default route on wan (kernel table 22349)", || {
        within(Duration::from_secs(15), "a default route via eth1", || {
            Ok(default_route()?.contains("dev eth1"))
        })?;
        default_route()
    })?;
    failover()?;
    bad_config_and_reload()?;
    respawn()?;
    let luci = root()
        .join(format!("target/dist/apk/noarch/luci-app-wanmon-{}.apk", crate::apk::apk_version()));
    crate::luci::backend(
        &luci,
        &stand_in("luci-base", "noarch", "25.300.1-r1")?,
        &CONFIG.replace("\"bias\": 30", "\"bias\": 40"),
    )?;
    upgrade_keeps_the_config(upgrade)?;
    crate::netifd::netifd(write_config)?;
    crate::owrt_ipv6::ipv6(write_config)?;
    remove()
}

fn failover() -> Result<(), String> {
    check("ISP 1 cable pulled: route to wwan", || {
        owrt::router(&["ns", "isp1", "ip", "link", "set", "eth0", "down"])?;
        let took = within(Duration::from_secs(5), "a default route via eth2", || {
            Ok(default_route()?.contains("dev eth2"))
        })?;
        Ok(format!("{took:.1} s, {}", default_route()?))
    })?;
    check("ISP 1 back: route back to wan after the failback hold", || {
        owrt::router(&["ns", "isp1", "ip", "link", "set", "eth0", "up"])?;
        let took = within(Duration::from_secs(60), "a default route via eth1", || {
            Ok(default_route()?.contains("dev eth1"))
        })?;
        Ok(format!("{took:.1} s"))
    })
}

fn bad_config_and_reload() -> Result<(), String> {
    check("a bad config is refused at start, the reason in logread", || {
        write_config(
            "{\"links\": [{\"name\": \"wan\", \"device\": \"eth1\", \"timeout_ms\": 0}]}",
        )?;
        let _ = exec("/etc/init.d/wanmon restart");
        within(Duration::from_secs(5), "wanmon stopped", || Ok(!running()?))?;
        let log = exec("logread | grep wanmon | grep timeout_ms | tail -n 1")?;
        if !log.contains("links[0].timeout_ms: got 0") {
            return Err(format!("logread does not say why: {log:?}"));
        }
        Ok(log.trim().to_string())
    })?;
    write_config(CONFIG)?;
    exec("/etc/init.d/wanmon start")?;
    within(Duration::from_secs(10), "procd runs wanmon again", running)?;
    check("reload applies a changed config without a restart", || {
        let pid = running_pid()?;
        write_config(&CONFIG.replace("\"bias\": 30", "\"bias\": 40"))?;
        exec("/etc/init.d/wanmon reload")?;
        within(Duration::from_secs(5), "the daemon logs the reload", || {
            Ok(exec("logread | grep wanmon | tail -n 20")?.contains("reload"))
        })?;
        let now = daemon_pid()?;
        if now != pid {
            return Err(format!("the daemon was restarted, not reloaded (pid {pid}, now {now:?})"));
        }
        Ok(format!("same pid {pid}, reload logged"))
    })
}

fn respawn() -> Result<(), String> {
    check("a crash is respawned by procd", || {
        let pid = running_pid()?;
        exec(&format!("kill -9 {pid}"))?;
        let took = within(Duration::from_secs(15), "a new wanmon", || {
            let now = daemon_pid()?;
            Ok(!now.is_empty() && now != pid)
        })?;
        Ok(format!("pid {pid} killed, {} running {took:.1} s later", daemon_pid()?))
    })
}

fn upgrade_keeps_the_config(upgrade: &Path) -> Result<(), String> {
    check("an upgrade keeps the config edited in LuCI and restarts the daemon", || {
        install(upgrade)?;
        let config = exec("cat /etc/wanmon/config.json")?;
        // Last edited in LuCI (bias 50).
        if !config.contains("\"bias\": 50") {
            return Err(format!("the edited config was replaced: {config}"));
        }
        within(Duration::from_secs(10), "procd runs wanmon", running)?;
        Ok(exec("apk list --installed wanmon")?.trim().to_string())
    })
}

fn remove() -> Result<(), String> {
    check("apk del (wanmon and luci-app-wanmon) stops wanmon and hands routing back", || {
        exec("apk del --no-network luci-app-wanmon wanmon")?;
        within(Duration::from_secs(5), "wanmon gone", || Ok(!any_wanmon_process()?))?;
        let rules = exec("ip rule show")?;
        let table = exec("ip route show table 22349 || true")?;
        if rules.contains("22349") || !table.trim().is_empty() {
            return Err(format!("routing left behind:\n{rules}{table}"));
        }
        let left = "ls /usr/sbin/wanmon /usr/libexec/rpcd/wanmon \
                    /usr/share/rpcd/acl.d/luci-app-wanmon.json 2>/dev/null || true";
        if !exec(left)?.trim().is_empty() {
            return Err(format!("files left behind: {}", exec(left)?));
        }
        Ok("no rule, no route, no file of either package".into())
    })
}
