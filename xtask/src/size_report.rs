//! Where the router binary's bytes go: the symbols of the unstripped build (what `llvm-nm`
//! reads), summed by crate (`wanmon`, `core`, `alloc`, `std`, the C library), the largest
//! ones, and each crate's change against the figures recorded in the repository
//! (`xtask/size-record.tsv`), so a change that costs flash shows its cost in review.
//! `cargo xtask dist --record-sizes` records the current figures.

use crate::root;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How many of the largest symbols the report lists.
const LARGEST: usize = 15;

/// std machinery the router's daemon does without, each replaced by a smaller piece of its own
/// (docs/footprint.md): a symbol of one of these means a change brought it back, and its flash
/// cost with it. Each pair: what to look for in a name, and what serves instead.
const KEPT_OFF: &[(&str, &str)] = &[
    ("core::net::parser::", "address.rs reads addresses"),
    ("Addr as core::fmt::Display>::fmt", "address::text writes addresses"),
    ("core::str::pattern::TwoWaySearcher", "text::split_pair and pair_separated"),
    ("core::str::pattern::CharSearcher", "text::split_byte, byte_separated and has_byte"),
    ("<std::io::error::Error>::kind", "errors are told apart by raw_os_error"),
    ("std::rt::cleanup", "main.rs's own C main and system::start_up"),
    ("std::io::stdio::Stdin", "no reading of stdin at all"),
    ("default_read_to_end", "a read loop of its own (protocol::call)"),
    ("fstatat", "no stat(2): control::listen removes a stale socket without asking"),
    ("join_generic_copy", "text::comma_separated"),
    ("std::time::Instant", "system::monotonic_now, in the core's unit"),
    ("from_utf8_lossy", "protocol::call shows an answer up to its first byte that is not UTF-8"),
    ("<std::io::error::Error as core::fmt::Display>::fmt", "text::OsError shows an OS error"),
    ("core::fmt::", "text::Show, text! and put! write every message"),
    ("core::str::converts::from_utf8", "text::utf8, a plain walk"),
    ("alloc::ffi::c_str::CString", "system::c_string"),
    ("std::sys::fs::remove_file", "system::remove_file"),
    ("specialized_div_rem", "daemon::division (64-bit division a bit at a time)"),
];

/// C functions the daemon no longer imports (each import is ~60 bytes of symbol, name, hash
/// entry, relocation and stub): `daemon::kernel` makes the same system calls through the one
/// `syscall` import, and sigaction alone sets signal dispositions. Matched by exact name.
const IMPORTS_KEPT_OFF: &[&str] = &[
    "accept4",
    "bind",
    "connect",
    "dup2",
    "execve",
    "getpid",
    "getsockname",
    "kill",
    "listen",
    "pipe2",
    "poll",
    "prctl",
    "recv",
    "recvfrom",
    "send",
    "sendto",
    "setsid",
    "setsockopt",
    "sigemptyset",
    "signal",
    "socket",
    "umask",
    "unlink",
    "waitpid",
];

/// The first import in [`IMPORTS_KEPT_OFF`], with what serves instead.
fn imported_again(imports: &[Symbol]) -> Option<(&str, &'static str)> {
    let instead = "daemon::kernel (system calls through syscall(2)) or system::set_disposition";
    imports
        .iter()
        .find(|import| IMPORTS_KEPT_OFF.contains(&import.name.as_str()))
        .map(|import| (import.name.as_str(), instead))
}

/// The first symbol of something in [`KEPT_OFF`], with what serves instead.
fn brought_back(symbols: &[Symbol]) -> Option<(&str, &'static str)> {
    symbols.iter().find_map(|symbol| {
        KEPT_OFF
            .iter()
            .find(|(pattern, _)| symbol.name.contains(pattern))
            .map(|(_, instead)| (symbol.name.as_str(), *instead))
    })
}

pub fn record_file() -> PathBuf {
    root().join("xtask/size-record.tsv")
}

/// One symbol that takes room in the file (code, constants, initialised data).
#[derive(Debug, PartialEq)]
struct Symbol {
    size: u64,
    name: String,
}

/// `llvm-nm -S -C` lines: `ADDRESS SIZE TYPE NAME`; bss (`b`, `B`) takes no room in the file,
/// and aliases (musl's `__fstatat` and `__fstatat_time64`) share their bytes: counted once.
fn parse_nm(text: &str) -> Vec<Symbol> {
    let mut symbols = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        let mut fields = line.splitn(4, ' ');
        let (Some(address), Some(size), Some(kind), Some(name)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(size) = u64::from_str_radix(size, 16) else { continue };
        if size > 0 && !matches!(kind, "b" | "B") && seen.insert(address) {
            symbols.push(Symbol { size, name: name.to_string() });
        }
    }
    symbols
}

/// The crate a demangled symbol belongs to: the first path of the name (`<wanmon::x as
/// core::fmt::Display>::fmt` is wanmon's); a name without a path is the C side's.
fn owner(name: &str) -> &str {
    let name = name.trim_start_matches(['<', '&', '*']).trim_start_matches("dyn ");
    let name = name.trim_start_matches("mut ").trim_start_matches("const ");
    match name.split_once("::") {
        Some((first, _)) if first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => first,
        _ => "C side (main, constants, compiler-rt)",
    }
}

fn by_owner(symbols: &[Symbol]) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    for symbol in symbols {
        *totals.entry(owner(&symbol.name).to_string()).or_insert(0) += symbol.size;
    }
    totals
}

fn parse_record(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(owner, bytes)| Some((owner.to_string(), bytes.trim().parse().ok()?)))
        .collect()
}

fn format_record(totals: &BTreeMap<String, u64>) -> String {
    let mut text = String::from(
        "# Bytes of symbols per crate in the mipsel_24kc binary (cargo xtask dist --record-sizes)\n",
    );
    for (owner, bytes) in totals {
        text.push_str(&format!("{owner}\t{bytes}\n"));
    }
    text
}

/// The report's text: per crate with the change against `recorded`, then the largest symbols.
fn render(symbols: &[Symbol], recorded: &BTreeMap<String, u64>) -> String {
    let totals = by_owner(symbols);
    let mut rows: Vec<(&String, &u64)> = totals.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1));
    let mut text = String::from("where the bytes go (symbols of the unstripped build):\n");
    let all: u64 = totals.values().sum();
    let all_before: u64 = recorded.values().sum();
    for (owner, bytes) in rows {
        let change = match recorded.get(owner) {
            Some(before) => format!("{:+}", *bytes as i64 - *before as i64),
            None => "new".into(),
        };
        text.push_str(&format!("  {bytes:>8}  {change:>7}  {owner}\n"));
    }
    for owner in recorded.keys().filter(|o| !totals.contains_key(*o)) {
        text.push_str(&format!("  {:>8}  {:>7}  {owner}\n", 0, "gone"));
    }
    let change = all as i64 - all_before as i64;
    text.push_str(&format!(
        "  {all:>8}  {change:>+7}  all symbols (against xtask/size-record.tsv)\n"
    ));
    text.push_str(&format!("largest {LARGEST} symbols:\n"));
    let mut largest: Vec<&Symbol> = symbols.iter().collect();
    largest.sort_by_key(|s| std::cmp::Reverse(s.size));
    for symbol in largest.into_iter().take(LARGEST) {
        let name: String = symbol.name.chars().take(110).collect();
        text.push_str(&format!("  {:>8}  {name}\n", symbol.size));
    }
    text
}

/// What `llvm-nm` with `options` prints for `binary`.
fn listed(binary: &Path, options: &[&str]) -> Result<String, String> {
    let out = Command::new(crate::dist::llvm_tool("nm")?)
        .args(options)
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run llvm-nm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "llvm-nm {}: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The functions `binary` takes from the router's C library: `llvm-nm -u` lines, `U name` or
/// `w name` (weak). They cost no bytes of their own, but one in [`KEPT_OFF`] is still back.
fn parse_imports(text: &str) -> Vec<Symbol> {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .chunks(2)
        .filter(|pair| matches!(pair, ["U" | "w", _]))
        .map(|pair| Symbol { size: 0, name: pair[1].to_string() })
        .collect()
}

/// The report for `binary` (unstripped); with `record`, the figures are written to the record.
pub fn report(binary: &Path, record: bool) -> Result<String, String> {
    let symbols = parse_nm(&listed(binary, &["-S", "-C", "--defined-only"])?);
    if symbols.is_empty() {
        return Err(format!("{} has no symbol table: built stripped?", binary.display()));
    }
    let imports = parse_imports(&listed(binary, &["-u"])?);
    let again = brought_back(&symbols).or_else(|| brought_back(&imports));
    if let Some((name, instead)) = again.or_else(|| imported_again(&imports)) {
        return Err(format!(
            "the router's daemon has {name} again, which costs flash for what {instead} does \
             (docs/footprint.md)"
        ));
    }
    let file = record_file();
    let recorded = parse_record(&std::fs::read_to_string(&file).unwrap_or_default());
    let mut text = render(&symbols, &recorded);
    if !imports.is_empty() {
        text.push_str(&format!("  and {} functions of the router's C library\n", imports.len()));
    }
    if record {
        std::fs::write(&file, format_record(&by_owner(&symbols)))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_of_what_is_kept_off_is_found_too() {
        let imports = parse_imports("         w _init\n         U fstatat\n         U memcpy\n");
        let names: Vec<&str> = imports.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["_init", "fstatat", "memcpy"]);
        assert_eq!(brought_back(&imports).map(|(name, _)| name), Some("fstatat"));
        assert_eq!(brought_back(&imports[2..]), None);
    }

    #[test]
    fn a_system_call_wrapper_imported_again_is_found_by_its_exact_name() {
        let imports = parse_imports(
            "         U memcpy
         U syscall
         U sendto
",
        );
        assert_eq!(imported_again(&imports).map(|(name, _)| name), Some("sendto"));
        assert_eq!(imported_again(&imports[..2]), None, "syscall itself is the one kept");
        let kernel = parse_nm("0 00000020 t wanmon::daemon::kernel::sendto\n");
        assert_eq!(brought_back(&kernel), None);
        assert_eq!(imported_again(&kernel), None, "only imports are matched, by exact name");
    }

    #[test]
    fn symbols_are_grouped_by_their_first_path() {
        let nm = "00400100 00000040 T wanmon::main\n\
                  00400200 00000010 t <wanmon::core::Decision as core::fmt::Display>::fmt\n\
                  00400200 00000010 t wanmon::alias_of_the_same_bytes\n\
                  00400300 00000020 T core::fmt::write\n\
                  00400400 00000100 B heap.global\n\
                  00400500 00000008 T memcpy\n\
                  00400600 00000004 r <&mut std::io::Stdout as std::io::Write>::flush\n\
                  garbage line\n";
        let symbols = parse_nm(nm);
        assert_eq!(symbols.len(), 5, "bss takes no room in the file: {symbols:?}");
        let totals = by_owner(&symbols);
        assert_eq!(totals.get("wanmon"), Some(&0x50));
        assert_eq!(totals.get("core"), Some(&0x20));
        assert_eq!(totals.get("std"), Some(&4));
        assert_eq!(totals.get("C side (main, constants, compiler-rt)"), Some(&8));
    }

    #[test]
    fn std_machinery_kept_off_the_router_is_noticed_when_it_comes_back() {
        let clean =
            parse_nm("0 00000100 T wanmon::address::ipv6\n1 00000010 T core::str::from_utf8\n");
        assert_eq!(brought_back(&clean), None);
        let formatter = parse_nm("0 00000100 T wanmon::main\n1 00000010 T core::fmt::write\n");
        assert!(brought_back(&formatter).is_some_and(|(_, instead)| instead.contains("text!")));
        let parser = parse_nm(
            "0 00000100 T wanmon::main\n1 00000200 t <core::net::parser::Parser>::read_ipv4_addr\n",
        );
        assert_eq!(
            brought_back(&parser),
            Some(("<core::net::parser::Parser>::read_ipv4_addr", "address.rs reads addresses"))
        );
        let musl = parse_nm("0 00000400 T __fstatat\n");
        assert!(brought_back(&musl).is_some_and(|(_, instead)| instead.contains("stat(2)")));
    }

    #[test]
    fn the_report_shows_the_change_against_the_record() {
        let symbols =
            parse_nm("0 00000100 T wanmon::a\n1 00000010 T core::b\n2 00000008 T std::c\n");
        let recorded = parse_record(&format_record(&BTreeMap::from([
            ("wanmon".to_string(), 200),
            ("core".to_string(), 16),
            ("gone_crate".to_string(), 5),
        ])));
        let text = render(&symbols, &recorded);
        assert!(text.contains("       256      +56  wanmon"), "{text}");
        assert!(text.contains("        16       +0  core"), "{text}");
        assert!(text.contains("         8      new  std"), "{text}");
        assert!(text.contains("         0     gone  gone_crate"), "{text}");
        assert!(text.contains("       280      +59  all symbols"), "{text}");
    }
}
