//! `cargo xtask deploy` against a real OpenSSH server: the "router" is a network namespace whose
//! sshd runs in its own mount namespace, with a stand-in `opkg` that records what it was asked
//! and a stand-in init script, so nothing on this machine is installed or restarted.
//! Needs root (namespaces); `cargo xtask ci` runs it with `--include-ignored`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn sh(args: &[&str]) -> Output {
    let out =
        Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("test setup");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("test setup");
}

struct Router {
    client: String,
    server: String,
    dir: PathBuf,
    sshd: Option<Child>,
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(mut sshd) = self.sshd.take() {
            let _ = sshd.kill();
            let _ = sshd.wait();
        }
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One router at a time: they share the sshd setup.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn router(tag: &str) -> Router {
    router_with(tag, None)
}

/// A router; with `chroot`, sshd confines the session to that directory (a router without opkg).
fn router_with(tag: &str, chroot: Option<&Path>) -> Router {
    let uid = String::from_utf8(sh(&["id", "-u"]).stdout).unwrap_or_default();
    assert_eq!(uid.trim(), "0", "needs root for namespaces: run `sudo cargo xtask ci`");
    for tool in ["/usr/sbin/sshd", "/usr/bin/scp", "/usr/bin/ssh-keygen", "/usr/bin/unshare"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing (apt-get install openssh-server openssh-client; `cargo xtask ci` installs them)"
        );
    }
    let id = format!("{tag}{}", std::process::id() % 100_000);
    let mut r = Router {
        client: format!("wmdc-{id}"),
        server: format!("wmds-{id}"),
        dir: std::env::temp_dir().join(format!("wanmon-deploy-{id}")),
        sshd: None,
    };
    let _ = std::fs::remove_dir_all(&r.dir);
    std::fs::create_dir_all(r.dir.join("bin")).expect("test setup");
    for ns in [&r.client, &r.server] {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
        sh(&["ip", "netns", "add", ns]);
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    sh(&[
        "ip", "link", "add", "lan", "netns", &r.client, "type", "veth", "peer", "name", "lan",
        "netns", &r.server,
    ]);
    sh(&["ip", "-n", &r.client, "addr", "add", "192.0.2.2/24", "dev", "lan"]);
    sh(&["ip", "-n", &r.server, "addr", "add", "192.0.2.1/24", "dev", "lan"]);
    sh(&["ip", "-n", &r.client, "link", "set", "lan", "up"]);
    sh(&["ip", "-n", &r.server, "link", "set", "lan", "up"]);
    let d = r.dir.display().to_string();
    sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", &format!("{d}/host_key")]);
    sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", &format!("{d}/client_key")]);
    std::fs::copy(format!("{d}/client_key.pub"), format!("{d}/authorized_keys"))
        .expect("test setup");
    executable(&r.dir.join("bin/opkg"), &format!("#!/bin/sh\necho \"opkg $*\" >> {d}/calls.log\n"));
    executable(
        &r.dir.join("bin/wanmon"),
        &format!(
            "#!/bin/sh\necho \"wanmon $*\" >> {d}/calls.log\necho 'stand-in wanmon: status'\n"
        ),
    );
    executable(
        &r.dir.join("init-wanmon"),
        &format!("#!/bin/sh\necho \"init.d/wanmon $*\" >> {d}/calls.log\n"),
    );
    std::fs::write(
        r.dir.join("sshd_config"),
        format!(
            "Port 2222\nListenAddress 192.0.2.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             Subsystem sftp internal-sftp\n{}"
        , match chroot {
            Some(root) => format!("ChrootDirectory {}\nSetEnv PATH=/bin:/usr/bin:/usr/sbin\n", root.display()),
            None => format!("SetEnv PATH={d}/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"),
        }),
    )
    .expect("test setup");
    std::fs::create_dir_all("/run/sshd").expect("test setup");
    // The server's own mount namespace: /etc/init.d there is a tmpfs holding the stand-in.
    let start = format!(
        "mount -t tmpfs tmpfs /etc/init.d && cp {d}/init-wanmon /etc/init.d/wanmon && exec /usr/sbin/sshd -D -e -f {d}/sshd_config 2>>{d}/sshd.log"
    );
    let sshd = Command::new("ip")
        .args([
            "netns",
            "exec",
            &r.server,
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &start,
        ])
        .spawn()
        .expect("test setup");
    r.sshd = Some(sshd);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(r.dir.join("sshd.log"))
        .unwrap_or_default()
        .contains("Server listening")
    {
        assert!(
            Instant::now() < deadline,
            "sshd did not start: {}",
            std::fs::read_to_string(r.dir.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    r
}

/// An ssh_config that trusts the test host key on first use, as a first deploy to a freshly
/// flashed router would.
fn trusting_ssh_config(r: &Router) -> String {
    let config = r.dir.join("ssh_config");
    let text = format!(
        "StrictHostKeyChecking accept-new\nUserKnownHostsFile {}/known_hosts\n",
        r.dir.display()
    );
    std::fs::write(&config, text).expect("test setup");
    config.display().to_string()
}

fn deploy(r: &Router, extra: &[&str]) -> Output {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &r.client,
            env!("CARGO_BIN_EXE_xtask"),
            "deploy",
            "--host",
            "root@192.0.2.1",
            "--port",
            "2222",
        ])
        .args(["--identity", &format!("{}/client_key", r.dir.display())])
        .args(extra)
        .output()
        .expect("test setup")
}

#[test]
#[ignore = "needs root: network and mount namespaces"]
fn deploy_copies_installs_restarts_and_shows_the_status() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = router("i");
    let package = r.dir.join("wanmon_0.1.0_mipsel_24kc.ipk");
    std::fs::write(&package, b"not really a package, opkg here is a stand-in").expect("test setup");
    let (package, config) = (package.display().to_string(), trusting_ssh_config(&r));
    let out = deploy(&r, &["--package", &package, "--ssh-config", &config]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("$ scp -O -P 2222"), "{stdout}");
    assert!(stdout.contains("stand-in wanmon: status"), "the status is printed: {stdout}");
    let calls = std::fs::read_to_string(r.dir.join("calls.log")).expect("test setup");
    assert_eq!(
        calls,
        "opkg install --force-reinstall /tmp/wanmon_0.1.0_mipsel_24kc.ipk\ninit.d/wanmon restart\nwanmon status\n"
    );
    assert!(
        !Path::new("/tmp/wanmon_0.1.0_mipsel_24kc.ipk").exists(),
        "the copy on the router is removed after install"
    );
}

#[test]
#[ignore = "needs root: network and mount namespaces"]
fn a_dry_run_only_shows_the_commands_and_a_bad_host_is_refused() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = router("d");
    let out = deploy(&r, &["--dry-run", "--package", "/nonexistent.ipk"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("$ scp -O") && stdout.contains("opkg install --force-reinstall"),
        "{stdout}"
    );
    assert!(!r.dir.join("calls.log").exists(), "nothing ran on the router");
    let refused = deploy(&r, &["--package", "/nonexistent.ipk"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("/nonexistent.ipk does not exist"));
}

/// A root for a router without opkg: a static busybox, scp (for the legacy SCP protocol) with
/// its libraries, a stand-in init script and `wanmon`, and a config the user has edited.
fn opkg_less_root(id: &str) -> PathBuf {
    // sshd accepts a chroot only on a root-owned path nobody else can write: not below /tmp.
    let root = PathBuf::from(format!("/run/wanmon-deploy-root-{id}"));
    let _ = std::fs::remove_dir_all(&root);
    for dir in [
        "bin",
        "usr/bin",
        "usr/sbin",
        "etc/init.d",
        "etc/wanmon",
        "dev",
        "tmp",
        "lib64",
        "lib/x86_64-linux-gnu",
    ] {
        std::fs::create_dir_all(root.join(dir)).expect("test setup");
    }
    std::fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("test setup");
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("a static busybox (apt-get install busybox-static)");
    sh(&["chroot", &root.display().to_string(), "/bin/busybox", "--install", "-s", "/bin"]);
    // sshd starts the user's login shell, /bin/bash for root: busybox's sh stands in.
    executable(&root.join("bin/bash"), "#!/bin/sh\nexec /bin/sh \"$@\"\n");
    std::fs::copy("/usr/bin/scp", root.join("usr/bin/scp")).expect("test setup");
    let libraries = String::from_utf8(sh(&["ldd", "/usr/bin/scp"]).stdout).unwrap_or_default();
    for library in libraries.split_whitespace().filter(|w| w.starts_with('/')) {
        std::fs::copy(library, root.join(library.trim_start_matches('/')))
            .expect("scp's libraries");
    }
    sh(&["mknod", &root.join("dev/null").display().to_string(), "c", "1", "3"]);
    sh(&["chmod", "666", &root.join("dev/null").display().to_string()]);
    executable(
        &root.join("etc/init.d/wanmon"),
        "#!/bin/sh\necho \"init.d/wanmon $*\" >> /calls.log\n",
    );
    std::fs::write(root.join("etc/wanmon/config.json"), "the user's edited config\n")
        .expect("test setup");
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n")
        .expect("test setup");
    std::fs::write(root.join("etc/group"), "root:x:0:\n").expect("test setup");
    root
}

/// A small but real package: a stand-in daemon, a default config, a postinst.
fn fake_package(dir: &Path) -> PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(stage.join("data/usr/sbin")).expect("test setup");
    std::fs::create_dir_all(stage.join("data/etc/wanmon")).expect("test setup");
    std::fs::create_dir_all(stage.join("control")).expect("test setup");
    executable(
        &stage.join("data/usr/sbin/wanmon"),
        "#!/bin/sh\necho \"wanmon $*\" >> /calls.log\necho 'unpacked wanmon: status'\n",
    );
    std::fs::write(stage.join("data/etc/wanmon/config.json"), "the package's default config\n")
        .expect("test setup");
    executable(&stage.join("control/postinst"), "#!/bin/sh\necho postinst >> /calls.log\n");
    std::fs::write(stage.join("debian-binary"), "2.0\n").expect("test setup");
    let s = stage.display();
    sh(&[
        "sh",
        "-c",
        &format!(
            "tar -C {s}/data -czf {s}/data.tar.gz . && tar -C {s}/control -czf {s}/control.tar.gz ."
        ),
    ]);
    let package = dir.join("wanmon_0.1.0_mipsel_24kc.ipk");
    sh(&[
        "sh",
        "-c",
        &format!(
            "tar -C {s} -czf {} ./debian-binary ./data.tar.gz ./control.tar.gz",
            package.display()
        ),
    ]);
    package
}

#[test]
#[ignore = "needs root: network and mount namespaces, chroot"]
fn without_opkg_the_package_is_unpacked_by_hand_keeping_the_users_config() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let id = format!("m{}", std::process::id() % 100_000);
    let root = opkg_less_root(&id);
    let r = router_with("m", Some(&root));
    let package = fake_package(&r.dir);
    let (package, config) = (package.display().to_string(), trusting_ssh_config(&r));
    let out = deploy(&r, &["--package", &package, "--ssh-config", &config]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let calls = std::fs::read_to_string(root.join("calls.log")).unwrap_or_default();
    let kept = std::fs::read_to_string(root.join("etc/wanmon/config.json")).unwrap_or_default();
    let unpacked = root.join("usr/sbin/wanmon").exists();
    let _ = std::fs::remove_dir_all(&root);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("no opkg here: unpacking"), "{stdout}");
    assert!(stdout.contains("unpacked wanmon: status"), "the unpacked daemon answered: {stdout}");
    assert!(unpacked, "the daemon was unpacked into place");
    assert_eq!(kept, "the user's edited config\n", "an existing config is kept");
    assert_eq!(calls, "postinst\ninit.d/wanmon restart\nwanmon status\n");
}
