//! The LuCI backend of `luci-app-wanmon` on OpenWrt's own rpcd and uhttpd, called as LuCI calls
//! it: JSON-RPC over HTTP at `/ubus` from the LAN, with a login session and the package's ACL.
//! Status, the links the stock firewall would not masquerade (and the fix, run as given), the
//! config as text, a refused save (every mistake named, the file and the daemon untouched), a
//! save that is applied by a reload, and a caller without a login turned away.

use crate::owrt::{self, exec};
use std::path::Path;
use std::time::Duration;

/// The harness's uhttpd, seen from its LAN namespace.
const UBUS: &str = "http://203.0.113.1/ubus";
const NO_SESSION: &str = "00000000000000000000000000000000";

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One JSON-RPC `call` from the LAN; the whole answer.
fn call(session: &str, object: &str, method: &str, arguments: &str) -> Result<String, String> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"call","params":["{session}","{object}","{method}",{arguments}]}}"#
    );
    let out = owrt::router(&["ns", "lan", "curl", "-s", "--max-time", "10", UBUS, "-d", &body])?;
    if !out.status.success() {
        return Err(format!("curl {UBUS} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Logs in as LuCI does; the session id.
fn login() -> Result<String, String> {
    let answer =
        call(NO_SESSION, "session", "login", r#"{"username":"root","password":"openwrt-test"}"#)?;
    let key = "\"ubus_rpc_session\":";
    let start = answer.find(key).ok_or_else(|| format!("no session in {answer}"))? + key.len();
    let rest = answer[start..].trim_start().trim_start_matches('"');
    Ok(rest.split('"').next().unwrap_or_default().to_string())
}

pub fn backend(luci: &Path, luci_base: &Path, config: &str) -> Result<(), String> {
    crate::openwrt::check("luci-app-wanmon installed with apk; rpcd serves its ACL", || {
        crate::openwrt::install(luci_base)?;
        crate::openwrt::install(luci)?;
        exec("/etc/init.d/rpcd restart")?;
        crate::openwrt::within(Duration::from_secs(10), "rpcd serves wanmon", || {
            Ok(exec("ubus list wanmon 2>/dev/null || true")?.contains("wanmon"))
        })?;
        Ok(exec("apk list --installed luci-app-wanmon")?.trim().to_string())
    })?;
    let session = login()?;
    crate::openwrt::check("status over JSON-RPC from the LAN", || {
        let answer = call(&session, "wanmon", "status", "{}")?;
        if !answer.contains("\"links\"") || !answer.contains("\"eth1\"") {
            return Err(format!("no status: {answer}"));
        }
        Ok(format!("{} bytes of status", answer.len()))
    })?;
    force_and_auto(&session)?;
    crate::openwrt::check("the config as text", || {
        let answer = call(&session, "wanmon", "config", "{}")?;
        if !answer.contains("\\\"bias\\\"") {
            return Err(format!("not the config: {answer}"));
        }
        Ok("the file's text".into())
    })?;
    zones(&session, config)?;
    refused_save(&session)?;
    applied_save(&session, config)?;
    crate::openwrt::check("without a login, saving is denied", || {
        let answer = call(
            NO_SESSION,
            "wanmon",
            "save",
            &format!(r#"{{"config":{}}}"#, json_string(config)),
        )?;
        if !answer.contains("-32002") {
            return Err(format!("not denied: {answer}"));
        }
        Ok("Access denied (-32002)".into())
    })
}

/// Force onto the link that has the route (the route stays where the later checks expect it) and
/// back to auto; a request that names no link answers an error, and only a name that can be a
/// link reaches the daemon (`--json` does, after `--`, and is no link).
fn force_and_auto(session: &str) -> Result<(), String> {
    crate::openwrt::check("force and auto over JSON-RPC, bad links refused", || {
        let forced = call(session, "wanmon", "force", r#"{"link":"wan"}"#)?.replace("\": ", "\":");
        let status = call(session, "wanmon", "status", "{}")?.replace("\": ", "\":");
        let auto = call(session, "wanmon", "auto", "{}")?.replace("\": ", "\":");
        let after = call(session, "wanmon", "status", "{}")?.replace("\": ", "\":");
        if !forced.contains(r#""message":"forced to wan""#)
            || !status.contains(r#""forced":"wan""#)
            || !auto.contains(r#""message":"automatic choice restored""#)
            || !after.contains(r#""forced":null"#)
        {
            return Err(format!("force: {forced}\nstatus: {status}\nauto: {auto}\nafter: {after}"));
        }
        for (arguments, error) in [
            (r#"{"link":3}"#, r#"expected {\"link\": NAME}"#),
            ("{}", r#"expected {\"link\": NAME}"#),
            (r#"{"link":"a b"}"#, r#"no link named \"a b\" in the config"#),
            (r#"{"link":"lte"}"#, r#"no link named \"lte\" in the config"#),
            (r#"{"link":"--json"}"#, r#"no link named \"--json\" in the config"#),
        ] {
            let answer = call(session, "wanmon", "force", arguments)?;
            if !answer.contains("\"error\"") || !answer.contains(error) {
                return Err(format!("force {arguments}: {answer}"));
            }
        }
        Ok("forced to wan, automatic choice restored; 3, {}, \"a b\", lte, --json refused".into())
    })
}

/// Whether a LAN host reaches ISP 2's address, which only a masqueraded packet can (the ISPs
/// have no route back to the LAN).
fn lan_reaches_isp2() -> Result<bool, String> {
    let out = owrt::router(&["ns", "lan", "ping", "-c", "1", "-W", "2", "198.51.100.1"])?;
    Ok(out.status.success())
}

/// The stock firewall: fw4's wan zone lists wan and wan6, not wwan. wanmon says so (log, its
/// status, so LuCI) with the commands that fix it; `require_masquerade` keeps the route off
/// such a link; the fix, run as given, works.
fn zones(session: &str, config: &str) -> Result<(), String> {
    crate::openwrt::check("stock firewall: wwan in no masquerading zone, said with the fix", || {
        let answer = call(session, "wanmon", "status", "{}")?;
        if answer.matches("no firewall zone with masquerading").count() != 1
            || !answer.contains("interface wwan is in no firewall zone")
        {
            return Err(format!("wwan (and only wwan) should be warned about: {answer}"));
        }
        let log = exec("logread | grep 'wanmon.*no firewall zone' | tail -n 1")?;
        if !log.contains("link wwan: interface wwan is in no firewall zone") {
            return Err(format!("not in the log: {log:?}"));
        }
        if lan_reaches_isp2()? {
            return Err(
                "the LAN reaches ISP 2 without masquerading: the check means nothing".into()
            );
        }
        require_masquerade(session, config)?;
        let key = "Fix: ";
        let start = answer.find(key).ok_or("no fix given")? + key.len();
        let fix = answer[start..].split('"').next().unwrap_or_default().to_string();
        exec(&fix)?;
        let after = call(session, "wanmon", "status", "{}")?;
        if after.contains("no firewall zone") {
            return Err(format!("still warned about after the fix: {after}"));
        }
        if !lan_reaches_isp2()? {
            return Err("the LAN still cannot reach ISP 2 after the fix".into());
        }
        Ok(format!(
            "{}; with require_masquerade wwan is disabled; after the fix, the LAN reaches ISP 2",
            log.trim()
        ))
    })
}

/// With `"require_masquerade": true`, such a link is disabled: the route never goes there.
fn require_masquerade(session: &str, config: &str) -> Result<(), String> {
    let strict = config.replacen('{', r#"{ "require_masquerade": true,"#, 1);
    crate::openwrt::write_config(&strict)?;
    exec("/etc/init.d/wanmon reload")?;
    let disabled = crate::openwrt::within(Duration::from_secs(5), "wwan disabled", || {
        let status = call(session, "wanmon", "status", "{}")?.replace("\": \"", "\":\"");
        Ok(status.contains("\"state\":\"disabled\"")
            && status.contains("disabled (require_masquerade): interface wwan"))
    });
    crate::openwrt::write_config(config)?;
    exec("/etc/init.d/wanmon reload")?;
    disabled.map(|_| ())
}

fn refused_save(session: &str) -> Result<(), String> {
    crate::openwrt::check("a config with a mistake is refused, named, and changes nothing", || {
        let before = exec("cat /etc/wanmon/config.json")?;
        let pid = crate::openwrt::running_pid()?;
        let broken = "{\"links\": [{\"name\": \"wan\", \"device\": \"eth1\", \"timeout_ms\": 0}]}";
        let arguments = format!(r#"{{"config":{}}}"#, json_string(broken));
        let answer = call(session, "wanmon", "save", &arguments)?;
        if !answer.contains("line 1: links[0].timeout_ms: got 0") {
            return Err(format!("the mistake is not named: {answer}"));
        }
        if exec("cat /etc/wanmon/config.json")? != before || crate::openwrt::daemon_pid()? != pid {
            return Err("a refused config changed the file or the daemon".into());
        }
        Ok("line 1: links[0].timeout_ms: got 0, ...; file and daemon unchanged".into())
    })
}

fn applied_save(session: &str, config: &str) -> Result<(), String> {
    crate::openwrt::check("a valid config is saved and applied by a reload", || {
        let pid = crate::openwrt::running_pid()?;
        let edited =
            config.replace("\"bias\": 40", "\"bias\": 50").replace("\"bias\": 30", "\"bias\": 50");
        let arguments = format!(r#"{{"config":{}}}"#, json_string(&edited));
        let answer = call(session, "wanmon", "save", &arguments)?;
        if !answer.contains("saved and applied") {
            return Err(format!("not saved: {answer}"));
        }
        if !exec("cat /etc/wanmon/config.json")?.contains("\"bias\": 50") {
            return Err("the file does not hold the saved config".into());
        }
        crate::openwrt::within(Duration::from_secs(5), "the daemon reloads", || {
            Ok(exec("logread | grep wanmon | tail -n 5")?.contains("config reloaded"))
        })?;
        let now = crate::openwrt::daemon_pid()?;
        if now != pid {
            return Err(format!("the daemon was restarted, not reloaded (pid {pid}, now {now:?})"));
        }
        Ok(format!("file written, same pid {pid}, reload logged"))
    })
}
