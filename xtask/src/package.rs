//! OpenWrt packages (`.ipk`, as opkg on OpenWrt 23.05 and 24.10 reads them): a gzipped tar of
//! `debian-binary`, `control.tar.gz` and `data.tar.gz`, built reproducibly with tar and gzip.
//!
//! Two packages: `wanmon` (daemon, init script, default config, rpcd plugin), which must fit the
//! flash budget, and `luci-app-wanmon` (the LuCI view), which a router short of flash can skip:
//! the daemon serves its own page.

use crate::{root, run};
use std::path::{Path, PathBuf};

/// Files of the wanmon package, below `openwrt-image/files/`, with their mode.
const DAEMON_FILES: &[(&str, u32)] = &[
    ("etc/init.d/wanmon", 0o755),
    ("etc/wanmon/config.json", 0o600),
    ("lib/upgrade/keep.d/wanmon", 0o644),
    ("usr/libexec/rpcd/wanmon", 0o755),
];

/// Files of luci-app-wanmon, below `openwrt-image/luci/`.
const LUCI_FILES: &[(&str, u32)] = &[
    ("usr/share/luci/menu.d/luci-app-wanmon.json", 0o644),
    ("usr/share/rpcd/acl.d/luci-app-wanmon.json", 0o644),
    ("www/luci-static/resources/view/wanmon/status.js", 0o644),
];

pub struct Packages {
    pub daemon: PathBuf,
    pub luci: PathBuf,
}

pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", to.display()))
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
}

fn tree_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                let path = e.path();
                if path.is_dir() { tree_size(&path) } else { e.metadata().map_or(0, |m| m.len()) }
            })
            .sum()
    })
}

/// `tar | gzip -9n` of `dir`'s contents, owned by root, dated 0, sorted: the same bytes every time.
fn targz(dir: &Path, entries: &[&str], out: &Path) -> Result<(), String> {
    let tar = format!(
        "tar --format=gnu --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C '{}' -cf - {} | gzip -9n > '{}'",
        dir.display(),
        entries.join(" "),
        out.display()
    );
    run("sh", &["-c", &tar])
}

/// One package from a staged `data/` and `control/` under `stage`.
fn assemble(stage: &Path, out: &Path) -> Result<(), String> {
    write(&stage.join("debian-binary"), "2.0\n", 0o644)?;
    targz(&stage.join("data"), &["."], &stage.join("data.tar.gz"))?;
    targz(&stage.join("control"), &["."], &stage.join("control.tar.gz"))?;
    targz(stage, &["./debian-binary", "./data.tar.gz", "./control.tar.gz"], out)
}

fn control(
    name: &str,
    arch: &str,
    depends: &str,
    installed_size: u64,
    description: &str,
) -> String {
    format!(
        "Package: {name}\nVersion: {}\nDepends: {depends}\nSection: net\nArchitecture: {arch}\n\
         Installed-Size: {installed_size}\nMaintainer: wanmon developers\nLicense: MIT OR Apache-2.0\n\
         Description: {description}\n",
        version()
    )
}

pub fn build(binary: &Path, arch: &str) -> Result<Packages, String> {
    let image = root().join("openwrt-image");
    let dist = root().join("target/dist");
    let stage = dist.join(arch).join("stage-wanmon");
    let _ = std::fs::remove_dir_all(&stage);
    copy(binary, &stage.join("data/usr/sbin/wanmon"), 0o755)?;
    for (file, mode) in DAEMON_FILES {
        copy(&image.join("files").join(file), &stage.join("data").join(file), *mode)?;
    }
    for script in ["postinst", "prerm", "conffiles"] {
        copy(
            &image.join("control").join(script),
            &stage.join("control").join(script),
            if script == "conffiles" { 0o644 } else { 0o755 },
        )?;
    }
    // libc is in every OpenWrt image; the binary is static anyway, so it needs nothing else.
    let text = control(
        "wanmon",
        arch,
        "libc",
        tree_size(&stage.join("data")),
        "WAN failover controller: probes every WAN link, scores latency, jitter and loss,\n moves the default route to the best link and back, without flapping.",
    );
    write(&stage.join("control/control"), &text, 0o644)?;
    let daemon = dist.join(format!("wanmon_{}_{arch}.ipk", version()));
    assemble(&stage, &daemon)?;

    let stage = dist.join(arch).join("stage-luci");
    let _ = std::fs::remove_dir_all(&stage);
    for (file, mode) in LUCI_FILES {
        copy(&image.join("luci").join(file), &stage.join("data").join(file), *mode)?;
    }
    let text = control(
        "luci-app-wanmon",
        "all",
        "wanmon, luci-base",
        tree_size(&stage.join("data")),
        "LuCI status page for wanmon: links, scores, force and auto.",
    );
    write(&stage.join("control/control"), &text, 0o644)?;
    copy(&image.join("control/luci-postinst"), &stage.join("control/postinst"), 0o755)?;
    let luci = dist.join(format!("luci-app-wanmon_{}_all.ipk", version()));
    assemble(&stage, &luci)?;
    Ok(Packages { daemon, luci })
}

/// What flash the package costs.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub binary: u64,
    pub binary_gzip: u64,
    pub package: u64,
}

impl Sizes {
    pub fn measure(binary: &Path, package: &Path) -> Result<Sizes, String> {
        let size = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.len())
                .map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let gzip = std::process::Command::new("gzip")
            .args(["-9n", "-c"])
            .arg(binary)
            .output()
            .map_err(|e| format!("cannot run gzip: {e}"))?;
        Ok(Sizes {
            binary: size(binary)?,
            binary_gzip: gzip.stdout.len() as u64,
            package: size(package)?,
        })
    }

    pub fn report(&self, budget: u64) -> String {
        let verdict = if self.package <= budget { "within" } else { "OVER" };
        format!(
            "size: binary stripped {} bytes, binary gzip -9 {} bytes, package {} bytes: {verdict} the {} byte budget ({:+} bytes)",
            self.binary,
            self.binary_gzip,
            self.package,
            budget,
            budget as i64 - self.package as i64
        )
    }
}

fn listing(archive: &Path, member: Option<&str>) -> Result<Vec<String>, String> {
    let command = match member {
        None => format!("tar -tzvf '{}'", archive.display()),
        Some(member) => format!("tar -xzOf '{}' {member} | tar -tzvf -", archive.display()),
    };
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} is not a readable package: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
}

fn member_text(archive: &Path, outer: &str, inner: &str) -> Result<String, String> {
    let command = format!("tar -xzOf '{}' {outer} | tar -xzOf - {inner}", archive.display());
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{inner} missing from {outer}"))
    }
}

/// Checks a built package the way opkg will read it: the outer order, every file with its mode,
/// and the control fields.
pub fn verify(package: &Path, arch: &str) -> Result<(), String> {
    let outer: Vec<String> = listing(package, None)?
        .iter()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    if outer != ["./debian-binary", "./data.tar.gz", "./control.tar.gz"] {
        return Err(format!("{}: outer archive holds {outer:?}", package.display()));
    }
    let data = listing(package, Some("./data.tar.gz"))?;
    let mut expected: Vec<(&str, u32)> = vec![("usr/sbin/wanmon", 0o755)];
    expected.extend_from_slice(DAEMON_FILES);
    for (file, mode) in expected {
        let line = data
            .iter()
            .find(|l| l.ends_with(&format!("./{file}")))
            .ok_or_else(|| format!("{}: {file} is missing", package.display()))?;
        let wanted = mode_string(mode);
        if !line.starts_with(&wanted) || !line.contains("0/0") {
            return Err(format!(
                "{}: {file} should be {wanted} root:root, is `{line}`",
                package.display()
            ));
        }
    }
    let control = member_text(package, "./control.tar.gz", "./control")?;
    for field in [
        "Package: wanmon".to_string(),
        format!("Version: {}", version()),
        format!("Architecture: {arch}"),
        "Depends: libc".to_string(),
    ] {
        if !control.lines().any(|l| l == field) {
            return Err(format!("{}: control lacks `{field}`:\n{control}", package.display()));
        }
    }
    if member_text(package, "./control.tar.gz", "./conffiles")?.trim() != "/etc/wanmon/config.json"
    {
        return Err(format!(
            "{}: conffiles must protect /etc/wanmon/config.json",
            package.display()
        ));
    }
    for script in ["./postinst", "./prerm"] {
        member_text(package, "./control.tar.gz", script)?;
    }
    println!(
        "package ok: {} ({} files, control fields, conffiles, scripts)",
        package.display(),
        data.len()
    );
    Ok(())
}

fn mode_string(mode: u32) -> String {
    let bits = ['r', 'w', 'x'];
    let mut out = String::from("-");
    for shift in [6, 3, 0] {
        for (i, bit) in bits.iter().enumerate() {
            out.push(if mode >> shift & (0b100 >> i) != 0 { *bit } else { '-' });
        }
    }
    out
}
