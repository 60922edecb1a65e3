//! The control socket: a unix socket only root can open, served like the web page, without ever
//! blocking the loop. One request line in ([`crate::protocol::Request`]), one answer out.

use super::clients::{Client, Received};
use super::kernel;
use super::stream::StreamListener;
use crate::protocol::{MAX_REQUEST, Request, RequestError};
use crate::text::OsError;
use std::io;
use std::path::Path;

/// Why the control socket cannot be served.
#[derive(Debug)]
pub enum ListenError {
    AnotherRunning(String),
    RemoveStale { socket: String, cause: io::Error },
    Bind { socket: String, cause: io::Error },
}

impl crate::text::Show for ListenError {
    fn show(&self, out: &mut String) {
        match self {
            ListenError::AnotherRunning(socket) => {
                put!(out, "another wanmon is running: ", socket, " answers")
            }
            ListenError::RemoveStale { socket, cause } => {
                put!(out, "cannot remove the stale ", socket, ": ", OsError(cause))
            }
            ListenError::Bind { socket, cause } => {
                put!(out, "cannot listen on ", socket, ": ", OsError(cause))
            }
        }
    }
}

crate::display_by_show!(ListenError);

impl std::error::Error for ListenError {}

/// Binds the socket, refusing if another wanmon answers on it; only root may connect.
pub fn listen(path: &Path) -> Result<StreamListener, ListenError> {
    let socket = crate::shown_path(path).to_string();
    if let Err(cause) = crate::protocol::socket_path_fits(path) {
        return Err(ListenError::Bind { socket, cause });
    }
    if super::stream::connect_unix(path).is_ok() {
        return Err(ListenError::AnotherRunning(socket));
    }
    // A socket nobody answers on is a stale one. Removed without asking whether it exists
    // first: `Path::exists` would bring stat(2) into the router's binary for nothing.
    match super::system::remove_file(path) {
        Err(cause) if cause.raw_os_error() != Some(libc::ENOENT) => {
            return Err(ListenError::RemoveStale { socket, cause });
        }
        _ => {}
    }
    // Created root-only, under a file mode mask that leaves only the owner's bits: a chmod(2)
    // after bind(2) would leave a moment in which anyone could connect.
    // SAFETY: umask only swaps the process's mask; the daemon has one thread, and the old mask
    // is back before anything else creates a file.
    let mask = unsafe { kernel::umask(0o177) };
    let bound = StreamListener::unix(path);
    // SAFETY: as above.
    unsafe { kernel::umask(mask) };
    bound.map_err(|cause| ListenError::Bind { socket, cause })
}

/// What a control client's bytes so far come to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// No whole line yet.
    Waiting,
    /// A request (or what is wrong with it) to answer.
    Request(Result<Request, RequestError>),
    /// The connection failed: nobody to answer.
    Done,
}

/// Reads what a control client sent and says what to do with it: a line ends the request, as
/// does the client closing its end.
pub fn read(client: &mut Client) -> Step {
    let received = client.receive(MAX_REQUEST);
    let line = client.request();
    let whole = match received {
        Received::Failed => return Step::Done,
        Received::TooLarge => return Step::Request(Err(RequestError::TooLong)),
        Received::Closed => line,
        Received::Waiting => match line.iter().position(|b| *b == b'\n') {
            Some(end) => &line[..end],
            None => return Step::Waiting,
        },
    };
    Step::Request(crate::text::utf8(whole).ok_or(RequestError::NotText).and_then(Request::parse))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Instant;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    fn client() -> (Client, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("pair");
        ours.set_nonblocking(true).expect("non-blocking");
        (Client::new(ours, Instant::from_millis(1_000)), theirs)
    }

    #[test]
    fn a_line_or_a_half_close_ends_the_request() {
        let (mut ours, mut theirs) = client();
        assert_eq!(read(&mut ours), Step::Waiting);
        theirs.write_all(b"status js").expect("write");
        assert_eq!(read(&mut ours), Step::Waiting);
        theirs.write_all(b"on\n").expect("write");
        assert_eq!(read(&mut ours), Step::Request(Ok(Request::Status { json: true })));
        let (mut ours, mut theirs) = client();
        theirs.write_all(b"auto").expect("write");
        theirs.shutdown(std::net::Shutdown::Write).expect("half-close");
        assert_eq!(read(&mut ours), Step::Request(Ok(Request::Auto)));
    }

    #[test]
    fn junk_and_silence_get_a_reason() {
        let (mut ours, mut theirs) = client();
        theirs.write_all(&[b'x'; MAX_REQUEST + 1]).expect("write");
        assert_eq!(read(&mut ours), Step::Request(Err(RequestError::TooLong)));
        let (mut ours, mut theirs) = client();
        theirs.write_all(b"\xff\xfe\n").expect("write");
        assert_eq!(read(&mut ours), Step::Request(Err(RequestError::NotText)));
        let (mut ours, theirs) = client();
        theirs.shutdown(std::net::Shutdown::Write).expect("half-close");
        assert_eq!(read(&mut ours), Step::Request(Err(RequestError::Empty)));
    }

    #[test]
    fn the_socket_is_root_only_and_one_daemon_holds_it_and_a_stale_one_is_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("wanmon-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("control.sock");
        let first = listen(&path).expect("a fresh path binds");
        let mode = std::fs::metadata(&path).expect("the socket is there").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = listen(&path).expect_err("a second daemon on the same socket");
        assert!(second.to_string().contains("control.sock"), "{second}");
        assert!(matches!(second, ListenError::AnotherRunning(_)), "{second}");
        // A killed daemon leaves its socket file behind, with nobody answering on it.
        drop(first);
        assert!(path.exists(), "the stale socket file stays");
        let _again = listen(&path).expect("a stale socket is replaced");
        let nowhere = dir.join("missing/control.sock");
        let error = listen(&nowhere).expect_err("a socket in a missing directory");
        assert!(matches!(error, ListenError::Bind { .. }), "{error}");
        assert!(error.to_string().contains("missing/control.sock"), "{error}");
        let long = dir.join("s".repeat(108));
        let error = listen(&long).expect_err("a path longer than a socket's").to_string();
        assert!(error.ends_with("sss: File name too long (os error 36)"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
