//! OpenWrt packages: `.ipk` for opkg (OpenWrt 24.10 and before), a gzipped tar of
//! `debian-binary`, `control.tar.gz` and `data.tar.gz`, built reproducibly with tar and gzip;
//! and `.apk` for apk 3 (OpenWrt 25.12), made from the same files by [`crate::apk`].
//!
//! Two packages: `wanmon` (daemon, init script, default config), which must fit the flash budget,
//! and `luci-app-wanmon` (the LuCI views and their rpcd plugin), which a router short of flash can
//! skip: the daemon serves its own page.

use crate::{root, run};
use std::path::{Path, PathBuf};

/// Files of the wanmon package, below `openwrt-image/files/`, with their mode.
const DAEMON_FILES: &[(&str, u32)] = &[
    ("etc/init.d/wanmon", 0o755),
    ("etc/wanmon/config.json", 0o600),
    ("usr/lib/wanmon/resolve.uc", 0o644),
    ("etc/hotplug.d/iface/95-wanmon", 0o644),
];

/// What the wanmon package needs: libc (in every image; the mipsel daemon links against it) and
/// ucode with the modules `resolve.uc` uses, which firewall4 brings on every stock image. Not
/// kmod-nf-conntrack-netlink, which `conntrack_cleanup` needs: stock images lack it, and pulling
/// it in would cost the flash of routers that masquerade (where the kernel moves most flows
/// itself); the daemon names it in its log when it is missing.
pub const DAEMON_DEPENDS: &[&str] =
    &["libc", "ucode", "ucode-mod-fs", "ucode-mod-ubus", "ucode-mod-uci"];

/// Files of luci-app-wanmon, below `openwrt-image/luci/`.
const LUCI_FILES: &[(&str, u32)] = &[
    ("usr/share/luci/menu.d/luci-app-wanmon.json", 0o644),
    ("usr/share/rpcd/acl.d/luci-app-wanmon.json", 0o644),
    ("usr/libexec/rpcd/wanmon", 0o755),
    ("www/luci-static/resources/view/wanmon/status.js", 0o644),
    ("www/luci-static/resources/view/wanmon/config.js", 0o644),
];

pub struct Packages {
    pub daemon: PathBuf,
    pub luci: PathBuf,
    pub daemon_apk: PathBuf,
    pub luci_apk: PathBuf,
}

const DAEMON_DESCRIPTION: &str = "WAN failover controller: probes every WAN link, scores latency, jitter and loss,\n moves the default route to the best link and back, without flapping.";
const LUCI_DESCRIPTION: &str = "LuCI status page for wanmon: links, scores, force and auto.";

pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Copies a file into a package's stage. A shell or ucode script goes without its comment lines
/// (the `#!` line stays): they explain the source, and on the router they cost flash (1.1 KB
/// of the package for three scripts).
fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let bytes = std::fs::read(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let ucode = from.extension().is_some_and(|e| e == "uc");
    let bytes = if bytes.starts_with(b"#!") || from.extension().is_some_and(|e| e == "sh") {
        let comment = if ucode { "//" } else { "#" };
        let script = without_comment_lines(&String::from_utf8_lossy(&bytes), comment);
        if ucode { without_indentation(&script) } else { script }.into_bytes()
    } else {
        bytes
    };
    std::fs::write(to, bytes)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", to.display()))
}

/// `script` without the lines that hold only a comment (starting with `comment`); the first line
/// (`#!`) is kept.
fn without_comment_lines(script: &str, comment: &str) -> String {
    let mut out = String::with_capacity(script.len());
    for (i, line) in script.lines().enumerate() {
        let comment = line.trim_start().starts_with(comment);
        if i == 0 || !comment {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A ucode script without the tabs that indent its lines, which ucode (as JavaScript) does not
/// read; unless a template string (between backquotes) spans lines, where they would be text.
fn without_indentation(script: &str) -> String {
    let spans_lines = script.lines().any(|line| line.matches('`').count() % 2 == 1);
    if spans_lines {
        return script.to_string();
    }
    script.lines().map(|line| line.trim_start_matches('\t')).collect::<Vec<_>>().join("\n") + "\n"
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

/// Every entry below `dir`, depth first: its path from `dir` (`etc/init.d/wanmon`) and, for a
/// file, its size (`None` for a directory).
pub fn tree(dir: &Path) -> Vec<(String, Option<u64>)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, Option<u64>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.path().is_dir() {
                out.push((name.clone(), None));
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push((name, Some(entry.metadata().map_or(0, |m| m.len()))));
            }
        }
    }
    let mut entries = Vec::new();
    walk(dir, "", &mut entries);
    entries
}

fn tree_size(dir: &Path) -> u64 {
    tree(dir).iter().filter_map(|(_, size)| *size).sum()
}

/// `tar | gzip -9n` of `entries` of `dir` in that order (directories without their contents),
/// owned by root, dated 0: the same bytes every time.
fn targz<S: AsRef<str>>(dir: &Path, entries: &[S], out: &Path) -> Result<(), String> {
    let entries: Vec<String> = entries.iter().map(|e| format!("'{}'", e.as_ref())).collect();
    let tar = format!(
        "tar --format=gnu --no-recursion --owner=0 --group=0 --numeric-owner --mtime=@0 -C '{}' -cf - {} | gzip -9n > '{}'",
        dir.display(),
        entries.join(" "),
        out.display()
    );
    run("sh", &["-c", &tar])
}

/// Every path under `dir` (`.`, then `./etc`, ...) sorted by name, with the largest file moved
/// last: that is the packed daemon, which gzip cannot compress and whose 79 KB its 32 KB window
/// cannot see across, so the scripts and headers compress together before it (0.3 KB less).
fn tar_order(dir: &Path) -> Vec<String> {
    let mut paths = vec![(".".to_string(), 0)];
    paths
        .extend(tree(dir).into_iter().map(|(name, size)| (format!("./{name}"), size.unwrap_or(0))));
    paths.sort();
    let largest = (1..paths.len()).max_by_key(|&i| paths[i].1);
    if let Some(largest) = largest {
        let moved = paths.remove(largest);
        paths.push(moved);
    }
    paths.into_iter().map(|(name, _)| name).collect()
}

/// One package from a staged `data/` and `control/` under `stage`.
fn assemble(stage: &Path, out: &Path) -> Result<(), String> {
    write(&stage.join("debian-binary"), "2.0\n", 0o644)?;
    let data = stage.join("data");
    targz(&data, &tar_order(&data), &stage.join("data.tar.gz"))?;
    let control = stage.join("control");
    targz(&control, &tar_order(&control), &stage.join("control.tar.gz"))?;
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
    let depends = DAEMON_DEPENDS.join(", ");
    let text =
        control("wanmon", arch, &depends, tree_size(&stage.join("data")), DAEMON_DESCRIPTION);
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
        LUCI_DESCRIPTION,
    );
    write(&stage.join("control/control"), &text, 0o644)?;
    copy(&image.join("control/luci-postinst"), &stage.join("control/postinst"), 0o755)?;
    let luci = dist.join(format!("luci-app-wanmon_{}_all.ipk", version()));
    assemble(&stage, &luci)?;
    let (daemon_apk, luci_apk) = build_apks(&dist, arch)?;
    Ok(Packages { daemon, luci, daemon_apk, luci_apk })
}

/// The apk v3 packages from the files staged for the ipks (copied: the apk records go beside
/// them).
fn build_apks(dist: &Path, arch: &str) -> Result<(PathBuf, PathBuf), String> {
    let stage = dist.join(arch).join("stage-apk");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)
        .map_err(|e| format!("cannot create {}: {e}", stage.display()))?;
    for name in ["wanmon", "luci"] {
        let from = dist.join(arch).join(format!("stage-{name}/data"));
        run("cp", &["-a", &from.display().to_string(), &stage.join(name).display().to_string()])?;
    }
    // The scripts as the ipks carry them (comment lines gone). apk runs post-upgrade, not
    // post-install, on an upgrade: the same enable-and-restart.
    let control =
        |name: &str, script: &str| dist.join(arch).join(name).join("control").join(script);
    let upgrade = stage.join("post-upgrade");
    let postinst = std::fs::read_to_string(control("stage-wanmon", "postinst"))
        .map_err(|e| format!("cannot read the postinst: {e}"))?;
    write(
        &upgrade,
        &postinst.replacen("#!/bin/sh\n", "#!/bin/sh\nexport PKG_UPGRADE=1\n", 1),
        0o755,
    )?;
    let daemon_scripts = [
        ("post-install", control("stage-wanmon", "postinst")),
        ("post-upgrade", upgrade),
        ("pre-deinstall", control("stage-wanmon", "prerm")),
    ];
    // As OpenWrt's feeds hold them: a directory per architecture, the file named NAME-VERSION.
    let apks = dist.join("apk");
    for dir in [arch, "noarch"] {
        std::fs::create_dir_all(apks.join(dir)).map_err(|e| format!("cannot create {dir}: {e}"))?;
    }
    let daemon = apks.join(arch).join(format!("wanmon-{}.apk", crate::apk::apk_version()));
    let meta = crate::apk::Meta {
        name: "wanmon",
        arch,
        depends: &DAEMON_DEPENDS.join(" "),
        description: DAEMON_DESCRIPTION,
        conffiles: &["/etc/wanmon/config.json"],
        scripts: &daemon_scripts,
    };
    crate::apk::build(&stage.join("wanmon"), &meta, &daemon)?;
    let luci_scripts = [("post-install", control("stage-luci", "postinst"))];
    let luci =
        apks.join("noarch").join(format!("luci-app-wanmon-{}.apk", crate::apk::apk_version()));
    let meta = crate::apk::Meta {
        name: "luci-app-wanmon",
        arch: "noarch",
        depends: "wanmon luci-base",
        description: LUCI_DESCRIPTION,
        conffiles: &[],
        scripts: &luci_scripts,
    };
    crate::apk::build(&stage.join("luci"), &meta, &luci)?;
    Ok((daemon, luci))
}

/// What flash the package costs.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The daemon, stripped, and gzipped as a package would hold it unpacked.
    pub binary: u64,
    pub binary_gzip: u64,
    /// What ships as `/usr/sbin/wanmon`: the unpacker with the daemon inside (LZMA).
    pub shipped: u64,
    pub package: u64,
}

impl Sizes {
    pub fn measure(binary: &Path, shipped: &Path, package: &Path) -> Result<Sizes, String> {
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
            shipped: size(shipped)?,
            package: size(package)?,
        })
    }

    /// What the shipped binary takes at most on the router's JFFS2 overlay: compressed already,
    /// it is stored as it is, in 4 KiB nodes with a 68-byte header each.
    pub fn on_flash(&self) -> u64 {
        self.shipped + 68 * self.shipped.div_ceil(4096)
    }

    pub fn report(&self, budget: u64) -> String {
        let verdict = if self.package <= budget { "within" } else { "OVER" };
        format!(
            "size: daemon stripped {} bytes (gzip -9 {}), shipped packed {} bytes (on JFFS2 at most {}), package {} bytes: {verdict} the {} byte budget ({:+} bytes)",
            self.binary,
            self.binary_gzip,
            self.shipped,
            self.on_flash(),
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
        format!("Depends: {}", DAEMON_DEPENDS.join(", ")),
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

/// Checks an apk the way apk 3 reads it: `apk adbdump` lists every file with its mode, the
/// info fields and the scripts.
pub fn verify_apk(package: &Path, arch: &str) -> Result<(), String> {
    let dump = crate::apk::dump(package)?;
    let field = |key: &str| dump.info.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let version = crate::apk::apk_version();
    for (key, wanted) in [("name", "wanmon"), ("version", version.as_str()), ("arch", arch)] {
        if field(key) != Some(wanted) {
            return Err(format!(
                "{}: info {key} is {:?}, expected {wanted:?}",
                package.display(),
                field(key)
            ));
        }
    }
    let mut expected: Vec<(String, u32)> = vec![("usr/sbin/wanmon".into(), 0o755)];
    expected.extend(DAEMON_FILES.iter().map(|(f, m)| (f.to_string(), *m)));
    for record in ["list", "conffiles", "conffiles_static"] {
        expected.push((format!("lib/apk/packages/wanmon.{record}"), 0o644));
    }
    for (file, mode) in &expected {
        let found = dump.files.iter().find(|(path, _)| path == file);
        if found.map(|(_, m)| m.as_str()) != Some(format!("{mode:04o}").as_str()) {
            return Err(format!(
                "{}: {file} should be mode {mode:04o}, is {found:?}",
                package.display()
            ));
        }
    }
    if dump.files.len() != expected.len() {
        return Err(format!(
            "{}: holds {:?}, expected only {expected:?}",
            package.display(),
            dump.files
        ));
    }
    let mut scripts = dump.scripts.clone();
    scripts.sort();
    if scripts != ["post-install", "post-upgrade", "pre-deinstall"] {
        return Err(format!("{}: scripts {:?}", package.display(), dump.scripts));
    }
    println!(
        "package ok: {} ({} files, info, scripts; read back with apk adbdump)",
        package.display(),
        dump.files.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ucode_loses_its_indentation_unless_a_template_spans_lines() {
        let script = "function f(a) {\n\tif (a)\n\t\treturn `x ${a}`;\n}\n";
        assert_eq!(without_indentation(script), "function f(a) {\nif (a)\nreturn `x ${a}`;\n}\n");
        let spanning = "let t = `one\n\ttwo`;\n";
        assert_eq!(without_indentation(spanning), spanning);
    }

    #[test]
    fn the_largest_file_goes_last_in_the_tar() {
        let dir = std::env::temp_dir().join(format!("wanmon-tar-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, len) in [("usr/sbin/big", 300), ("usr/share/x/small", 10), ("etc/a", 20)] {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, vec![b'x'; len]).unwrap();
        }
        let order = tar_order(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            order,
            [
                ".",
                "./etc",
                "./etc/a",
                "./usr",
                "./usr/sbin",
                "./usr/share",
                "./usr/share/x",
                "./usr/share/x/small",
                "./usr/sbin/big"
            ]
        );
    }
}
