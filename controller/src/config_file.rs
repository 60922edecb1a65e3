//! Reading the config file: bounded in size, every error named with file, line and key, and no
//! more of them repeated than a person reads (a mangled file can hold thousands).

use crate::core::{Config, Links};
use crate::text::OsError;
use std::io::Read;
use std::path::Path;

/// Largest config file read: a config of every link wanmon allows, each key written out with a
/// label, is under 10 KiB; a bigger file is a mistake, not a config.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Errors shown of a refused config; the rest are counted.
pub const MAX_SHOWN_ERRORS: usize = 20;

/// A config that was not taken: the lines to show (each `FILE:line N: key: ...`) and how many
/// errors there were in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub lines: Vec<String>,
    pub errors: usize,
}

impl crate::text::Show for Refused {
    fn show(&self, out: &mut String) {
        for (i, line) in self.lines.iter().enumerate() {
            crate::text::push_str(out, if i == 0 { "" } else { "\n" });
            crate::text::push_str(out, line);
        }
    }
}

crate::display_by_show!(Refused);

impl Refused {
    fn one(line: String) -> Refused {
        Refused { lines: vec![line], errors: 1 }
    }
}

/// Reads and validates the config at `path`.
pub fn load(path: &Path, links: Links) -> Result<Config, Refused> {
    let shown = crate::shown_path(path);
    let bytes = match read_bounded(path) {
        Err(e) => return Err(Refused::one(text!(shown, ": cannot read: ", OsError(&e)))),
        Ok(None) => {
            let line =
                text!(shown, ": larger than ", MAX_FILE_BYTES, " bytes: not a wanmon config");
            return Err(Refused::one(line));
        }
        Ok(Some(bytes)) => bytes,
    };
    let Some(text) = crate::text::utf8_string(bytes) else {
        return Err(Refused::one(text!(shown, ": not UTF-8 text: not a wanmon config")));
    };
    Config::from_json_with(&text, links).map_err(|errors| {
        let mut lines: Vec<String> =
            errors.iter().take(MAX_SHOWN_ERRORS).map(|e| text!(shown, ":", e)).collect();
        if errors.len() > MAX_SHOWN_ERRORS {
            let more = errors.len() - MAX_SHOWN_ERRORS;
            lines.push(text!(shown, ": ", more, " more error(s) not shown"));
        }
        Refused { lines, errors: errors.len() }
    })
}

/// `File::open` without std's `OpenOptions`, whose checks make errors from strings: that boxed
/// payload brings 3 KB of `Debug` and Unicode tables into the router's binary. Non-blocking: a
/// FIFO put in the config's place must not hold the loop on a reload (a regular file ignores it).
fn open_for_reading(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::FromRawFd;
    let invalid = || std::io::Error::from_raw_os_error(libc::EINVAL);
    let path = crate::daemon::system::c_string(path.as_os_str().as_bytes()).ok_or_else(invalid)?;
    // SAFETY: a valid NUL-terminated path; the result is checked before it is owned.
    let fd = unsafe {
        libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// The file's bytes, or `None` if it holds more than [`MAX_FILE_BYTES`]; never reads past that.
fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut file = open_for_reading(path)?;
    let mut bytes = vec![0u8; MAX_FILE_BYTES as usize + 1];
    let mut filled = 0;
    loop {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
        if filled == bytes.len() {
            return Ok(None);
        }
    }
    bytes.truncate(filled);
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wanmon-config-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_file_too_large_is_refused_unread() {
        let path = write("big.json", &format!("{{\"{}\": 1}}", "a".repeat(10_000_000)));
        let refused = load(&path, Links::Required).unwrap_err();
        assert_eq!(refused.errors, 1);
        assert!(refused.lines[0].ends_with("larger than 65536 bytes: not a wanmon config"));
    }

    #[test]
    fn thousands_of_errors_are_counted_not_all_shown() {
        let keys: Vec<String> = (0..200).map(|i| format!("\"k{i}\": 1")).collect();
        let text = format!(
            "{{{}, \"links\": [{{\"name\": \"wan\", \"device\": \"eth0\"}}]}}",
            keys.join(",")
        );
        let refused = load(&write("keys.json", &text), Links::Required).unwrap_err();
        assert_eq!(refused.errors, 200);
        assert_eq!(refused.lines.len(), MAX_SHOWN_ERRORS + 1);
        assert!(refused.lines[0].contains(":line 1: k0: unknown key"), "{}", refused.lines[0]);
        assert!(refused.lines[MAX_SHOWN_ERRORS].ends_with(": 180 more error(s) not shown"));
    }

    fn texts(text: &str) -> Vec<String> {
        Config::from_json(text).unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn one_line_files_and_many_keys_parse_in_linear_time() {
        // 100 000 links on one line took 130 s when each key counted its column; 30 000 keys
        // in one object took 3 s comparing each with all before it. Both now take milliseconds
        // (the bound is generous: the machine may be slow, the old cost was not close).
        let links: Vec<String> =
            (0..100_000).map(|i| format!(r#"{{"name":"l{i}","device":"eth{i}"}}"#)).collect();
        let started = std::time::Instant::now();
        let found = texts(&format!(r#"{{"links":[{}]}}"#, links.join(",")));
        assert_eq!(found, ["line 1: links: got 100000 links, expected 1 to 16"]);
        let keys: Vec<String> = (0..30_000).map(|i| format!(r#""k{i}": 1"#)).collect();
        let found = texts(&format!("{{{}}}", keys.join(",")));
        assert_eq!(found, ["line 1 column 2452: invalid JSON: more than 256 keys in one object"]);
        let elapsed = started.elapsed();
        assert!(elapsed < std::time::Duration::from_secs(5), "took {elapsed:?}");
    }

    #[test]
    fn a_fifo_in_the_configs_place_is_refused_without_waiting_for_a_writer() {
        let path = std::env::temp_dir().join(format!("wanmon-config-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let refused = load(&path, Links::Required).unwrap_err();
        let _ = std::fs::remove_file(&path);
        // Read as empty at once (no writer): refused as no JSON, the loop never held.
        assert!(refused.lines[0].contains("invalid JSON"), "{}", refused.lines[0]);
    }

    #[test]
    fn a_missing_file_names_itself() {
        let refused = load(Path::new("/nonexistent/wanmon.json"), Links::Required).unwrap_err();
        assert!(refused.lines[0].starts_with("/nonexistent/wanmon.json: cannot read: "));
    }
}
