//! Clients of the daemon's sockets (web page and control socket), served without ever blocking
//! the poll loop: each read and write takes what the socket has now, a whole request is answered
//! once it is there (also after the client half-closed its end), and every client has a deadline.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

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

/// One connected client.
#[derive(Debug)]
pub struct Client<S> {
    stream: S,
    received: Vec<u8>,
    reply: Vec<u8>,
    sent: usize,
    deadline: Instant,
}

impl<S: Read + Write + AsRawFd> Client<S> {
    /// A client whose socket is already non-blocking, to be done with by `deadline`.
    pub fn new(stream: S, deadline: Instant) -> Client<S> {
        Client { stream, received: Vec::new(), reply: Vec::new(), sent: 0, deadline }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Received::Waiting,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        false
    }
}

/// A listening socket whose clients are served by a [`Server`].
pub trait Listener: AsRawFd {
    type Stream: Read + Write + AsRawFd;
    /// The next waiting connection, already non-blocking; `WouldBlock` when there is none.
    fn accept_client(&self) -> io::Result<Self::Stream>;
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    fn accept_client(&self) -> io::Result<UnixStream> {
        let (stream, _) = self.accept()?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    fn accept_client(&self) -> io::Result<TcpStream> {
        let (stream, _) = self.accept()?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }
}

/// A listener (when there is one) and its clients, at most `max_clients` at a time, each given
/// `deadline` to be done.
#[derive(Debug)]
pub struct Server<L: Listener> {
    pub listener: Option<L>,
    clients: Vec<Client<L::Stream>>,
    max_clients: usize,
    deadline: Duration,
}

impl<L: Listener> Server<L> {
    pub fn new(listener: Option<L>, max_clients: usize, deadline: Duration) -> Server<L> {
        Server { listener, clients: Vec::new(), max_clients, deadline }
    }

    /// Takes every waiting connection; one over the limit is sent `busy` and closed.
    pub fn accept(&mut self, now: Instant, busy: &[u8]) {
        let Some(listener) = &self.listener else { return };
        while let Ok(stream) = listener.accept_client() {
            let mut client = Client::new(stream, now + self.deadline);
            if self.clients.len() >= self.max_clients {
                client.answer(busy.to_vec());
                continue;
            }
            self.clients.push(client);
        }
    }

    /// Drops the clients past their deadline.
    pub fn expire(&mut self, now: Instant) {
        self.clients.retain(|c| c.deadline() > now);
    }

    /// The soonest deadline of a client.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.clients.iter().map(Client::deadline).min()
    }

    pub fn clients(&self) -> &[Client<L::Stream>] {
        &self.clients
    }

    pub fn client(&mut self, index: usize) -> Option<&mut Client<L::Stream>> {
        self.clients.get_mut(index)
    }

    /// Removes clients that are done, given by index, each once, in increasing order (as the
    /// poll set lists them).
    pub fn remove(&mut self, done: Vec<usize>) {
        for index in done.into_iter().rev() {
            if index < self.clients.len() {
                self.clients.swap_remove(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn pair() -> (Client<UnixStream>, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        ours.set_nonblocking(true).expect("non-blocking");
        (Client::new(ours, Instant::now() + Duration::from_secs(5)), theirs)
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
    fn too_much_is_refused_and_a_gone_client_is_done() {
        let (mut client, mut peer) = pair();
        peer.write_all(&[b'x'; 100]).expect("write");
        assert_eq!(client.receive(64), Received::TooLarge);
        drop(peer);
        assert!(!client.answer(vec![b'y'; 10]), "nobody to send to");
    }
}
