//! OpenWrt 25.12 packages: apk v3 (ADB) files made by apk-tools' own `apk mkpkg`, laid out the
//! way OpenWrt's build lays them out (`lib/apk/packages/NAME.list`, `.conffiles`,
//! `.conffiles_static`; `post-install`, `post-upgrade` and `pre-deinstall` scripts), and read
//! back with `apk adbdump` to check what they hold. Every file dated 0 and `SOURCE_DATE_EPOCH`
//! 0: the same bytes every build.

use crate::owrt;
use crate::package::version;
use std::path::{Path, PathBuf};

/// What a package is, besides its files.
pub struct Meta<'a> {
    pub name: &'a str,
    pub arch: &'a str,
    pub depends: &'a str,
    pub description: &'a str,
    /// Files whose local edits survive an upgrade (paths from `/`).
    pub conffiles: &'a [&'a str],
    /// `(apk script type, file)`.
    pub scripts: &'a [(&'a str, PathBuf)],
}

/// The apk version of the crate's: OpenWrt's `VERSION-rRELEASE`.
pub fn apk_version() -> String {
    format!("{}-r1", version())
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run sha256sum: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum gave nothing for {}", path.display()))
}

/// OpenWrt's package records in `data/lib/apk/packages/`: the file list, the conffiles, and
/// each conffile's checksum as shipped (sysupgrade keeps the ones that differ).
fn records(data: &Path, meta: &Meta) -> Result<(), String> {
    let dir = data.join("lib/apk/packages");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: String, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    if !meta.conffiles.is_empty() {
        let mut statics = String::new();
        for file in meta.conffiles {
            statics.push_str(&format!("{file} {}\n", sha256(&data.join(&file[1..]))?));
        }
        write(format!("{}.conffiles", meta.name), meta.conffiles.join("\n") + "\n")?;
        write(format!("{}.conffiles_static", meta.name), statics)?;
    }
    let mut files: Vec<String> = crate::package::tree(data)
        .into_iter()
        .filter(|(_, size)| size.is_some())
        .map(|(name, _)| format!("/{name}"))
        .collect();
    files.push(format!("/lib/apk/packages/{}.list", meta.name));
    files.sort();
    write(format!("{}.list", meta.name), files.join("\n") + "\n")
}

/// Builds `out` from the staged `data` tree.
pub fn build(data: &Path, meta: &Meta, out: &Path) -> Result<(), String> {
    build_version(data, meta, out, &apk_version())
}

/// [`build`] at another version (a test's "next release").
pub fn build_version(data: &Path, meta: &Meta, out: &Path, version: &str) -> Result<(), String> {
    owrt::ensure_built()?;
    records(data, meta)?;
    crate::run("sh", &["-c", &format!("find '{}' -exec touch -h -d @0 {{}} +", data.display())])?;
    let mut info = vec![
        format!("name:{}", meta.name),
        format!("version:{version}"),
        format!("arch:{}", meta.arch),
        // One line: apk's installed database is line-based (a newline breaks it for good).
        format!(
            "description:{}",
            meta.description.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        "license:MIT OR Apache-2.0".to_string(),
        "maintainer:wanmon developers".to_string(),
    ];
    if !meta.depends.is_empty() {
        info.push(format!("depends:{}", meta.depends));
    }
    let mut args: Vec<String> = vec!["mkpkg".into()];
    for field in info {
        args.extend(["--info".into(), field]);
    }
    for (kind, file) in meta.scripts {
        args.extend(["--script".into(), format!("{kind}:{}", file.display())]);
    }
    args.extend([
        "--files".into(),
        data.display().to_string(),
        "--output".into(),
        out.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = owrt::apk(&args)?;
    if !result.status.success() {
        return Err(format!(
            "apk mkpkg failed for {}: {}",
            meta.name,
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    Ok(())
}

/// What `apk adbdump` says a package holds: its info fields, its files (`path mode`) and its
/// script types.
#[derive(Debug, Default, PartialEq)]
pub struct Dump {
    pub info: Vec<(String, String)>,
    pub files: Vec<(String, String)>,
    pub scripts: Vec<String>,
}

/// Reads a package back with `apk adbdump`.
pub fn dump(package: &Path) -> Result<Dump, String> {
    let out = owrt::apk(&["adbdump", &package.display().to_string()])?;
    if !out.status.success() {
        return Err(format!(
            "apk adbdump {}: {}",
            package.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(parse_dump(&String::from_utf8_lossy(&out.stdout)))
}

/// The parts of `apk adbdump`'s YAML-like text that matter here.
pub fn parse_dump(text: &str) -> Dump {
    let mut dump = Dump::default();
    let (mut section, mut dir, mut file) = ("", String::new(), None::<String>);
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start().trim_start_matches("- ");
        if indent == 0 {
            section = if line.starts_with("info:") {
                "info"
            } else if line.starts_with("paths:") {
                "paths"
            } else if line.starts_with("scripts:") {
                "scripts"
            } else {
                ""
            };
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else { continue };
        let value = value.trim().to_string();
        match (section, indent, key) {
            ("info", 2, _) => dump.info.push((key.to_string(), value)),
            ("scripts", 2, _) => dump.scripts.push(key.to_string()),
            ("paths", 2, "name") => dir = value,
            ("paths", 6, "name") => file = Some(format!("{dir}/{value}")),
            ("paths", 10, "mode") => {
                if let Some(path) = file.take() {
                    dump.files.push((path, value));
                }
            }
            _ => {}
        }
    }
    dump
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_is_read_for_its_info_files_and_scripts() {
        let text = "#%SCHEMA: 676B6370\ninfo:\n  name: wanmon\n  version: 0.1.0-r1\n  depends: # 1 items\n    - libc\npaths: # 2 items\n  - acl:\n      mode: 0755\n  - name: etc/init.d\n    acl:\n      mode: 0755\n    files: # 1 items\n      - name: wanmon\n        acl:\n          mode: 0755\n          user: root\n        size: 1028\nscripts:\n  post-install: |\n    #!/bin/sh\n  pre-deinstall: |\n    #!/bin/sh\n";
        let dump = parse_dump(text);
        assert_eq!(dump.info[0], ("name".into(), "wanmon".into()));
        assert_eq!(dump.info[1], ("version".into(), "0.1.0-r1".into()));
        assert_eq!(dump.files, [("etc/init.d/wanmon".to_string(), "0755".to_string())]);
        assert_eq!(dump.scripts, ["post-install", "pre-deinstall"]);
    }
}
