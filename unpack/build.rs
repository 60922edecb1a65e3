//! Links the unpacker (the `loader` feature) with `link.ld`: one segment, no MIPS ABI records.

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    if std::env::var_os("CARGO_FEATURE_LOADER").is_some() {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rustc-link-arg-bin=wanmon-unpack=-Wl,-T,{dir}/link.ld");
    }
}
