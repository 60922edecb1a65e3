//! Repository hygiene that no compiler checks: file headers, and docs that must match the tree.

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
fn architecture_names_every_core_module() {
    let map = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut files = Vec::new();
    rust_files(&root().join("controller/src"), &mut files);
    for file in files {
        let name = file.file_name().unwrap_or_default().to_string_lossy().to_string();
        if name == "mod.rs" || name == "lib.rs" {
            continue;
        }
        assert!(map.contains(&name), "ARCHITECTURE.md does not mention `{name}`");
    }
}
