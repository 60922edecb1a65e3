//! The control socket: a unix socket only root can open, served like the web page, without ever
//! blocking the loop. One request line in ([`crate::protocol::Request`]), one answer out.

use super::clients::{Client, Received};
use crate::protocol::{MAX_REQUEST, Request, RequestError};
use std::fmt;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Why the control socket cannot be served.
#[derive(Debug)]
pub enum ListenError {
    AnotherRunning(String),
    RemoveStale { socket: String, cause: io::Error },
    Bind { socket: String, cause: io::Error },
    Restrict { socket: String, cause: io::Error },
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::AnotherRunning(socket) => {
                write!(f, "another wanmon is running: {socket} answers")
            }
            ListenError::RemoveStale { socket, cause } => {
                write!(f, "cannot remove the stale {socket}: {cause}")
            }
            ListenError::Bind { socket, cause } => write!(f, "cannot listen on {socket}: {cause}"),
            ListenError::Restrict { socket, cause } => {
                write!(f, "cannot restrict {socket}: {cause}")
            }
        }
    }
}

impl std::error::Error for ListenError {}

/// Binds the socket, refusing if another wanmon answers on it; only root may connect.
pub fn listen(path: &Path) -> Result<UnixListener, ListenError> {
    let socket = crate::shown_path(path).to_string();
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ListenError::AnotherRunning(socket));
        }
        std::fs::remove_file(path)
            .map_err(|cause| ListenError::RemoveStale { socket: socket.clone(), cause })?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|cause| ListenError::Bind { socket: socket.clone(), cause })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|cause| ListenError::Restrict { socket: socket.clone(), cause })?;
    listener.set_nonblocking(true).map_err(|cause| ListenError::Bind { socket, cause })?;
    Ok(listener)
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
    Step::Request(
        std::str::from_utf8(whole).map_err(|_| RequestError::NotText).and_then(Request::parse),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    fn client() -> (Client, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("pair");
        ours.set_nonblocking(true).expect("non-blocking");
        (Client::new(ours, Instant::now() + Duration::from_secs(1)), theirs)
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
}
