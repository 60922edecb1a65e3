//! `cargo xtask deploy --host root@192.168.1.1 [--port N] [--identity FILE] [--ssh-config FILE]
//! [--target ARCH] [--package FILE] [--dry-run]`: copies the package to the router over SCP,
//! installs it with apk (OpenWrt 25.12) or opkg (24.10; unpacked by hand where neither is),
//! restarts the service and shows its status.

use crate::dist;
use crate::package;
use crate::root;
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug)]
struct Options {
    host: String,
    port: u16,
    identity: Option<PathBuf>,
    /// An ssh_config of the user's (a router's host key changes when it is reflashed).
    ssh_config: Option<PathBuf>,
    package: Option<PathBuf>,
    arch: dist::Arch,
    dry_run: bool,
}

const USAGE: &str = "usage: cargo xtask deploy --host USER@ROUTER [--port N] [--identity FILE] [--ssh-config FILE] [--target ARCH] [--package FILE] [--dry-run]";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        host: String::new(),
        port: 22,
        identity: None,
        ssh_config: None,
        package: None,
        arch: dist::ARCHES[0],
        dry_run: false,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = |flag: &str| {
            iter.next().cloned().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--host" => options.host = value("--host")?,
            "--port" => {
                let text = value("--port")?;
                options.port = text
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("--port: got {text:?}, expected 1 to 65535"))?;
            }
            "--identity" => options.identity = Some(value("--identity")?.into()),
            "--ssh-config" => options.ssh_config = Some(value("--ssh-config")?.into()),
            "--package" => options.package = Some(value("--package")?.into()),
            "--target" => options.arch = dist::arch_named(&value("--target")?)?,
            "--dry-run" => options.dry_run = true,
            other => return Err(format!("deploy: unknown argument {other:?}\n{USAGE}")),
        }
    }
    if options.host.is_empty() {
        return Err(format!("deploy: --host is required\n{USAGE}"));
    }
    if options.host.starts_with('-')
        || options.host.chars().any(|c| c.is_whitespace() || c == '\'' || c == ';')
    {
        return Err(format!("deploy: --host {:?} is not a host name", options.host));
    }
    Ok(options)
}

/// The script run on the router: install an `.apk` with apk (OpenWrt 25.12), an `.ipk` with
/// opkg, or unpack an `.ipk` by hand keeping an existing config; restart; show the status. `$1`
/// is the package on the router.
pub const REMOTE_SCRIPT: &str = r#"set -e
pkg="$1"
if [ "${pkg%.apk}" != "$pkg" ]; then
  apk add --allow-untrusted --no-network "$pkg"
elif command -v opkg >/dev/null 2>&1; then
  opkg install --force-reinstall "$pkg"
else
  echo "no opkg here: unpacking $pkg by hand"
  work=$(mktemp -d)
  tar -xzf "$pkg" -C "$work"
  mkdir "$work/data" "$work/control"
  tar -xzf "$work/data.tar.gz" -C "$work/data"
  tar -xzf "$work/control.tar.gz" -C "$work/control"
  # BusyBox tar has no --exclude: keep an existing config by not copying the packaged one.
  [ -f /etc/wanmon/config.json ] && rm -f "$work/data/etc/wanmon/config.json"
  cp -a "$work/data/." /
  sh "$work/control/postinst"
  rm -rf "$work"
fi
rm -f "$pkg"
/etc/init.d/wanmon restart
sleep 2
wanmon status
"#;

fn ssh_base(options: &Options, program: &str) -> Vec<String> {
    let mut args = vec![program.to_string()];
    if program == "scp" {
        // OpenWrt's dropbear has no SFTP server: the legacy SCP protocol.
        args.push("-O".into());
        args.extend(["-P".into(), options.port.to_string()]);
    } else {
        args.extend(["-p".into(), options.port.to_string()]);
    }
    args.extend(["-o".into(), "BatchMode=yes".into(), "-o".into(), "ConnectTimeout=10".into()]);
    if let Some(identity) = &options.identity {
        args.extend(["-i".into(), identity.display().to_string()]);
    }
    if let Some(config) = &options.ssh_config {
        args.extend(["-F".into(), config.display().to_string()]);
    }
    args
}

fn execute(command: &[String], dry_run: bool) -> Result<(), String> {
    let shown: Vec<String> = command
        .iter()
        .map(|a| if a.contains(char::is_whitespace) { format!("'{a}'") } else { a.clone() })
        .collect();
    println!("$ {}", shown.join(" "));
    if dry_run {
        return Ok(());
    }
    let status = Command::new(&command[0])
        .args(&command[1..])
        .status()
        .map_err(|e| format!("cannot run {}: {e}", command[0]))?;
    if status.success() { Ok(()) } else { Err(format!("`{}` failed ({status})", command[0])) }
}

/// Whether the router installs with apk (OpenWrt 25.12 and later) rather than opkg.
fn router_has_apk(options: &Options) -> Result<bool, String> {
    let mut probe = ssh_base(options, "ssh");
    probe.extend([
        options.host.clone(),
        "command -v apk >/dev/null && echo apk || echo opkg".into(),
    ]);
    println!("$ {}", probe.join(" "));
    let out = Command::new(&probe[0])
        .args(&probe[1..])
        .output()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot reach {}: {}",
            options.host,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "apk")
}

/// The package built for the router's architecture and package manager.
fn default_package(options: &Options) -> Result<PathBuf, String> {
    let dist = root().join("target/dist");
    let arch = options.arch.openwrt;
    if !options.dry_run && router_has_apk(options)? {
        return Ok(dist.join(format!("apk/{arch}/wanmon-{}.apk", crate::apk::apk_version())));
    }
    Ok(dist.join(format!("wanmon_{}_{arch}.ipk", package::version())))
}

pub fn deploy(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let package = match &options.package {
        Some(package) => package.clone(),
        None => default_package(&options)?,
    };
    if !package.exists() && !options.dry_run {
        if options.package.is_some() {
            return Err(format!("{} does not exist", package.display()));
        }
        dist::dist(&["--target".into(), options.arch.openwrt.into()])?;
    }
    let name = package.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let remote = format!("/tmp/{name}");
    let mut copy = ssh_base(&options, "scp");
    copy.extend([package.display().to_string(), format!("{}:{remote}", options.host)]);
    execute(&copy, options.dry_run)?;
    let mut install = ssh_base(&options, "ssh");
    install.extend([options.host.clone(), "sh".into(), "-s".into(), "--".into(), remote]);
    println!("$ {} <<'SCRIPT'\n{REMOTE_SCRIPT}SCRIPT", install.join(" "));
    if options.dry_run {
        return Ok(());
    }
    let mut child = Command::new(&install[0])
        .args(&install[1..])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    if let Some(stdin) = child.stdin.as_mut() {
        std::io::Write::write_all(stdin, REMOTE_SCRIPT.as_bytes())
            .map_err(|e| format!("cannot send the install script: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("ssh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("installing on {} failed ({status})", options.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_string()).collect()
    }

    #[test]
    fn arguments_are_checked() {
        assert!(parse(&words(&[])).unwrap_err().contains("--host is required"));
        assert!(parse(&words(&["--host"])).unwrap_err().contains("--host needs a value"));
        assert!(
            parse(&words(&["--host", "r", "--port", "0"]))
                .unwrap_err()
                .contains("expected 1 to 65535")
        );
        assert!(
            parse(&words(&["--host", "r", "--target", "sparc"]))
                .unwrap_err()
                .contains("unknown --target")
        );
        assert!(
            parse(&words(&["--host", "-oProxyCommand=x"]))
                .unwrap_err()
                .contains("is not a host name")
        );
        assert!(
            parse(&words(&["--host", "r", "--bogus"])).unwrap_err().contains("unknown argument")
        );
        let options =
            parse(&words(&["--host", "root@192.168.1.1", "--port", "2222", "--dry-run"])).unwrap();
        assert_eq!(
            (options.host.as_str(), options.port, options.dry_run),
            ("root@192.168.1.1", 2222, true)
        );
    }

    #[test]
    fn scp_uses_the_legacy_protocol_for_dropbear() {
        let options = parse(&words(&["--host", "r", "--identity", "/k"])).unwrap();
        let scp = ssh_base(&options, "scp");
        assert!(scp.contains(&"-O".to_string()));
        assert!(scp.windows(2).any(|w| w == ["-P", "22"]));
        assert!(scp.windows(2).any(|w| w == ["-i", "/k"]));
        let ssh = ssh_base(&options, "ssh");
        assert!(ssh.windows(2).any(|w| w == ["-p", "22"]));
    }
}
