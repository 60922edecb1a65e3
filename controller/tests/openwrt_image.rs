//! Keeps `openwrt-image/` consistent: the default config is valid, the LuCI files are valid JSON
//! and grant exactly what the rpcd plugin offers, the scripts parse, the Makefile installs
//! every file, and the config survives upgrades.

use std::path::Path;
use std::process::Command;
use wanmon::core::Config;
use wanmon::json::{self, Value};

fn image(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openwrt-image").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn object<'a>(value: &'a Value, key: &str) -> &'a Value {
    match value {
        Value::Object(members) => {
            &members
                .iter()
                .find(|(k, _)| k == key)
                .unwrap_or_else(|| panic!("no key {key}"))
                .1
                .value
        }
        other => panic!("not an object: {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|i| match &i.value {
                Value::String(s) => s.clone(),
                other => panic!("not a string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn the_default_config_is_valid() {
    let text = image("files/etc/wanmon/config.json");
    let config = Config::from_json(&text).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(config.links.len() >= 2, "a primary and a backup");
    let out = Command::new(env!("CARGO_BIN_EXE_wanmon"))
        .args([
            "check-config",
            &format!(
                "{}/../openwrt-image/files/etc/wanmon/config.json",
                env!("CARGO_MANIFEST_DIR")
            ),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_config_survives_upgrades() {
    // A conffile: package upgrades keep the user's edits, and sysupgrade keeps every conffile
    // that differs from the package's (its list_changed_conffiles), so no keep.d entry.
    assert_eq!(image("control/conffiles").trim(), "/etc/wanmon/config.json");
    let keep = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openwrt-image/files/lib/upgrade");
    assert!(!keep.exists(), "{} would list the conffile a second time", keep.display());
}

#[test]
fn the_luci_acl_grants_what_the_rpcd_plugin_offers() {
    let acl =
        json::parse(&image("luci/usr/share/rpcd/acl.d/luci-app-wanmon.json")).expect("valid JSON");
    let app = object(&acl.value, "luci-app-wanmon");
    let read = strings(object(object(object(app, "read"), "ubus"), "wanmon"));
    let write = strings(object(object(object(app, "write"), "ubus"), "wanmon"));
    assert_eq!(read, ["status", "config"]);
    assert_eq!(write, ["force", "auto", "save"]);
    // The plugin lists every method, the daemon's and the config's, and nothing else.
    let plugin =
        format!("{}/../openwrt-image/luci/usr/libexec/rpcd/wanmon", env!("CARGO_MANIFEST_DIR"));
    let listed = Command::new("sh").args([&plugin, "list"]).output().unwrap();
    let methods =
        json::parse(&String::from_utf8_lossy(&listed.stdout)).expect("the plugin lists JSON");
    let Value::Object(members) = methods.value else { panic!("rpcd list prints an object") };
    let names: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["status", "force", "auto", "config", "save"]);
    // status, force and auto go through the daemon's command line.
    let plugin_text = std::fs::read_to_string(&plugin).unwrap();
    for command in ["status --json", "force -- \"$link\"", "ask auto"] {
        assert!(plugin_text.contains(command), "the plugin runs {command}");
    }
    let menu =
        json::parse(&image("luci/usr/share/luci/menu.d/luci-app-wanmon.json")).expect("valid JSON");
    let entry = object(&menu.value, "admin/status/wanmon");
    assert_eq!(object(object(entry, "action"), "path"), &Value::String("wanmon/status".into()));
    let entry = object(&menu.value, "admin/services/wanmon");
    assert_eq!(object(object(entry, "action"), "path"), &Value::String("wanmon/config".into()));
    let view = image("luci/www/luci-static/resources/view/wanmon/status.js");
    for method in ["'status'", "'force'", "'auto'"] {
        assert!(view.contains(method), "the view calls {method}");
    }
    let config = image("luci/www/luci-static/resources/view/wanmon/config.js");
    for method in ["'config'", "'save'"] {
        assert!(config.contains(method), "the config view calls {method}");
    }
    for text in [view, config] {
        assert!(!text.contains("innerHTML"), "the views build text nodes only");
    }
}

#[test]
fn the_scripts_parse_and_the_service_is_procd_managed() {
    for script in [
        "files/etc/init.d/wanmon",
        "luci/usr/libexec/rpcd/wanmon",
        "control/postinst",
        "control/prerm",
        "control/luci-postinst",
    ] {
        let path = format!("{}/../openwrt-image/{script}", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("sh").args(["-n", &path]).output().unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111,
            0o111,
            "{script} is executable"
        );
    }
    // Sourced, not run (hotplug-call sources its scripts): it only has to parse.
    let hotplug = format!(
        "{}/../openwrt-image/files/etc/hotplug.d/iface/95-wanmon",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("sh").args(["-n", &hotplug]).output().unwrap();
    assert!(out.status.success(), "95-wanmon: {}", String::from_utf8_lossy(&out.stderr));
    let init = image("files/etc/init.d/wanmon");
    for needed in [
        "USE_PROCD=1",
        "procd_set_param respawn",
        "check-config",
        "procd_send_signal wanmon '*' HUP",
        "run --config",
    ] {
        assert!(init.contains(needed), "the init script lacks {needed}");
    }
}

#[test]
fn the_feed_makefile_installs_every_file() {
    let makefile = image("Makefile");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openwrt-image");
    let mut files = Vec::new();
    for dir in ["files", "luci"] {
        let mut stack = vec![root.join(dir)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    files.push(entry.path().strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
    }
    assert!(files.len() >= 7);
    for file in files {
        let name = Path::new(&file).file_name().unwrap().to_string_lossy().to_string();
        assert!(makefile.contains(&name), "the Makefile does not install {file}");
    }
}
