//! The router's own C library for the tests that run the router build: musl 1.2.5 (what
//! OpenWrt 24.10 and 25.12 ship) built from its release sources as `libc.so`, which is also
//! musl's dynamic loader. The mipsel daemon links against the router's `/lib/libc.so` instead
//! of carrying a C library of its own, so qemu-user (`cargo xtask dist`) and the MIPS kernel
//! (`cargo xtask vm`) need the same library at the same path.
//!
//! zig compiles it (the compiler the router build already uses). One detail: zig's compiler-rt,
//! which the soft-float library needs for its arithmetic, defines `memcpy` and five more as
//! hidden weak symbols, and a hidden definition anywhere hides musl's own. So the link gets a
//! copy of compiler-rt with those made local, and `libc.so` exports musl's as the router's does.

use crate::dist::Arch;
use crate::run;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = "1.2.5";
/// The release tarball; Debian's archive keeps it as the `.orig` of its musl package.
const SOURCE_URL: &str = "http://deb.debian.org/debian/pool/main/m/musl/musl_1.2.5.orig.tar.gz";
/// As musl.libc.org publishes it for musl-1.2.5.tar.gz.
const SOURCE_SHA256: &str = "a9a118bbe84d8764da0ea0d28b3ab3fae8477fc7e4085d90102b8596fc7c75e4";
/// What compiler-rt defines that musl must export itself.
const MUSL_OWNS: [&str; 6] = ["bcmp", "memcmp", "memcpy", "memmove", "memset", "strlen"];

/// A directory with `lib/libc.so` and the loader's name for it, as on the router: the root for
/// qemu-user's `QEMU_LD_PREFIX` and the files for the MIPS guest. Built once, then cached.
pub fn router_root(arch: &Arch, cc: &Path, zig: &Path) -> Result<PathBuf, String> {
    let Some(loader) = arch.loader else {
        return Err(format!("{} links statically: it has no loader to provide", arch.openwrt));
    };
    let root = crate::guest::cache().join(format!("musl-{VERSION}-{}", arch.openwrt));
    let complete = root.join(".complete");
    if complete.exists() {
        return Ok(root);
    }
    let sources = unpacked_sources()?;
    let runtime = compiler_rt_without_string_functions(cc, zig, &root)?;
    let library = build_library(arch.rust, &sources, cc, zig, &runtime)?;
    let lib = root.join("lib");
    std::fs::create_dir_all(&lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    let installed = lib.join("libc.so");
    let objcopy = crate::dist::llvm_tool("objcopy")?;
    run(&objcopy, &["--strip-all", &library.to_string_lossy(), &installed.to_string_lossy()])?;
    let name = Path::new(loader).file_name().ok_or("the loader path has no file name")?;
    let link = lib.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("libc.so", &link)
        .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
    std::fs::write(&complete, VERSION).map_err(|e| format!("{}: {e}", complete.display()))?;
    Ok(root)
}

/// The release sources, downloaded, checked against the published digest and unpacked.
fn unpacked_sources() -> Result<PathBuf, String> {
    let cache = crate::guest::cache();
    let tarball = cache.join(format!("musl-{VERSION}.tar.gz"));
    if !tarball.exists() || digest(&tarball)? != SOURCE_SHA256 {
        let partial = cache.join(format!("musl-{VERSION}.tar.gz.partial"));
        std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        run("curl", &["-sSfL", "--retry", "3", "-o", &partial.to_string_lossy(), SOURCE_URL])?;
        let got = digest(&partial)?;
        if got != SOURCE_SHA256 {
            return Err(format!(
                "{SOURCE_URL} has sha256 {got}; musl {VERSION}'s release has {SOURCE_SHA256}"
            ));
        }
        std::fs::rename(&partial, &tarball).map_err(|e| format!("{}: {e}", tarball.display()))?;
    }
    let sources = cache.join("musl-build");
    let _ = std::fs::remove_dir_all(&sources);
    std::fs::create_dir_all(&sources).map_err(|e| format!("{}: {e}", sources.display()))?;
    let into = sources.to_string_lossy();
    run("tar", &["-xzf", &tarball.to_string_lossy(), "-C", &into])?;
    Ok(sources.join(format!("musl-{VERSION}")))
}

fn digest(file: &Path) -> Result<String, String> {
    let out = Command::new("sha256sum")
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run sha256sum: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum {} printed nothing", file.display()))
}

/// zig's compiler-rt for the target (the archive its linker adds for `-lgcc`, which zig names
/// when asked to show its link), copied with musl's string functions made local.
fn compiler_rt_without_string_functions(
    cc: &Path,
    zig: &Path,
    work: &Path,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let probe = work.join("probe.c");
    std::fs::write(&probe, "int probe(void) { return 0; }\n").map_err(|e| e.to_string())?;
    let out = Command::new(cc)
        .env("ZIG_GLOBAL_CACHE_DIR", crate::guest::cache().join("zig-cache"))
        .env("ZIG_VERBOSE_LINK", "1")
        .arg("-shared")
        .arg("-nostdlib")
        .arg("-o")
        .arg(work.join("probe.so"))
        .arg(&probe)
        .arg("-lgcc")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cc.display()))?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let archive = said
        .split_whitespace()
        .find(|word| word.ends_with("libcompiler_rt.a"))
        .ok_or_else(|| format!("{} did not name its compiler-rt: {said}", zig.display()))?;
    let localized = work.join("libcompiler_rt-local.a");
    let mut args: Vec<String> =
        MUSL_OWNS.iter().map(|s| format!("--localize-symbol={s}")).collect();
    args.push(archive.to_string());
    args.push(localized.to_string_lossy().into_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&crate::dist::llvm_tool("objcopy")?, &args)?;
    Ok(localized)
}

/// musl's own build of `lib/libc.so` for the target `cc` compiles for.
fn build_library(
    target: &str,
    sources: &Path,
    cc: &Path,
    zig: &Path,
    runtime: &Path,
) -> Result<PathBuf, String> {
    let ar = sources.join("zig-ar");
    std::fs::write(&ar, format!("#!/bin/sh\nexec \"{}\" ar \"$@\"\n", zig.display()))
        .map_err(|e| format!("{}: {e}", ar.display()))?;
    std::fs::set_permissions(&ar, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", ar.display()))?;
    let in_sources = |program: &str, args: &[String]| -> Result<(), String> {
        println!("$ (in {}) {program} {}", sources.display(), args.join(" "));
        let status = Command::new(program)
            .args(args)
            .current_dir(sources)
            .env("ZIG_GLOBAL_CACHE_DIR", crate::guest::cache().join("zig-cache"))
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if status.success() { Ok(()) } else { Err(format!("musl's {program} failed ({status})")) }
    };
    in_sources(
        "./configure",
        &[
            format!("--target={target}"),
            "--disable-static".into(),
            "--prefix=/".into(),
            format!("CC={}", cc.display()),
            format!("AR={}", ar.display()),
            "RANLIB=true".into(),
            // For size, as OpenWrt builds it (musl's own default is -O2).
            "CFLAGS=-Os".into(),
        ],
    )?;
    in_sources(
        "make",
        &["-j2".into(), "lib/libc.so".into(), format!("LIBCC={}", runtime.display())],
    )?;
    Ok(sources.join("lib/libc.so"))
}
