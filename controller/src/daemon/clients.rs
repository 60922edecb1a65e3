//! Clients of the daemon's sockets (web page and control socket), served without ever blocking
//! the poll loop: each read and write takes what the socket has now, a whole request is answered
//! once it is there (also after the client half-closed its end), and every client has a deadline.
//! Slow or idle clients cannot lock others out: a client must send its request soon, and when
//! every slot is taken a newcomer replaces the oldest waiting client of the peer holding most.

use crate::core::{Instant, Micros};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// What reading a client brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Nothing more for now; it may still send.
    Waiting,
    /// The client closed its sending side: what it sent is all there will be.
    Closed,
    /// It sent more than any request may be.
    TooLarge,
    /// The connection failed.
    Failed,
}

/// One connected client, of either socket. Its socket is held as a `File`: read(2) and
/// write(2) serve TCP and unix sockets alike, and one type means one copy of this code on flash
/// (generic over the stream, it was two). write(2) to a client that has gone raises SIGPIPE,
/// which the daemon ignores (`system::start_up`), so it fails with EPIPE and the client is
/// dropped.
#[derive(Debug)]
pub struct Client {
    stream: File,
    /// Where it connects from (`None` on a unix socket: every client there is local).
    peer: Option<IpAddr>,
    received: Vec<u8>,
    reply: Vec<u8>,
    sent: usize,
    /// By when its whole request must be in.
    request_by: Instant,
    deadline: Instant,
}

impl Client {
    /// A client whose socket is already non-blocking, to be done with by `deadline`.
    pub fn new(stream: impl Into<OwnedFd>, deadline: Instant) -> Client {
        Client {
            stream: File::from(stream.into()),
            peer: None,
            received: Vec::new(),
            reply: Vec::new(),
            sent: 0,
            request_by: deadline,
            deadline,
        }
    }

    /// When the loop must next look at it: its request's deadline until it is answered.
    pub fn deadline(&self) -> Instant {
        if self.answered() { self.deadline } else { self.deadline.min(self.request_by) }
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// What it sent so far.
    pub fn request(&self) -> &[u8] {
        &self.received
    }

    /// Answered: the loop waits to write to it, no longer to read from it.
    pub fn answered(&self) -> bool {
        !self.reply.is_empty()
    }

    /// Reads what the socket has now, keeping at most `limit` bytes.
    pub fn receive(&mut self, limit: usize) -> Received {
        let mut chunk = [0u8; 2048];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Received::Closed,
                Ok(n) => {
                    self.received.extend_from_slice(&chunk[..n]);
                    if self.received.len() > limit {
                        return Received::TooLarge;
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Received::Waiting,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(_) => return Received::Failed,
            }
        }
    }

    /// Sets the answer and starts sending it.
    pub fn answer(&mut self, reply: Vec<u8>) -> bool {
        self.reply = reply;
        self.sent = 0;
        self.send()
    }

    /// Sends what the socket takes now; false once the answer is out or the client is gone.
    pub fn send(&mut self) -> bool {
        while self.sent < self.reply.len() {
            match self.stream.write(&self.reply[self.sent..]) {
                Ok(0) => return false,
                Ok(n) => self.sent += n,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return true,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

/// A listening socket whose clients are served by a [`Server`].
pub trait Listener: AsRawFd {
    /// The next waiting connection, already non-blocking, and its peer's address if it has one;
    /// `WouldBlock` when there is none.
    fn accept_client(&self) -> io::Result<(OwnedFd, Option<IpAddr>)>;
}

// The daemon's listeners are `stream::StreamListener`s; std's serve the tests.
#[cfg(test)]
impl Listener for std::os::unix::net::UnixListener {
    fn accept_client(&self) -> io::Result<(OwnedFd, Option<IpAddr>)> {
        let (stream, _) = self.accept()?;
        stream.set_nonblocking(true)?;
        Ok((stream.into(), None))
    }
}

#[cfg(test)]
impl Listener for std::net::TcpListener {
    fn accept_client(&self) -> io::Result<(OwnedFd, Option<IpAddr>)> {
        let (stream, peer) = self.accept()?;
        stream.set_nonblocking(true)?;
        Ok((stream.into(), Some(peer.ip())))
    }
}

/// How a [`Server`] bounds its clients.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Clients at a time.
    pub clients: usize,
    /// How long a client has to send its whole request.
    pub request: Micros,
    /// How long it has to be done, answer taken.
    pub total: Micros,
}

/// A listener (when there is one) and its clients.
#[derive(Debug)]
pub struct Server<L> {
    pub listener: Option<L>,
    pub clients: Clients,
}

impl<L: Listener> Server<L> {
    pub fn new(listener: Option<L>, limits: Limits) -> Server<L> {
        Server { listener, clients: Clients { list: Vec::new(), limits } }
    }

    /// Takes every waiting connection (see [`Clients::admit`]).
    pub fn accept(&mut self, now: Instant, busy: &[u8]) {
        let Some(listener) = &self.listener else { return };
        while let Ok((stream, peer)) = listener.accept_client() {
            self.clients.admit(stream, peer, now, busy);
        }
    }
}

/// The clients of one listener, within its [`Limits`]. Apart from [`Server`] so that the two
/// servers share one copy of this code.
#[derive(Debug)]
pub struct Clients {
    list: Vec<Client>,
    limits: Limits,
}

impl Clients {
    /// Takes in a new connection. When every slot is taken, the newcomer replaces a client
    /// still sending its request: the oldest of the peer holding the most slots, so one peer's
    /// slow or idle connections cannot keep anyone else out. With no such client it is sent
    /// `busy`.
    fn admit(&mut self, stream: OwnedFd, peer: Option<IpAddr>, now: Instant, busy: &[u8]) {
        let mut client = Client::new(stream, now.after(self.limits.total));
        client.peer = peer;
        client.request_by = now.after(self.limits.request);
        if self.list.len() >= self.limits.clients {
            match self.evictable() {
                Some(index) => drop(self.list.swap_remove(index)),
                None => {
                    client.answer(busy.to_vec());
                    return;
                }
            }
        }
        self.list.push(client);
    }

    /// The client to make room by: one not answered yet, of the peer with the most clients,
    /// the oldest of those (the earliest request deadline).
    fn evictable(&self) -> Option<usize> {
        let held = |peer: Option<IpAddr>| self.list.iter().filter(|c| c.peer == peer).count();
        self.list
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.answered())
            .max_by_key(|(_, c)| (held(c.peer), std::cmp::Reverse(c.request_by)))
            .map(|(index, _)| index)
    }

    /// Drops the clients past their deadline, or past their request's while still sending it.
    pub fn expire(&mut self, now: Instant) {
        self.list.retain(|c| c.deadline() > now);
    }

    /// The soonest deadline of a client.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(Client::deadline).min()
    }

    pub fn all(&self) -> &[Client] {
        &self.list
    }

    pub fn get(&mut self, index: usize) -> Option<&mut Client> {
        self.list.get_mut(index)
    }

    /// Removes clients that are done, given by index, each once, in increasing order (as the
    /// poll set lists them).
    pub fn remove(&mut self, done: Vec<usize>) {
        for index in done.into_iter().rev() {
            if index < self.list.len() {
                self.list.swap_remove(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::net::UnixListener;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn pair() -> (Client, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        ours.set_nonblocking(true).expect("non-blocking");
        (Client::new(ours, Instant::from_millis(5_000)), theirs)
    }

    #[test]
    fn a_silent_client_never_blocks_and_a_half_close_is_seen() {
        let (mut client, mut peer) = pair();
        assert_eq!(client.receive(64), Received::Waiting);
        peer.write_all(b"status\n").expect("write");
        assert_eq!(client.receive(64), Received::Waiting);
        assert_eq!(client.request(), b"status\n");
        peer.shutdown(std::net::Shutdown::Write).expect("half-close");
        assert_eq!(client.receive(64), Received::Closed);
        // The client can still read the answer on its side.
        assert!(!client.answer(b"ok\n".to_vec()), "a short answer goes out at once");
        drop(client);
        let mut answer = String::new();
        peer.read_to_string(&mut answer).expect("read");
        assert_eq!(answer, "ok\n");
    }

    #[test]
    fn a_newcomer_replaces_the_oldest_waiting_client_of_the_busiest_peer() {
        let limits = Limits { clients: 4, request: 2_000_000, total: 5_000_000 };
        let mut server: Server<UnixListener> = Server::new(None, limits);
        let now = Instant::from_millis(1_000);
        let mut peers = Vec::new();
        // A LAN user (192.0.2.10) holds one slot, a slowloris peer (192.0.2.66) three.
        for (i, peer) in ["192.0.2.10", "192.0.2.66", "192.0.2.66", "192.0.2.66"].iter().enumerate()
        {
            let (mut client, theirs) = pair();
            client.peer = Some(peer.parse().unwrap());
            client.request_by = now.after(100_000 * i as u64);
            server.clients.list.push(client);
            peers.push(theirs);
        }
        let victim = server.clients.evictable().expect("someone can make room");
        assert_eq!(server.clients.list[victim].peer, Some("192.0.2.66".parse().unwrap()));
        assert_eq!(server.clients.list[victim].request_by, now.after(100_000));
        // An answered client is never cut off to make room.
        for client in &mut server.clients.list {
            client.answer(b"x".to_vec());
        }
        assert_eq!(server.clients.evictable(), None);
    }

    #[test]
    fn a_client_has_its_request_deadline_until_answered() {
        let mut server: Server<UnixListener> =
            Server::new(None, Limits { clients: 2, request: 2_000_000, total: 5_000_000 });
        let now = Instant::from_millis(1_000);
        let (mut client, _theirs) = pair();
        client.request_by = now.after(2_000_000);
        client.deadline = now.after(5_000_000);
        server.clients.list.push(client);
        assert_eq!(server.clients.next_deadline(), Some(now.after(2_000_000)));
        server.clients.expire(now.after(3_000_000));
        assert!(server.clients.all().is_empty(), "silent past its request deadline: dropped");
    }

    #[test]
    fn sixteen_idle_connections_do_not_keep_a_ninth_out() {
        use std::net::TcpStream;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().unwrap();
        let mut server = Server::new(Some(listener), crate::daemon::http::LIMITS);
        let idle: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(address).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(50));
        server.accept(Instant::ZERO, b"busy");
        let mut user = TcpStream::connect(address).unwrap();
        user.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        server.accept(Instant::ZERO, b"busy");
        assert_eq!(server.clients.all().len(), 8);
        for client in &mut server.clients.list {
            client.receive(64);
        }
        let sent: Vec<&[u8]> = server.clients.all().iter().map(Client::request).collect();
        assert!(sent.contains(&&b"GET / HTTP/1.1\r\n\r\n"[..]), "the user holds a slot");
        drop(idle);
    }

    #[test]
    fn too_much_is_refused_and_a_gone_client_is_done() {
        let (mut client, mut peer) = pair();
        peer.write_all(&[b'x'; 100]).expect("write");
        assert_eq!(client.receive(64), Received::TooLarge);
        drop(peer);
        assert!(!client.answer(vec![b'y'; 10]), "nobody to send to");
    }
}
