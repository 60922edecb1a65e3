//! The control socket: a unix socket only root can open. One request line in, one answer out:
//! `ok` or `error` on the first line, then the text for the person at the terminal.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

pub const DEFAULT_SOCKET: &str = "/var/run/wanmon.sock";
const MAX_REQUEST: u64 = 256;

#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Status { json: bool },
    Force(String),
    Auto,
    Reload,
}

/// Reads one request line; the error is the answer to send back.
pub fn parse(line: &str) -> Result<Request, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["status"] => Ok(Request::Status { json: false }),
        ["status", "json"] => Ok(Request::Status { json: true }),
        ["force", link] => Ok(Request::Force((*link).to_string())),
        ["auto"] => Ok(Request::Auto),
        ["reload"] => Ok(Request::Reload),
        [] => Err("empty request".into()),
        _ => Err(format!(
            "unknown request {:?}: expected status, status json, force LINK, auto or reload",
            line.trim()
        )),
    }
}

/// The answer to a request as it goes on the wire.
pub fn answer(result: &Result<String, String>) -> String {
    match result {
        Ok(text) => format!("ok\n{text}"),
        Err(text) => format!("error\n{text}"),
    }
}

/// Binds the socket, refusing if another wanmon answers on it; only root may connect.
pub fn listen(path: &Path) -> Result<UnixListener, String> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!("another wanmon is running: {} answers", path.display()));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove the stale {}: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    listener.set_nonblocking(true).map_err(|e| format!("cannot set up {}: {e}", path.display()))?;
    Ok(listener)
}

/// Reads one request from a client that connected, with a time limit.
pub fn read_request(stream: &UnixStream) -> io::Result<String> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    let mut line = String::new();
    BufReader::new(stream.take(MAX_REQUEST)).read_line(&mut line)?;
    Ok(line)
}

/// The CLI side: sends a request and returns the daemon's answer.
pub fn call(path: &Path, request: &str) -> Result<String, String> {
    let mut stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            format!("wanmon is not running ({} does not answer)", path.display())
        }
        io::ErrorKind::PermissionDenied => {
            format!("{}: permission denied (root only)", path.display())
        }
        _ => format!("cannot reach wanmon at {}: {e}", path.display()),
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(|e| format!("no answer from wanmon: {e}"))?;
    match reply.split_once('\n') {
        Some(("ok", text)) => Ok(text.to_string()),
        Some(("error", text)) => Err(text.to_string()),
        _ => Err(format!("unreadable answer from wanmon: {reply:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(parse("status\n"), Ok(Request::Status { json: false }));
        assert_eq!(parse("status json"), Ok(Request::Status { json: true }));
        assert_eq!(parse("force wwan"), Ok(Request::Force("wwan".into())));
        assert_eq!(parse(" auto "), Ok(Request::Auto));
        assert_eq!(parse("reload"), Ok(Request::Reload));
    }

    #[test]
    fn bad_requests_get_a_clear_answer() {
        assert_eq!(parse(""), Err("empty request".into()));
        assert!(parse("force").unwrap_err().starts_with("unknown request \"force\""));
        assert!(parse("force a b").is_err());
        assert!(parse("rm -rf /").unwrap_err().contains("expected status"));
        assert_eq!(answer(&Err("x".into())), "error\nx");
        assert_eq!(answer(&Ok("y".into())), "ok\ny");
    }
}
