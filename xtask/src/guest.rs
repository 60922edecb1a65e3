//! Guests for the full-system emulator: Debian's own kernels and BusyBox, fetched with apt for
//! any architecture (signatures checked by apt, the machine's own apt state untouched), kernel
//! modules picked with their dependencies, a `newc` initramfs, and a qemu-system run with a
//! deadline. `cargo xtask vm` (MIPS) and `cargo xtask netem` (x86_64) boot through here; neither
//! needs KVM or any particular host CPU, because qemu emulates the guest's (TCG).

use crate::{has_command, is_root, run};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One Debian architecture's kernel and BusyBox, unpacked under the cache.
#[derive(Debug)]
pub struct Parts {
    /// Where the packages were unpacked: `boot/`, `lib/modules/<release>/`, `bin/busybox`.
    pub root: PathBuf,
    /// The kernel's release, such as `6.1.0-57-amd64`.
    pub release: String,
}

impl Parts {
    pub fn kernel(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.release))
    }

    pub fn busybox(&self) -> PathBuf {
        self.root.join("bin/busybox")
    }

    fn modules(&self) -> PathBuf {
        self.root.join(format!("lib/modules/{}", self.release))
    }

    /// The named modules and everything they depend on, in an order `insmod` can load them:
    /// `(name, bytes)`. Dependencies come from each module's own `.modinfo` (`depends=`), so no
    /// `depmod` is needed. A module the kernel has built in is no file and needs no loading.
    pub fn modules_with_dependencies(
        &self,
        names: &[&str],
    ) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut files = Vec::new();
        module_files(&self.modules().join("kernel"), &mut files);
        let builtin =
            std::fs::read_to_string(self.modules().join("modules.builtin")).unwrap_or_default();
        let is_builtin = |name: &str| {
            builtin.lines().any(|l| {
                l.rsplit('/').next().and_then(|f| f.strip_suffix(".ko")).map(normalize)
                    == Some(normalize(name))
            })
        };
        let mut ordered = Vec::new();
        let mut seen = BTreeSet::new();
        for name in names {
            self.add_module(name, &files, &is_builtin, &mut seen, &mut ordered)?;
        }
        Ok(ordered)
    }

    fn add_module(
        &self,
        name: &str,
        files: &[PathBuf],
        is_builtin: &dyn Fn(&str) -> bool,
        seen: &mut BTreeSet<String>,
        ordered: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), String> {
        let name = normalize(name);
        if !seen.insert(name.clone()) {
            return Ok(());
        }
        let Some(file) = files.iter().find(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".ko"))
                .map(normalize)
                == Some(name.clone())
        }) else {
            if is_builtin(&name) {
                return Ok(());
            }
            return Err(format!(
                "module {name} is neither a file (.ko) under {} nor built in",
                self.modules().display()
            ));
        };
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for dependency in module_dependencies(&bytes) {
            self.add_module(&dependency, files, is_builtin, seen, ordered)?;
        }
        ordered.push((name, bytes));
        Ok(())
    }
}

/// Module names use `_` and `-` interchangeably; the kernel compares them as `_`.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

fn module_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            module_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "ko") {
            out.push(path);
        }
    }
}

/// The `depends=` entry of a module's `.modinfo` strings: what must be loaded before it.
fn module_dependencies(module: &[u8]) -> Vec<String> {
    module
        .split(|&b| b == 0)
        .find_map(|field| field.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Debian's kernel (the one `kernel_meta` names today) and a static BusyBox for `arch`,
/// downloaded once into `cache` with a private apt state and unpacked.
pub fn debian_parts(cache: &Path, arch: &str, kernel_meta: &str) -> Result<Parts, String> {
    let state = cache.join(format!("apt-{arch}"));
    for dir in ["lists/partial", "cache/archives/partial", "debs"] {
        std::fs::create_dir_all(state.join(dir))
            .map_err(|e| format!("{}: {e}", state.display()))?;
    }
    let options: Vec<String> = vec![
        format!("-oDir::State::Lists={}", state.join("lists").display()),
        format!("-oDir::Cache={}", state.join("cache").display()),
        format!("-oAPT::Architecture={arch}"),
        format!("-oAPT::Architectures::={arch}"),
    ];
    let apt = |tool: &str, args: &[&str]| -> Result<String, String> {
        let out = Command::new(tool)
            .args(&options)
            .args(args)
            .current_dir(state.join("debs"))
            .output()
            .map_err(|e| format!("cannot run {tool}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("{tool} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
        }
    };
    let kernel_named = || -> Result<String, String> {
        let depends = apt("apt-cache", &["depends", kernel_meta])?;
        depends
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-"))
            .map(str::to_string)
            .ok_or_else(|| format!("{kernel_meta} names no kernel: {depends}"))
    };
    let parts = |kernel_package: &str| {
        let release = kernel_package.trim_start_matches("linux-image-").to_string();
        Parts { root: cache.join(format!("{arch}-{release}")), release }
    };
    // Written last, so a download cut short is done again.
    let complete = |parts: &Parts| parts.root.join(".complete").exists();
    let have_lists = state
        .join("lists")
        .read_dir()
        .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().is_file())));
    if have_lists && let Ok(package) = kernel_named() {
        let cached = parts(&package);
        if complete(&cached) {
            return Ok(cached);
        }
    }
    // Fresh lists before downloading: old ones may name a kernel the archive no longer has.
    apt("apt-get", &["update", "-qq"])?;
    let kernel_package = kernel_named()?;
    let parts = parts(&kernel_package);
    if complete(&parts) {
        return Ok(parts);
    }
    let debs = state.join("debs");
    for old in std::fs::read_dir(&debs).map_err(|e| e.to_string())?.flatten() {
        let _ = std::fs::remove_file(old.path());
    }
    apt("apt-get", &["download", &kernel_package, "busybox-static"])?;
    let _ = std::fs::remove_dir_all(&parts.root);
    for entry in std::fs::read_dir(&debs).map_err(|e| e.to_string())?.flatten() {
        run("dpkg-deb", &["-x", &entry.path().to_string_lossy(), &parts.root.to_string_lossy()])?;
    }
    for needed in [parts.kernel(), parts.busybox(), parts.modules()] {
        if !needed.exists() {
            return Err(format!("{} is not in the downloaded packages", needed.display()));
        }
    }
    std::fs::write(parts.root.join(".complete"), &kernel_package).map_err(|e| e.to_string())?;
    Ok(parts)
}

/// Where downloads and builds are kept between runs: the guests' kernels and BusyBox, zig, the
/// router's C library.
pub fn cache() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/wanmon-cross")
}

/// Installs the Debian package that has `emulator`, when root on Debian; else says how.
pub fn need_emulator(emulator: &str, package: &str) -> Result<(), String> {
    if has_command(emulator) {
        return Ok(());
    }
    if is_root() && has_command("apt-get") {
        run("apt-get", &["install", "-y", "-qq", "--no-install-recommends", package])
    } else {
        Err(format!("{emulator} is missing: apt-get install {package}"))
    }
}

/// One file of an initramfs: path (no leading `/`), mode with its type bits, contents (for a
/// symlink, the target).
pub type Entry<'a> = (&'a str, u32, &'a [u8]);

pub const DIRECTORY: u32 = 0o040755;
pub const EXECUTABLE: u32 = 0o100755;
pub const FILE: u32 = 0o100644;
pub const SYMLINK: u32 = 0o120777;

/// A `newc` cpio archive (what the kernel unpacks as its initramfs).
pub fn cpio(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut add = |name: &str, mode: u32, data: &[u8], inode: usize| {
        let header = format!(
            "070701{inode:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (inode, (name, mode, data)) in entries.iter().enumerate() {
        add(name, *mode, data, inode + 1);
    }
    add("TRAILER!!!", 0, &[], 0);
    out
}

/// Writes `entries` as `<dir>/initramfs.cpio.gz` and returns its path.
pub fn initramfs(dir: &Path, entries: &[Entry]) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let archive = dir.join("initramfs.cpio");
    std::fs::write(&archive, cpio(entries)).map_err(|e| format!("{}: {e}", archive.display()))?;
    run("gzip", &["-9nf", &archive.to_string_lossy()])?;
    Ok(dir.join("initramfs.cpio.gz"))
}

/// Runs an emulator with its serial console written to `console`, and stops it after `limit`.
/// Returns the console's text; whether the guest did its work is for the caller to judge.
pub fn boot(mut emulator: Command, console: &Path, limit: Duration) -> Result<String, String> {
    let log = std::fs::File::create(console).map_err(|e| format!("{}: {e}", console.display()))?;
    let program = emulator.get_program().to_string_lossy().into_owned();
    let mut child = emulator
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let started = Instant::now();
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if started.elapsed() > limit {
            println!("{program}: still running after {} s, stopped", limit.as_secs());
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::read_to_string(console).map_err(|e| format!("{}: {e}", console.display()))
}

/// The guest's console lines that start with `prefix`, as `(seconds since boot, words)`.
pub fn events<'a>(console: &'a str, prefix: &str) -> Vec<(f64, Vec<&'a str>)> {
    console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once(prefix).map(|(_, rest)| rest))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let t = words.next()?.parse::<f64>().ok()?;
            Some((t, words.collect()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initramfs_is_a_newc_archive_with_a_trailer() {
        let archive = cpio(&[("init", EXECUTABLE, b"#!/bin/sh\n")]);
        assert!(archive.starts_with(b"070701"));
        assert_eq!(archive.len() % 4, 0);
        let text = String::from_utf8_lossy(&archive);
        assert!(text.contains("init\0") && text.contains("#!/bin/sh\n"));
        assert!(text.contains("TRAILER!!!\0"));
        // The name size field counts the terminating NUL: "init" is 5.
        assert_eq!(&text[94..102], "00000005");
    }

    #[test]
    fn dependencies_come_from_the_modinfo_strings() {
        let module = b"\x7fELF junk\0license=GPL\0depends=virtio,9pnet,virtio_ring\0vermagic=6.1\0";
        assert_eq!(module_dependencies(module), ["virtio", "9pnet", "virtio_ring"]);
        assert!(module_dependencies(b"\0depends=\0name=veth\0").is_empty());
        assert!(module_dependencies(b"no modinfo at all").is_empty());
    }

    #[test]
    fn modules_load_after_their_dependencies_and_once() {
        let dir = std::env::temp_dir().join(format!("wanmon-guest-test-{}", std::process::id()));
        let modules = dir.join("lib/modules/9.9-test/kernel/net");
        std::fs::create_dir_all(&modules).expect("scratch");
        std::fs::write(modules.join("a.ko"), b"\0depends=b,c-d\0").expect("a");
        std::fs::write(modules.join("b.ko"), b"\0depends=c_d\0").expect("b");
        std::fs::write(modules.join("c_d.ko"), b"\0depends=\0").expect("c");
        std::fs::write(dir.join("lib/modules/9.9-test/modules.builtin"), "kernel/fs/e.ko\n")
            .expect("builtin");
        let parts = Parts { root: dir.clone(), release: "9.9-test".into() };
        let order = parts.modules_with_dependencies(&["a", "b", "e"]).expect("resolved");
        let names: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["c_d", "b", "a"]);
        let missing = parts.modules_with_dependencies(&["nowhere"]).unwrap_err();
        assert!(missing.contains("module nowhere is neither"), "{missing}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn console_events_keep_their_time_and_words() {
        let console = "noise\r\nWANMON-X 1.50 KERNEL x86_64 6.1\r\n[  2.0] WANMON-X 2.25 DONE\n";
        let events = events(console, "WANMON-X ");
        assert_eq!(events, [(1.5, vec!["KERNEL", "x86_64", "6.1"]), (2.25, vec!["DONE"])]);
    }
}
