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

/// After `--` every word is a link's name, even one that looks like an option: LuCI's rpcd plugin
/// passes the name it was given that way.
#[test]
fn force_takes_the_words_after_a_double_dash_as_the_link() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wanmon-cli-dashes");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("control.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).expect("bind");
    let daemon = std::thread::spawn(move || {
        let (mut client, _) = listener.accept().expect("the CLI connects");
        let mut line = [0u8; 64];
        let len = client.read(&mut line).expect("request");
        client.write_all(b"ok\nforced to --json").expect("answer");
        String::from_utf8_lossy(&line[..len]).into_owned()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_wanmon"))
        .arg("force")
        .arg("--socket")
        .arg(&socket)
        .args(["--", "--json"])
        .output()
        .expect("wanmon runs");
    assert_eq!(daemon.join().expect("the stand-in daemon"), "force --json\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "forced to --json\n");
    // Two words after `--` are one too many for force.
    let out = wanmon(&["force", "--", "a", "b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("force: expected 1 argument(s), got 2"));
}

/// `wanmon` brings its own C `main` (std's start-up costs flash): what of std's start-up
/// matters must still happen. A closed standard descriptor is opened on /dev/null, so that
/// nothing the daemon opens later becomes its stdin, stdout or stderr.
#[test]
fn a_closed_stdin_is_reopened_on_dev_null() {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_wanmon"));
    command.args(["check-config", "/proc/self/fd/0"]);
    // SAFETY: close(2) is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::close(0);
            Ok(())
        });
    }
    let out = command.output().expect("wanmon runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("cannot read"), "fd 0 is /dev/null, an empty file: {stderr}");
}

/// And a write to a closed pipe is an error the daemon handles, not a SIGPIPE that kills it.
#[test]
fn a_closed_stdout_does_not_kill_it() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut ends = [0; 2];
    // SAFETY: a valid two-descriptor array; the results are owned or closed right after.
    let write_end = unsafe {
        assert_eq!(libc::pipe(ends.as_mut_ptr()), 0);
        libc::close(ends[0]);
        OwnedFd::from_raw_fd(ends[1])
    };
    let status = Command::new(env!("CARGO_BIN_EXE_wanmon"))
        .arg("--help")
        .stdout(std::process::Stdio::from(write_end))
        .status()
        .expect("wanmon runs");
    assert_eq!(status.code(), Some(0), "not killed by a signal: {status}");
}

#[test]
fn an_argument_that_is_not_text_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_wanmon"))
        .args([std::ffi::OsStr::new("force"), std::ffi::OsStr::from_bytes(b"w\xffan")])
        .output()
        .expect("wanmon runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("wanmon: argument 2 is not UTF-8"));
}
