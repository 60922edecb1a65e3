//! Compresses the web page at build time so the binary carries it gzipped (it is served as is).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let page = "src/daemon/page.html";
    println!("cargo:rerun-if-changed={page}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("page.html.gz");
    // gzip is on every machine that builds this (Debian, OpenWrt SDK); -n keeps the output reproducible.
    let compressed = Command::new("gzip").args(["-9", "-n", "-c", page]).output();
    match compressed {
        Ok(output) if output.status.success() => {
            std::fs::write(&out, output.stdout).expect("write the compressed page")
        }
        Ok(output) => panic!("gzip failed on {page}: {}", String::from_utf8_lossy(&output.stderr)),
        Err(e) => panic!("cannot run gzip to compress {page}: {e}; install gzip"),
    }
}
