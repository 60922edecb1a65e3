//! Repository hygiene that no compiler checks: file headers, the architecture's seams (what the
//! core, the router binary and the simulator may use), function length, and docs that must match
//! the tree.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_doc_line() {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    assert!(files.len() > 10, "found only {} .rs files", files.len());
    let offenders: Vec<String> = files
        .iter()
        .filter(|path| !fs::read_to_string(path).unwrap_or_default().starts_with("//!"))
        .map(|path| path.strip_prefix(root()).unwrap_or(path).display().to_string())
        .collect();
    assert!(offenders.is_empty(), "files without a leading `//!` line: {offenders:?}");
}

#[test]
fn ci_runs_the_test_command_the_readme_shows() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let ci = fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    assert!(readme.contains("\ncargo xtask ci\n"), "README.md must show `cargo xtask ci`");
    assert!(
        readme.contains("\ncargo xtask sim\n"),
        "README.md must show the main job `cargo xtask sim`"
    );
    assert!(ci.contains("cargo xtask ci"), ".ci/run must run the README's test command");
}

#[test]
fn architecture_names_every_module() {
    let map = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut files = Vec::new();
    for crate_src in ["controller/src", "unpack/src", "simulator/src", "xtask/src", "benches/src"] {
        rust_files(&root().join(crate_src), &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap_or_default().to_string_lossy().to_string())
        .filter(|name| !matches!(name.as_str(), "mod.rs" | "lib.rs" | "main.rs"))
        .filter(|name| !map.contains(&format!("{name}`")))
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md does not name (in backquotes): {missing:?}");
}

/// The text of a source file with comments, strings and character literals blanked out, line
/// structure kept: what is left is code, so braces and paths can be counted and searched.
fn code_only(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |text: &[u8], out: &mut String| {
        for &b in text {
            out.push(if b == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < bytes.len() {
        let rest = &bytes[i..];
        let after_ident = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let end = if rest.starts_with(b"//") {
            rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            find(rest, b"*/").map_or(rest.len(), |e| e + 2)
        } else if !after_ident && (rest.starts_with(b"r#") || rest.starts_with(b"r\"")) {
            let hashes = rest[1..].iter().take_while(|&&b| b == b'#').count();
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let open = 2 + hashes;
            find(&rest[open..], &close).map_or(rest.len(), |e| open + e + close.len())
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(rest.len())
        } else if rest[0] == b'\'' && char_literal(rest) > 0 {
            char_literal(rest)
        } else {
            out.push(rest[0] as char);
            i += 1;
            continue;
        };
        blank(&rest[..end], &mut out);
        i += end;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The length of a character literal at the start of `text` (`'a'`, `'\n'`, `'\u{2028}'`), or
/// 0 for a lifetime.
fn char_literal(text: &[u8]) -> usize {
    if text.get(1) == Some(&b'\\') {
        return text.iter().skip(2).position(|&b| b == b'\'').map_or(0, |e| e + 3);
    }
    if text.get(2) == Some(&b'\'') { 3 } else { 0 }
}

/// Every function outside tests with its length in lines: `(file, line, name, lines)`.
fn function_lengths(file: &Path) -> Vec<(usize, String, usize)> {
    let code = code_only(&fs::read_to_string(file).unwrap_or_default());
    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "fn") else { continue };
        let leading = &words[..at];
        let modifiers =
            ["pub", "pub(crate)", "pub(super)", "const", "unsafe", "async", "extern", "\"C\""];
        if !leading.iter().all(|w| modifiers.contains(w)) {
            continue;
        }
        let name = words.get(at + 1).map_or("", |w| w.split(['(', '<']).next().unwrap_or(w));
        let (mut depth, mut opened) = (0i32, false);
        for (end, body) in lines.iter().enumerate().skip(start) {
            for c in body.chars() {
                match c {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth == 0) || (!opened && body.contains(';')) {
                found.push((start + 1, name.to_string(), end - start + 1));
                break;
            }
        }
    }
    found
}

#[test]
fn no_function_outside_tests_is_longer_than_80_lines() {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    let mut long = Vec::new();
    for file in files {
        let shown = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
        if shown.contains("/tests/") || shown.ends_with("_tests.rs") {
            continue;
        }
        for (line, name, length) in function_lengths(&file) {
            if length > 80 {
                long.push(format!("{shown}:{line} {name}: {length} lines"));
            }
        }
    }
    assert!(long.is_empty(), "functions longer than 80 lines: {long:#?}");
}

#[test]
fn the_length_check_reads_code_not_strings_or_comments() {
    let dir = std::env::temp_dir().join(format!("wanmon-tidy-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("scratch");
    let file = dir.join("sample.rs");
    let source = "fn short() {\n    let s = \"}}}\";\n    let r = r#\"{\"#;\n    let c = '}';\n    // }\n}\n\
                  pub(crate) fn two<'a>(x: &'a str) -> &'a str {\n    x\n}\n";
    fs::write(&file, source).expect("sample");
    let lengths = function_lengths(&file);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(lengths, [(1, "short".to_string(), 6), (7, "two".to_string(), 3)]);
}

/// Every `use`/path of the crate's sources that names one of `paths`, as `file:line: text`.
fn uses_of(dir: &str, paths: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root().join(dir), &mut files);
    let mut found = Vec::new();
    for file in files {
        let code = code_only(&fs::read_to_string(&file).unwrap_or_default());
        for (i, line) in code.lines().enumerate() {
            if paths.iter().any(|p| line.contains(p)) {
                let shown = file.strip_prefix(root()).unwrap_or(&file).display();
                found.push(format!("{shown}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_core_does_no_io() {
    let io = [
        "std::fs",
        "std::time",
        "std::process",
        "std::thread",
        "std::io",
        "std::os",
        "std::net::UdpSocket",
        "std::net::TcpStream",
        "std::net::TcpListener",
        "libc::",
    ];
    let found = uses_of("controller/src/core", &io);
    assert!(found.is_empty(), "the core is sans-IO, but: {found:#?}");
}

#[test]
fn the_router_binary_depends_on_libc_only() {
    // The daemon on libc's declarations, and the unpacker it ships inside (`cargo xtask dist`)
    // on nothing: it makes its own system calls.
    for (crate_dir, allowed) in [("controller", &["libc"][..]), ("unpack", &[])] {
        let path = root().join(crate_dir).join("Cargo.toml");
        let manifest = fs::read_to_string(&path).expect("manifest");
        let dependencies: Vec<&str> = manifest
            .split("\n[")
            .filter(|section| section.starts_with("dependencies]"))
            .flat_map(|section| section.lines().skip(1))
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| line.split(['=', '.', ' ']).next().unwrap_or(line))
            .collect();
        assert_eq!(dependencies, allowed, "{crate_dir}: every crate costs flash on the router");
    }
}

#[test]
fn the_simulator_sees_only_the_core_and_the_protocol() {
    let mut found = uses_of("simulator", &["wanmon::"]);
    found.retain(|line| {
        let after: Vec<&str> = line.split("wanmon::").skip(1).collect();
        !after.iter().all(|a| a.starts_with("core") || a.starts_with("protocol"))
    });
    assert!(found.is_empty(), "the simulator reaches into the daemon: {found:#?}");
}
