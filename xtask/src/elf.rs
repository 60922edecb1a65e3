//! Trims an executable to what the kernel loads: the section headers (and the section names
//! after them) are for linkers and debuggers, the kernel reads only the program headers. On the
//! shipped unpacker they are ~330 bytes of every package.

use std::path::Path;

/// Where the ELF header keeps what is read and changed here, by class (32 or 64 bits).
struct Layout {
    phoff: usize,
    shoff: usize,
    /// e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx: five u16 in a row.
    phentsize: usize,
    /// In a program header: p_offset, and p_filesz.
    p_offset: usize,
    p_filesz: usize,
    word: usize,
    header_len: usize,
}

const ELF32: Layout = Layout {
    phoff: 28,
    shoff: 32,
    phentsize: 42,
    p_offset: 4,
    p_filesz: 16,
    word: 4,
    header_len: 52,
};
const ELF64: Layout = Layout {
    phoff: 32,
    shoff: 40,
    phentsize: 54,
    p_offset: 8,
    p_filesz: 32,
    word: 8,
    header_len: 64,
};

fn read(bytes: &[u8], at: usize, width: usize) -> Option<usize> {
    let field = bytes.get(at..at.checked_add(width)?)?;
    let mut value = [0u8; 8];
    value[..width].copy_from_slice(field);
    usize::try_from(u64::from_le_bytes(value)).ok()
}

/// `bytes` (a little-endian ELF executable) without its section headers and whatever lies
/// after the last loaded byte; an error names what does not look as expected.
pub fn without_section_headers(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) || bytes.get(5) != Some(&1) {
        return Err("not a little-endian ELF file".into());
    }
    let layout = match bytes[4] {
        1 => &ELF32,
        2 => &ELF64,
        class => return Err(format!("unknown ELF class {class}")),
    };
    let field = |at, width| read(bytes, at, width).ok_or("the ELF header is cut short");
    let phoff = field(layout.phoff, layout.word)?;
    let phentsize = field(layout.phentsize, 2)?;
    let phnum = field(layout.phentsize + 2, 2)?;
    let shoff = field(layout.shoff, layout.word)?;
    let mut loaded = layout.header_len.max(phoff.saturating_add(phentsize * phnum));
    for header in (0..phnum).map(|i| phoff.saturating_add(i * phentsize)) {
        let offset = field(header.saturating_add(layout.p_offset), layout.word)?;
        let size = field(header.saturating_add(layout.p_filesz), layout.word)?;
        loaded = loaded.max(offset.saturating_add(size));
    }
    if shoff < loaded || loaded > bytes.len() {
        return Err(format!(
            "the section headers (at {shoff}) are not after the loaded bytes (up to {loaded})"
        ));
    }
    let mut trimmed = bytes[..loaded].to_vec();
    trimmed[layout.shoff..layout.shoff + layout.word].fill(0);
    // e_shentsize stays; e_shnum and e_shstrndx go to zero with the table.
    trimmed[layout.phentsize + 6..layout.phentsize + 10].fill(0);
    Ok(trimmed)
}

/// Rewrites `path` without its section headers.
pub fn trim(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let trimmed =
        without_section_headers(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, trimmed).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF32 file: the header, one program header loading bytes 0..120, 8 bytes past the
    /// load, then a section header table at 128.
    fn elf32() -> Vec<u8> {
        let mut bytes = vec![0u8; 128 + 2 * 40];
        bytes[..6].copy_from_slice(b"\x7fELF\x01\x01");
        bytes[28..32].copy_from_slice(&52u32.to_le_bytes());
        bytes[32..36].copy_from_slice(&128u32.to_le_bytes());
        bytes[42..44].copy_from_slice(&32u16.to_le_bytes());
        bytes[44..46].copy_from_slice(&1u16.to_le_bytes());
        bytes[46..48].copy_from_slice(&40u16.to_le_bytes());
        bytes[48..50].copy_from_slice(&2u16.to_le_bytes());
        bytes[50..52].copy_from_slice(&1u16.to_le_bytes());
        bytes[52 + 16..52 + 20].copy_from_slice(&120u32.to_le_bytes());
        bytes
    }

    #[test]
    fn the_loaded_bytes_stay_and_the_section_headers_go() {
        let trimmed = without_section_headers(&elf32()).unwrap();
        assert_eq!(trimmed.len(), 120);
        assert_eq!(&trimmed[32..36], &[0; 4], "e_shoff");
        assert_eq!(&trimmed[46..48], &40u16.to_le_bytes(), "e_shentsize kept");
        assert_eq!(&trimmed[48..52], &[0; 4], "e_shnum and e_shstrndx");
        assert_eq!(&trimmed[..28], &elf32()[..28]);
    }

    #[test]
    fn what_is_not_a_plain_executable_is_refused() {
        assert!(without_section_headers(b"#!/bin/sh\n").unwrap_err().contains("not a little"));
        let mut early = elf32();
        early[32..36].copy_from_slice(&100u32.to_le_bytes());
        assert!(without_section_headers(&early).unwrap_err().contains("not after"));
        let mut cut = elf32();
        cut.truncate(40);
        assert!(without_section_headers(&cut).is_err());
        let mut class = elf32();
        class[4] = 3;
        assert!(without_section_headers(&class).unwrap_err().contains("class 3"));
    }
}
