//! The `wanmon` command line: good and bad config files, and commands it does not know.

use std::process::{Command, Output};

fn wanmon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wanmon")).args(args).output().expect("wanmon runs")
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    // Under target/, not /tmp: nothing is left on the machine after the tests.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wanmon-cli");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file");
    path
}

#[test]
fn version_prints_the_package_version() {
    let out = wanmon(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("wanmon {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_a_valid_file() {
    let path = temp_file(
        "good.json",
        r#"{"links": [{"name": "wan", "device": "eth0.2"}, {"name": "wwan", "device": "wlan0"}]}"#,
    );
    let out = wanmon(&["check-config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("ok, 2 links: wan, wwan\n"));
}

#[test]
fn check_config_prints_every_error_with_file_line_and_key_and_fails() {
    let path = temp_file(
        "bad.json",
        "{\n  \"loss_divisor\": 0,\n  \"links\": [{\"name\": \"wan\", \"device\": \"eth0.2\", \"interval_ms\": -5}]\n}\n",
    );
    let shown = path.to_str().unwrap();
    let out = wanmon(&["check-config", shown]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        format!(
            "{shown}:line 2: loss_divisor: got 0, expected a number from 0.01 to 1000000 with at most two decimals\n\
             {shown}:line 3: links[0].interval_ms: got -5, expected a whole number from 100 to 3600000 (ms)\n\
             {shown}: 2 error(s), config refused\n"
        )
    );
}

#[test]
fn check_config_names_a_file_it_cannot_read() {
    let out = wanmon(&["check-config", "/nonexistent/wanmon.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("/nonexistent/wanmon.json: cannot read: ")
    );
}

#[test]
fn unknown_commands_and_missing_arguments_are_usage_errors() {
    for args in [
        &["frobnicate"][..],
        &["check-config"],
        &[],
        &["run"],
        &["status", "extra"],
        &["force"],
        &["status", "--bogus"],
        &["run", "--config"],
    ] {
        let out = wanmon(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("usage:\n  wanmon run --config FILE"),
            "{args:?}"
        );
    }
}
