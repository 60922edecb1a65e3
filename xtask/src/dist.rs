//! `cargo xtask dist`: cross-compiles the router binary for OpenWrt and packages it.
//!
//! The route that works on a fresh Debian machine (`shared/notes/cross-mipsel.md`): Debian's own
//! Rust (rustc-web, cargo-web, rust-web-src) builds std from source with `-Zbuild-std`, zig from
//! PyPI links. Not position-independent, size flags; the mipsel daemon links against the
//! router's own musl (`/lib/libc.so`), everything else statically against zig's. Then `.pdr`
//! and `.comment` are stripped and the package is checked against the flash budget.

use crate::package::{self, Sizes};
use crate::{has_command, is_root, root, run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each mipsel_24kc package (`.ipk`, `.apk`) must fit in this. The router this is for had 132 KB
/// free, and what the package installs costs about its own size on flash (the shipped binary is
/// packed, which JFFS2 cannot shrink further). Lowered from 128 KiB when the daemon was packed
/// (106.7 KB), to 100 KiB when the daemon lost 28 KB and the unpacker its C library (96.4 KB),
/// to 92 KiB when the daemon left its static C library for the router's (89.9 KB), to 90 KiB
/// at 87.5 KB, to 84 KiB at 82.7 KB, and to the goal, 80 KiB, when both packages met it (the
/// ipk 80.8 KB, the apk 81.3 KB), so that any return to an old size fails.
pub const BUDGET: u64 = 80 * 1024;
/// The x86_64 packages' budget: that build still carries its own C library (`Arch::loader`).
const STATIC_BUDGET: u64 = 100 * 1024;
const ZIG_VERSION: &str = "0.17.1";
const DEBIAN_RUST: [&str; 3] = ["rustc-web", "cargo-web", "rust-web-src"];

/// An OpenWrt architecture and how to build for it.
#[derive(Debug, Clone, Copy)]
pub struct Arch {
    pub openwrt: &'static str,
    pub rust: &'static str,
    zig: &'static str,
    cpu: Option<&'static str>,
    /// xz's LZMA options for the packed daemon, chosen by measuring on its code.
    lzma: &'static str,
    /// The router's dynamic loader, where the daemon links against the router's own C library;
    /// `None` links it statically.
    pub loader: Option<&'static str>,
}

pub const ARCHES: [Arch; 2] = [
    Arch {
        openwrt: "mipsel_24kc",
        rust: "mipsel-unknown-linux-musl",
        zig: "mipsel-linux-musleabi",
        cpu: Some("mips32r2+soft_float"),
        // Instructions are 4-byte words (2 position bits for literals and matches), one bit of
        // literal context: 96.9 KB, against 98.5 KB with xz's defaults and 126 KB with gzip -9.
        lzma: "--lzma1=preset=9e,lc=1,lp=2,pb=2",
        // Every OpenWrt has musl as /lib/libc.so (the `libc` package every package depends
        // on): not carrying a second copy takes 17 KB off the daemon, 6.7 KB off the package.
        loader: Some("/lib/ld-musl-mipsel-sf.so.1"),
    },
    Arch {
        openwrt: "x86_64",
        rust: "x86_64-unknown-linux-musl",
        zig: "x86_64-linux-musl",
        cpu: None,
        // Instructions of any length: no position bits, full literal context (1.5 KB less).
        lzma: "--lzma1=preset=9e,lc=3,lp=0,pb=0",
        // Static: the OpenWrt userland the x86_64 package is tested on is built against the
        // host's C library, which has no musl loader.
        loader: None,
    },
];

/// How the daemon links where the router's C library serves (`Arch::loader`): against its
/// `libc.so`, yet not position-independent (PIC MIPS code is bulky): calls into the library go
/// through the executable's PLT.
const DYNAMIC: &str = "-C target-feature=-crt-static -C link-arg=-dynamic";
/// How the rest links: fully static, as static-PIE crashes on MIPS.
const STATIC: &str = "-C target-feature=+crt-static";

/// The flags that make the binary small, each with what it is for. Measured on mipsel_24kc.
const RUSTFLAGS: &[&str] = &[
    // Not position-independent either way, and no C library of rustc's own choosing.
    "-C relocation-model=static",
    "-C link-self-contained=no",
    // Panics abort without formatting a message: no panic machinery in the binary.
    "-Zunstable-options",
    "-Cpanic=immediate-abort",
    // No file/line strings for every possible panic location.
    "-Zlocation-detail=none",
    // Nothing unwinds, so no unwind tables: .eh_frame went from 26 KB to 7 KB.
    "-C force-unwind-tables=no",
    // zig warns that rustlib/<target>/lib does not exist: there is no prebuilt std, by design.
    "-A linker_messages",
];

/// Debian's Rust with its library sources, installed if this is a Debian machine and we are root.
fn debian_rust() -> Result<(), String> {
    let have_sources = Path::new("/usr/lib/rustlib/src/rust/library/std").exists();
    let new_enough = Command::new("/usr/bin/rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .is_some_and(|v| {
            v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()).is_some_and(|minor| minor >= 90)
        });
    if have_sources && new_enough && Path::new("/usr/bin/cargo").exists() {
        return Ok(());
    }
    if !is_root() || !has_command("apt-get") {
        return Err(format!(
            "the cross build needs Debian's Rust with its sources (1.90 or newer): \
             `apt-get update && apt-get install {}` (bookworm-security has 1.96)",
            DEBIAN_RUST.join(" ")
        ));
    }
    // The archive's lists may be old: bookworm itself has 1.85, bookworm-security 1.96.
    run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(DEBIAN_RUST);
    run("apt-get", &args)
}

/// zig from PyPI (it carries musl and compiler-rt for every target); returns the zig binary.
fn zig() -> Result<PathBuf, String> {
    let dir = crate::guest::cache().join(format!("zig-{ZIG_VERSION}"));
    let binary = dir.join("ziglang/zig");
    if binary.exists() {
        return Ok(binary);
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| has_command(p))
        .ok_or("the cross build needs python3 with pip (for zig from PyPI)")?;
    let target = dir.to_string_lossy().into_owned();
    run(
        python,
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            &target,
            &format!("ziglang=={ZIG_VERSION}"),
        ],
    )
    .map_err(|e| format!("{e}: zig comes from PyPI as `ziglang=={ZIG_VERSION}`"))?;
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!("pip installed ziglang but {} is missing", binary.display()))
    }
}

/// The linker rustc calls: zig's C compiler for the target. `-g`, or zig drops the symbol table
/// that the size report reads; [`build`] strips the binary itself.
/// Nothing unwinds (panics abort), so the C side (musl, compiler-rt) gets no unwind tables and
/// the link no `.eh_frame_hdr`: 4.6 KB of the stripped binary, 2.2 KB of the package.
const NO_UNWIND: &str = "-fno-unwind-tables -fno-asynchronous-unwind-tables -Wl,--no-eh-frame-hdr";

fn linker(arch: &Arch, zig: &Path) -> Result<PathBuf, String> {
    let path = crate::guest::cache().join(format!("cc-{}", arch.openwrt));
    let cpu = arch.cpu.map(|c| format!(" -mcpu={c}")).unwrap_or_default();
    let script = format!(
        "#!/bin/sh\nexec \"{}\" cc -target {}{cpu} -Os -g {NO_UNWIND} \"$@\"\n",
        zig.display(),
        arch.zig
    );
    std::fs::create_dir_all(crate::guest::cache())
        .map_err(|e| format!("cannot create {}: {e}", crate::guest::cache().display()))?;
    std::fs::write(&path, script).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let permissions = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&path, permissions)
        .map_err(|e| format!("cannot make {} executable: {e}", path.display()))?;
    Ok(path)
}

/// An LLVM tool (`objcopy`, `readelf`, `nm`) by the name Debian gives it: llvm-22's comes with
/// Debian's rustc-web, which the cross build installs.
pub(crate) fn llvm_tool(tool: &str) -> Result<String, String> {
    ["-22", "", "-19", "-14"]
        .iter()
        .map(|version| format!("llvm-{tool}{version}"))
        .find(|name| has_command(name))
        .ok_or_else(|| {
            format!("llvm-{tool} is missing (it comes with Debian's rustc-web as llvm-22)")
        })
}

/// What a router build runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Runtime {
    /// std over musl: the daemon.
    Std,
    /// core alone and no C library (its own `_start` and system calls): the unpacker, whose
    /// every byte is in the package uncompressed. musl's start-up alone was 2.5 KB of it.
    Bare,
}

/// Cargo for `arch` the way every router build runs it: Debian's Rust building the standard
/// library from source, zig linking, the size flags; release at opt-level "z", fat LTO, one
/// codegen unit, symbols kept for the size report (stripped after).
fn cross_cargo(arch: &Arch, linker: &Path, runtime: Runtime, target_dir: &Path) -> Command {
    let env_target = arch.rust.to_uppercase().replace('-', "_");
    let linkage = if arch.loader.is_some() && runtime == Runtime::Std { DYNAMIC } else { STATIC };
    let (build_std, features, link) = match runtime {
        Runtime::Std => ("std,panic_abort", "optimize_for_size", ""),
        // memcpy and friends from compiler-builtins, as there is no C library to have them.
        Runtime::Bare => (
            "core",
            "optimize_for_size,compiler-builtins-mem",
            " -C link-arg=-nostartfiles -C link-arg=-nostdlib",
        ),
    };
    let mut cargo = Command::new("/usr/bin/cargo");
    cargo
        .current_dir(root())
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTDOC", "/usr/bin/rustdoc")
        .env("ZIG_GLOBAL_CACHE_DIR", crate::guest::cache().join("zig-cache"))
        .env(format!("CARGO_TARGET_{env_target}_LINKER"), linker)
        .env(
            format!("CARGO_TARGET_{env_target}_RUSTFLAGS"),
            format!("{linkage} {}{link}", RUSTFLAGS.join(" ")),
        )
        .args(["build", "--release", "--locked", "--target", arch.rust])
        .args([format!("-Zbuild-std={build_std}"), format!("-Zbuild-std-features={features}")])
        // For size, not speed (host builds of the same profile run the replay).
        .args(["--config", "profile.release.opt-level=\"z\""])
        .args([
            "--config",
            "profile.release.lto=true",
            "--config",
            "profile.release.codegen-units=1",
        ])
        .args(["--config", "profile.release.strip=false"])
        .arg("--target-dir")
        .arg(target_dir);
    cargo
}

/// Builds the stripped daemon for `arch` (what [`pack`] compresses); returns its path.
pub fn build(arch: &Arch) -> Result<PathBuf, String> {
    debian_rust()?;
    let linker = linker(arch, &zig()?)?;
    let target_dir = root().join("target/dist-build");
    let mut cargo = cross_cargo(arch, &linker, Runtime::Std, &target_dir);
    finish(cargo.args(["-p", "wanmon"]), &format!("the {} build", arch.openwrt))?;
    let daemon = root().join("target/dist").join(arch.openwrt).join("wanmon-unpacked");
    strip(&target_dir.join(arch.rust).join("release/wanmon"), &daemon)?;
    if let Some(loader) = arch.loader {
        needs_only_router_libc(&daemon, loader)?;
    }
    Ok(daemon)
}

/// The router's C library and loader for `arch`, for running its daemon here (`crate::musl`).
pub fn router_root(arch: &Arch) -> Result<PathBuf, String> {
    let zig = zig()?;
    crate::musl::router_root(arch, &linker(arch, &zig)?, &zig)
}

/// A daemon that links against the router's C library must ask for the router's loader and
/// need nothing but `libc.so`: a router has no other library this build could count on.
fn needs_only_router_libc(daemon: &Path, loader: &str) -> Result<(), String> {
    let readelf = llvm_tool("readelf")?;
    let out = Command::new(&readelf)
        .args(["--program-headers", "--dynamic", "--relocs"])
        .arg(daemon)
        .output()
        .map_err(|e| format!("cannot run {readelf}: {e}"))?;
    check_dynamic(&String::from_utf8_lossy(&out.stdout), loader)
        .map_err(|e| format!("{}: {e}", daemon.display()))
}

/// Judges `readelf --program-headers --dynamic --relocs` of a daemon linked against the
/// router's C library: its loader, only `libc.so`, and no copy relocation. zig's link-time stub
/// of the C library puts every data object at one address, so copying one (`environ`) makes
/// the daemon define all of them as aliases of the same bytes, which the real library then
/// writes through (its start-up wrote the program's name over the environment).
fn check_dynamic(text: &str, loader: &str) -> Result<(), String> {
    let asks = format!("[Requesting program interpreter: {loader}]");
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    if !text.contains(&asks) || needed != ["libc.so"] {
        return Err(format!("should ask for {loader} and need only libc.so; it needs {needed:?}"));
    }
    let copied: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w.ends_with("_COPY")))
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    if !copied.is_empty() {
        return Err(format!(
            "copies the C library's data {copied:?} (a copy relocation): take it another way \
             (the environment comes from main's envp)"
        ));
    }
    Ok(())
}

/// Runs a cross build to its end; `what` names it if it fails.
fn finish(cargo: &mut Command, what: &str) -> Result<(), String> {
    let status = cargo.status().map_err(|e| format!("cannot run /usr/bin/cargo: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{what} failed ({status})")) }
}

/// Strips `built` into `out`. lld keeps MIPS procedure descriptors (.pdr) and .comment even
/// when stripping: ~9 %.
fn strip(built: &Path, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out.parent().unwrap_or(Path::new(".")))
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let (built, out) = (built.to_string_lossy(), out.to_string_lossy());
    run(&llvm_tool("objcopy")?, &["--strip-all", "-R", ".pdr", "-R", ".comment", &built, &out])
}

/// The binary that ships as `/usr/sbin/wanmon`: the unpacker (`unpack/`) carrying `daemon`
/// compressed with LZMA. The stream is decoded here with the same decoder and compared with
/// `daemon` byte for byte before it is built in. Returns the shipped binary's path.
pub fn pack(arch: &Arch, daemon: &Path) -> Result<PathBuf, String> {
    let plain = std::fs::read(daemon).map_err(|e| format!("{}: {e}", daemon.display()))?;
    let packed = lzma(daemon, plain.len(), arch.lzma)?;
    let mut unpacked = vec![0u8; plain.len()];
    wanmon_unpack::decode(&packed, &mut unpacked)
        .map_err(|e| format!("the packed {} does not decode: {}", arch.openwrt, e.describe()))?;
    if unpacked != plain {
        return Err(format!("the packed {} decodes to other bytes than the daemon", arch.openwrt));
    }
    let target_dir = root().join("target/dist-build-unpack");
    let payload = target_dir.join(format!("wanmon-{}.lzma", arch.openwrt));
    std::fs::create_dir_all(&target_dir).map_err(|e| format!("{}: {e}", target_dir.display()))?;
    std::fs::write(&payload, &packed).map_err(|e| format!("{}: {e}", payload.display()))?;
    let linker = linker(arch, &zig()?)?;
    let mut cargo = cross_cargo(arch, &linker, Runtime::Bare, &target_dir);
    cargo.args(["-p", "wanmon-unpack", "--features", "loader", "--bin", "wanmon-unpack"]);
    finish(cargo.env("WANMON_PACKED", &payload), &format!("the {} unpacker build", arch.openwrt))?;
    let shipped = root().join("target/dist").join(arch.openwrt).join("wanmon");
    strip(&target_dir.join(arch.rust).join("release/wanmon-unpack"), &shipped)?;
    crate::elf::trim(&shipped)?;
    Ok(shipped)
}

/// `file` compressed by xz as a `.lzma` stream, with its size (`len`) written into the header,
/// where xz leaves "unknown" (the unpacker sizes its memory file from it).
fn lzma(file: &Path, len: usize, options: &str) -> Result<Vec<u8>, String> {
    if !has_command("xz") {
        if !is_root() || !has_command("apt-get") {
            return Err("packing needs xz: apt-get install xz-utils".to_string());
        }
        run("apt-get", &["install", "-y", "-qq", "xz-utils"])?;
    }
    // xz's match finder and "nice" match length move the stream by a hundred bytes either way,
    // with no setting best for every build: each is tried, the smallest kept (what the decoder
    // reads, the header's properties, is the same for all).
    let mut smallest: Option<Vec<u8>> = None;
    for finder in ["bt4", "bt3"] {
        for nice in [32, 48, 64, 80, 96, 128, 192, 273] {
            let options = format!("{options},mf={finder},nice={nice}");
            let stream = xz_lzma(file, &options)?;
            if smallest.as_ref().is_none_or(|s| stream.len() < s.len()) {
                smallest = Some(stream);
            }
        }
    }
    let mut stream = smallest.ok_or("no LZMA stream was written")?;
    stream[5..wanmon_unpack::HEADER_LEN].copy_from_slice(&(len as u64).to_le_bytes());
    Ok(stream)
}

/// `file` as xz writes it in the `.lzma` format with `options` (`--lzma1=...`).
fn xz_lzma(file: &Path, options: &str) -> Result<Vec<u8>, String> {
    let out = Command::new("xz")
        .args(["--format=lzma", options, "--stdout"])
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run xz: {e}"))?;
    if !out.status.success() || out.stdout.len() < wanmon_unpack::HEADER_LEN {
        return Err(format!(
            "xz failed on {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// The binary [`build`] made for `arch` before it was stripped: its symbols tell where the bytes go.
pub fn unstripped(arch: &Arch) -> PathBuf {
    root().join("target/dist-build").join(arch.rust).join("release/wanmon")
}

pub fn arch_named(name: &str) -> Result<Arch, String> {
    ARCHES.iter().copied().find(|a| a.openwrt == name).ok_or_else(|| {
        let known: Vec<&str> = ARCHES.iter().map(|a| a.openwrt).collect();
        format!("unknown --target {name:?}: expected one of {}", known.join(", "))
    })
}

pub fn dist(args: &[String]) -> Result<(), String> {
    let mut arch = ARCHES[0];
    let mut record_sizes = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--record-sizes" => record_sizes = true,
            "--target" => {
                arch = arch_named(
                    iter.next()
                        .ok_or("--target needs an OpenWrt architecture, such as mipsel_24kc")?,
                )?
            }
            other => {
                return Err(format!(
                    "dist: unknown argument {other:?}; usage: cargo xtask dist [--target ARCH] [--record-sizes]"
                ));
            }
        }
    }
    let daemon = build(&arch)?;
    let binary = pack(&arch, &daemon)?;
    // The record is the router's (mipsel_24kc); other targets only show where their bytes go.
    let recorded = arch.openwrt == ARCHES[0].openwrt;
    if record_sizes && !recorded {
        return Err(format!(
            "--record-sizes records {}'s figures, not {}'s",
            ARCHES[0].openwrt, arch.openwrt
        ));
    }
    if recorded {
        print!("{}", crate::size_report::report(&unstripped(&arch), record_sizes)?);
    }
    let packages = package::build(&binary, arch.openwrt)?;
    package::verify(&packages.daemon, arch.openwrt)?;
    package::verify_apk(&packages.daemon_apk, arch.openwrt)?;
    // qemu-user hands the unpacker's exec to the host kernel, which cannot run a MIPS binary
    // without binfmt_misc: there the daemon runs itself, the shipped binary on the MIPS kernel
    // (`cargo xtask vm`). A native target runs what ships.
    run_emulated(&arch, if arch.openwrt == "x86_64" { &binary } else { &daemon })?;
    if arch.openwrt == "x86_64" {
        unpacker_fails_clearly(&binary)?;
    }
    println!(
        "packages:\n  {}\n  {}\n  {}\n  {}",
        packages.daemon.display(),
        packages.luci.display(),
        packages.daemon_apk.display(),
        packages.luci_apk.display()
    );
    for package in [&packages.daemon, &packages.daemon_apk] {
        let sizes = Sizes::measure(&daemon, &binary, package)?;
        let budget = if arch.loader.is_some() { BUDGET } else { STATIC_BUDGET };
        println!("{}", sizes.report(budget));
        if sizes.package > budget {
            return Err(format!(
                "{} is {} bytes, over the {budget}-byte budget",
                package.display(),
                sizes.package
            ));
        }
    }
    Ok(())
}

/// The unpacker where it cannot unpack must say what failed and exit 127, as a shell does for
/// a command it cannot run. Made to fail here by a file size limit of 512 bytes, which its
/// memory file cannot grow past (SIGXFSZ ignored, so the call fails rather than kills it).
fn unpacker_fails_clearly(binary: &Path) -> Result<(), String> {
    let script = format!("trap '' XFSZ; ulimit -f 1; exec '{}' --version", binary.display());
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let said = String::from_utf8_lossy(&out.stderr);
    let expected = "wanmon: cannot start: cannot size the memory file (errno 27)\n";
    if out.status.code() != Some(127) || said != expected {
        return Err(format!(
            "the unpacker with its memory file limited to 512 bytes exited {:?} saying {said:?}; \
             expected 127 and {expected:?}",
            out.status.code()
        ));
    }
    println!("the unpacker, unable to unpack, said so and exited 127: {}", expected.trim_end());
    Ok(())
}

/// `binary` run natively, or by qemu-user (`runner`) with the router's files below
/// `router_root` (qemu-user looks for the loader there).
fn command_for(runner: Option<&str>, router_root: Option<&Path>, binary: &Path) -> Command {
    let mut command = match runner {
        Some(runner) => {
            let mut command = Command::new(runner);
            command.arg(binary);
            command
        }
        None => Command::new(binary),
    };
    if let Some(root) = router_root {
        command.env("QEMU_LD_PREFIX", root);
    }
    command
}

/// Runs the built binary the way the router would, under qemu-user where the target is foreign:
/// `--version`, `check-config` on the packaged default config and on a broken one, and `status`
/// with no daemon listening.
pub fn run_emulated(arch: &Arch, binary: &Path) -> Result<(), String> {
    let runner = match arch.openwrt {
        "x86_64" => None,
        _ => Some("qemu-mipsel-static"),
    };
    if let Some(runner) = runner.filter(|r| !has_command(r)) {
        if is_root() && has_command("apt-get") {
            run("apt-get", &["install", "-y", "-qq", "qemu-user-static"])?;
        } else {
            println!(
                "!!! {runner} is missing (apt-get install qemu-user-static): the {} binary was NOT run",
                arch.openwrt
            );
            return Ok(());
        }
    }
    // The router's loader and C library where the daemon links against them.
    let router_root = arch.loader.map(|_| router_root(arch)).transpose()?;
    let exec = |args: &[&str]| -> Result<std::process::Output, String> {
        let mut command = command_for(runner, router_root.as_deref(), binary);
        command.args(args).output().map_err(|e| format!("cannot run {}: {e}", binary.display()))
    };
    let version = exec(&["--version"])?;
    let expected = format!("wanmon {}\n", env!("CARGO_PKG_VERSION"));
    if String::from_utf8_lossy(&version.stdout) != expected {
        return Err(format!(
            "{} --version printed {:?}",
            arch.openwrt,
            String::from_utf8_lossy(&version.stdout)
        ));
    }
    let config = root().join("openwrt-image/files/etc/wanmon/config.json");
    let checked = exec(&["check-config", &config.to_string_lossy()])?;
    if !checked.status.success() {
        return Err(format!(
            "{} check-config refused the default config: {}",
            arch.openwrt,
            String::from_utf8_lossy(&checked.stderr)
        ));
    }
    let broken = std::env::temp_dir().join("wanmon-dist-broken.json");
    std::fs::write(
        &broken,
        "{\"links\": [{\"name\": \"wan\", \"device\": \"eth0.2\", \"timeout_ms\": 70000}]}",
    )
    .map_err(|e| e.to_string())?;
    let refused = exec(&["check-config", &broken.to_string_lossy()]);
    let _ = std::fs::remove_file(&broken);
    let refused = refused?;
    let message = String::from_utf8_lossy(&refused.stderr);
    if refused.status.code() != Some(1) || !message.contains("links[0].timeout_ms") {
        return Err(format!(
            "{} check-config did not refuse a broken config as expected: {message}",
            arch.openwrt
        ));
    }
    // The control client's system calls: connecting to a socket nothing listens on.
    let absent = std::env::temp_dir().join("wanmon-dist-absent.sock");
    let status = exec(&["status", "--socket", &absent.to_string_lossy()])?;
    let message = String::from_utf8_lossy(&status.stderr);
    if status.status.code() != Some(1) || !message.contains("wanmon is not running") {
        return Err(format!(
            "{} status without a daemon printed {message:?}, exit {:?}",
            arch.openwrt,
            status.status.code()
        ));
    }
    let how = runner.map_or_else(|| "natively".to_string(), |r| format!("under {r}"));
    println!(
        "{} binary ran {how}: --version, check-config (valid and broken), status without a daemon",
        arch.openwrt
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_dynamic;

    const LOADER: &str = "/lib/ld-musl-mipsel-sf.so.1";
    const GOOD: &str = "  INTERP  0x0001b4 0x000101b4\n\
        \x20     [Requesting program interpreter: /lib/ld-musl-mipsel-sf.so.1]\n\
        Dynamic section at offset 0x8f8 contains 25 entries:\n\
        \x20 0x00000001 (NEEDED)             Shared library: [libc.so]\n\
        Relocation section '.rel.plt' at offset 0xc70 contains 46 entries:\n\
        \x20Offset     Info    Type                Sym. Value  Symbol's Name\n\
        00060fe8  0000027f R_MIPS_JUMP_SLOT       00000000   accept4\n";

    #[test]
    fn the_router_loader_and_only_its_c_library_pass() {
        assert_eq!(check_dynamic(GOOD, LOADER), Ok(()));
        let other = GOOD.replace("[libc.so]", "[libgcc_s.so.1]");
        assert!(check_dynamic(&other, LOADER).unwrap_err().contains("need only libc.so"));
        assert!(check_dynamic(GOOD, "/lib/ld-musl-mips-sf.so.1").is_err());
    }

    #[test]
    fn a_copy_of_the_c_librarys_data_fails() {
        let copied = format!(
            "{GOOD}Relocation section '.rel.dyn' at offset 0x6d0 contains 1 entries:\n\
             000408b0  0000017e R_MIPS_COPY            000408b0   environ\n"
        );
        assert!(check_dynamic(&copied, LOADER).unwrap_err().contains("[\"environ\"]"));
    }
}
