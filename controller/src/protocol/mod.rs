//! What the daemon and its clients (the CLI, LuCI's rpcd plugin, the simulator, the tests) agree
//! on, each part defined once: the control socket's requests and answers, the status document,
//! and the numbers wanmon's routing uses in the kernel (tables, marks, rule priorities).

pub mod status;

pub use status::Status;

use crate::core::limits::MAX_LINKS;
use crate::text::OsError;
use std::io::{self, Read, Write};
use std::path::Path;

/// Where the daemon listens for control requests unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/wanmon.sock";

/// The `proto` of every route and rule wanmon writes (`ip route show proto 87`).
pub const PROTOCOL: u8 = 87;
/// wanmon's default route table.
pub const ROUTE_TABLE: u32 = 22349;
/// Link `i` has table `LINK_TABLE_BASE + i`.
pub const LINK_TABLE_BASE: u32 = 22350;
/// Link `i` marks its probes `MARK_BASE + i + 1`.
pub const MARK_BASE: u32 = 0x574d_0000;
/// The rule sending each link's marked probes to its table.
pub const PRIORITY_PROBES: u32 = 22340;
/// `lookup main suppress_prefixlength 0`: the system's specific routes keep working.
pub const PRIORITY_SUPPRESS: u32 = 22341;
/// `lookup ROUTE_TABLE`: wanmon's default route.
pub const PRIORITY_ROUTE: u32 = 22342;
/// The metric of every route wanmon writes in its tables.
pub const METRIC: u32 = 10;

pub fn link_table(index: usize) -> u32 {
    LINK_TABLE_BASE + index as u32
}

pub fn link_mark(index: usize) -> u32 {
    MARK_BASE + index as u32 + 1
}

/// Whether a routing table is one of wanmon's own.
pub fn is_our_table(table: u32) -> bool {
    table == ROUTE_TABLE || (LINK_TABLE_BASE..LINK_TABLE_BASE + MAX_LINKS as u32).contains(&table)
}

/// The longest request line the daemon reads.
pub const MAX_REQUEST: usize = 256;

/// One request on the control socket: a line of words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Status { json: bool },
    Force(String),
    Auto,
    Reload,
}

/// A request line the daemon cannot take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    Empty,
    TooLong,
    NotText,
    Unknown(String),
}

impl crate::text::Show for RequestError {
    fn show(&self, out: &mut String) {
        match self {
            RequestError::Empty => crate::text::push_str(out, "empty request"),
            RequestError::TooLong => put!(out, "request longer than ", MAX_REQUEST, " bytes"),
            RequestError::NotText => crate::text::push_str(out, "request is not UTF-8 text"),
            RequestError::Unknown(line) => put!(
                out,
                "unknown request ",
                crate::json::quoted(line),
                ": expected status, status json, force LINK, auto or reload"
            ),
        }
    }
}

crate::display_by_show!(RequestError);

impl Request {
    pub fn parse(line: &str) -> Result<Request, RequestError> {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        match words.as_slice() {
            ["status"] => Ok(Request::Status { json: false }),
            ["status", "json"] => Ok(Request::Status { json: true }),
            ["force", link] => Ok(Request::Force((*link).to_string())),
            ["auto"] => Ok(Request::Auto),
            ["reload"] => Ok(Request::Reload),
            [] => Err(RequestError::Empty),
            _ => Err(RequestError::Unknown(line.trim_ascii().to_string())),
        }
    }

    /// The request as it goes on the wire, newline included.
    pub fn line(&self) -> String {
        match self {
            Request::Status { json: false } => "status\n".into(),
            Request::Status { json: true } => "status json\n".into(),
            Request::Force(link) => text!("force ", link, "\n"),
            Request::Auto => "auto\n".into(),
            Request::Reload => "reload\n".into(),
        }
    }
}

/// The answer to a request as it goes on the wire: `ok` or `error`, a newline, then the text
/// for the person at the terminal.
pub fn answer<E: crate::text::Show>(result: &Result<String, E>) -> String {
    match result {
        Ok(text) => text!("ok\n", text),
        Err(text) => text!("error\n", text),
    }
}

/// Why a client got no answer, or an error for one.
#[derive(Debug)]
pub enum CallError {
    /// Nothing listens on the socket.
    NotRunning(String),
    PermissionDenied(String),
    Unreachable {
        socket: String,
        cause: io::Error,
    },
    Send(io::Error),
    NoAnswer(io::Error),
    Unreadable(String),
    /// The daemon answered with an error.
    Refused(String),
}

impl crate::text::Show for CallError {
    fn show(&self, out: &mut String) {
        match self {
            CallError::NotRunning(socket) => {
                put!(out, "wanmon is not running (", socket, " does not answer)")
            }
            CallError::PermissionDenied(socket) => {
                put!(out, socket, ": permission denied (root only)")
            }
            CallError::Unreachable { socket, cause } => {
                put!(out, "cannot reach wanmon at ", socket, ": ", OsError(cause))
            }
            CallError::Send(cause) => put!(out, "cannot send the request: ", OsError(cause)),
            CallError::NoAnswer(cause) => put!(out, "no answer from wanmon: ", OsError(cause)),
            CallError::Unreadable(reply) => {
                put!(out, "unreadable answer from wanmon: ", crate::json::quoted(reply))
            }
            CallError::Refused(text) => crate::text::push_str(out, text),
        }
    }
}

crate::display_by_show!(CallError);

impl std::error::Error for CallError {}

/// Reads an answer off the wire: the daemon's text, or its refusal.
pub fn parse_answer(reply: &str) -> Result<String, CallError> {
    match crate::text::split_byte(reply, b'\n') {
        Some(("ok", text)) => Ok(text.to_string()),
        Some(("error", text)) => Err(CallError::Refused(text.to_string())),
        _ => Err(CallError::Unreadable(reply.to_string())),
    }
}

/// Bytes a Unix socket's path may have on Linux (`sun_path`, with its NUL). Checked before
/// std's connect and bind, whose own refusal carries no errno and would show as none.
const SOCKET_PATH_MAX: usize = 108;

/// `ENAMETOOLONG` for a socket path the kernel cannot take.
pub fn socket_path_fits(path: &Path) -> io::Result<()> {
    if path.as_os_str().len() >= SOCKET_PATH_MAX {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    Ok(())
}

/// The client side: sends one request to the daemon at `socket` and returns its answer.
pub fn call(socket: &Path, request: &Request) -> Result<String, CallError> {
    let shown = || crate::shown_path(socket).to_string();
    socket_path_fits(socket).map_err(|cause| CallError::Unreachable { socket: shown(), cause })?;
    // By errno, not `io::Error::kind`, whose table of every errno costs ~500 bytes of flash.
    let stream = crate::daemon::stream::connect_unix(socket).map_err(|cause| {
        match cause.raw_os_error() {
            Some(libc::ENOENT | libc::ECONNREFUSED) => CallError::NotRunning(shown()),
            Some(libc::EACCES | libc::EPERM) => CallError::PermissionDenied(shown()),
            _ => CallError::Unreachable { socket: shown(), cause },
        }
    })?;
    crate::daemon::stream::set_receive_timeout(&stream, 5).map_err(CallError::NoAnswer)?;
    // A file's read and write: std's socket type would bring send(3), recv(3) and its own
    // timeout setter onto the flash for the same system calls.
    let mut stream = std::fs::File::from(stream);
    stream.write_all(request.line().as_bytes()).map_err(CallError::Send)?;
    // Read by hand: std's `read_to_string` brings its general reader (~1 KB) onto the flash.
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(CallError::NoAnswer(e)),
        }
    }
    // Shown up to the first byte that is not UTF-8, marked there: a lossy copy of the rest
    // would bring std's replacement machinery (1 KB) into the router's binary.
    let valid = crate::text::utf8_prefix(&reply);
    let whole = valid == reply.len();
    reply.truncate(valid);
    let Some(mut shown) = crate::text::utf8_string(reply) else {
        return Err(CallError::Unreadable(String::new()));
    };
    if whole {
        return parse_answer(&shown);
    }
    shown.push('\u{fffd}');
    Err(CallError::Unreadable(shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_path_too_long_for_the_kernel_is_named_with_its_errno() {
        let long = format!("/tmp/{}", "s".repeat(103));
        assert!(socket_path_fits(Path::new(&long[..107])).is_ok());
        let error = call(Path::new(&long), &Request::Auto).expect_err("108 bytes do not fit");
        let said = error.to_string();
        assert!(said.starts_with("cannot reach wanmon at /tmp/sss"), "{said}");
        assert!(said.ends_with(": File name too long (os error 36)"), "{said}");
    }

    #[test]
    fn requests_parse_and_go_on_the_wire_as_they_parse() {
        for request in [
            Request::Status { json: false },
            Request::Status { json: true },
            Request::Force("wwan".into()),
            Request::Auto,
            Request::Reload,
        ] {
            assert_eq!(Request::parse(&request.line()), Ok(request.clone()), "{request:?}");
        }
        assert_eq!(Request::parse(" auto "), Ok(Request::Auto));
    }

    #[test]
    fn bad_requests_get_a_clear_answer() {
        assert_eq!(Request::parse("").unwrap_err().to_string(), "empty request");
        let force = Request::parse("force").unwrap_err().to_string();
        assert!(force.starts_with("unknown request \"force\""), "{force}");
        assert!(Request::parse("force a b").is_err());
        let rm = Request::parse("rm -rf /").unwrap_err().to_string();
        assert!(rm.contains("expected status"), "{rm}");
    }

    #[test]
    fn answers_round_trip() {
        assert_eq!(answer(&Err::<String, _>("x")), "error\nx");
        assert_eq!(answer(&Ok::<_, String>("y".into())), "ok\ny");
        assert_eq!(parse_answer("ok\ny").ok(), Some("y".into()));
        assert!(matches!(parse_answer("error\nx"), Err(CallError::Refused(t)) if t == "x"));
        assert!(matches!(parse_answer("garbage"), Err(CallError::Unreadable(_))));
    }

    #[test]
    fn tables_and_marks_are_per_link_and_ours() {
        assert_eq!((link_table(0), link_mark(0)), (22350, 0x574d_0001));
        assert!(is_our_table(ROUTE_TABLE) && is_our_table(link_table(MAX_LINKS - 1)));
        assert!(!is_our_table(link_table(MAX_LINKS)) && !is_our_table(254));
    }

    /// A stand-in daemon at a fresh socket that answers one request with `answer`; returns
    /// what `call` made of it.
    fn call_answered_with(answer: Vec<u8>) -> Result<String, CallError> {
        use std::io::Read;
        let dir = std::env::temp_dir().join(format!("wanmon-call-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join(format!("{}.sock", answer.len()));
        let _ = std::fs::remove_file(&socket);
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        let daemon = std::thread::spawn(move || {
            let (mut client, _) = listener.accept().expect("connects");
            let mut line = [0u8; 64];
            let _ = client.read(&mut line).expect("request");
            client.write_all(&answer).expect("answer");
        });
        let result = call(&socket, &Request::Auto);
        daemon.join().expect("stand-in daemon");
        result
    }

    #[test]
    fn a_call_reads_the_whole_answer_and_names_an_unreadable_one() {
        assert_eq!(
            call_answered_with(b"ok\nback to auto".to_vec()).ok(),
            Some("back to auto".into())
        );
        let long = [b"ok\n".to_vec(), vec![b'x'; 100_000]].concat();
        assert_eq!(call_answered_with(long).map(|text| text.len()).ok(), Some(100_000));
        let refused = call_answered_with(b"error\nno link named wwan".to_vec());
        assert!(
            matches!(refused, Err(CallError::Refused(ref text)) if text == "no link named wwan")
        );
        let garbled = call_answered_with(b"ok\n\xff\xfe".to_vec());
        assert!(matches!(garbled, Err(CallError::Unreadable(ref s)) if s == "ok\n\u{fffd}"));
    }
}
