//! Stream sockets through the C library: the listeners of the control socket and the web page
//! (non-blocking, `accept4`), the CLI's connection to the control socket and the log's to
//! syslog, and the socket address conversions the probes share. std's `TcpListener`,
//! `UnixListener`, `UnixStream::connect` and `UnixDatagram::connect` do the same system calls
//! around address resolution, conversions both ways and an accept wrapper per type: 0.8 KB of
//! the router's LZMA stream for nothing wanmon uses.

use super::clients::Listener;
use super::kernel;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Pending connections the kernel keeps for a listener: the servers take a few clients at a
/// time, and take every waiting one at each wakeup.
const BACKLOG: libc::c_int = 16;

/// A listening stream socket, non-blocking and closed on exec.
#[derive(Debug)]
pub struct StreamListener {
    fd: OwnedFd,
}

/// `result` as an `io::Result`: the C library's `-1` is the errno's error.
fn checked(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

/// A new socket of `family` and `kind` (with its flags), closed on exec.
fn new_socket(family: libc::c_int, kind: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with plain integer arguments.
    let fd = checked(unsafe { kernel::socket(family, kind | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket(2) and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new listening-to-be stream socket of `family`, non-blocking.
fn stream_socket(family: libc::c_int) -> io::Result<OwnedFd> {
    new_socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK)
}

impl StreamListener {
    /// Listens on a TCP address; the address may be taken again at once after a restart.
    pub fn tcp(address: SocketAddr) -> io::Result<StreamListener> {
        let family = if address.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        let fd = stream_socket(family)?;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and an int option of its size.
        checked(unsafe {
            kernel::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
        let (storage, len) = socket_address(&address);
        // SAFETY: storage holds a socket address of len bytes.
        checked(unsafe { kernel::bind(fd.as_raw_fd(), (&raw const storage).cast(), len) })?;
        StreamListener::listening(fd)
    }

    /// Listens on a Unix socket at `path` (which must fit a `sockaddr_un`; see
    /// [`crate::protocol::socket_path_fits`]).
    pub fn unix(path: &Path) -> io::Result<StreamListener> {
        let fd = stream_socket(libc::AF_UNIX)?;
        let (address, len) = unix_address(path)?;
        // SAFETY: address holds a sockaddr_un of len bytes.
        checked(unsafe { kernel::bind(fd.as_raw_fd(), (&raw const address).cast(), len) })?;
        StreamListener::listening(fd)
    }

    fn listening(fd: OwnedFd) -> io::Result<StreamListener> {
        // SAFETY: listen(2) on a bound socket.
        checked(unsafe { kernel::listen(fd.as_raw_fd(), BACKLOG) })?;
        Ok(StreamListener { fd })
    }

    /// The address a TCP listener is bound to; `None` for a Unix socket.
    pub fn local_address(&self) -> Option<SocketAddr> {
        // SAFETY: sockaddr_storage is plain data; zeroed is valid.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: storage is valid for writes of len bytes.
        let named = unsafe {
            kernel::getsockname(self.fd.as_raw_fd(), (&raw mut storage).cast(), &mut len)
        };
        if named < 0 { None } else { address_of(&storage) }
    }
}

impl AsRawFd for StreamListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Listener for StreamListener {
    fn accept_client(&self) -> io::Result<(OwnedFd, Option<IpAddr>)> {
        // SAFETY: sockaddr_storage is plain data; zeroed is valid.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: storage is valid for writes of len bytes.
        let fd = checked(unsafe {
            kernel::accept4(self.fd.as_raw_fd(), (&raw mut storage).cast(), &mut len, flags)
        })?;
        // SAFETY: fd was just returned by accept4(2) and is owned by nothing else.
        let stream = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok((stream, address_of(&storage).map(|a| a.ip())))
    }
}

/// A connection to the Unix socket at `path` (the control socket, for the CLI and for a second
/// daemon's check that none runs), blocking and closed on exec.
pub fn connect_unix(path: &Path) -> io::Result<OwnedFd> {
    connected(path, libc::SOCK_STREAM)
}

/// A datagram socket connected to the Unix socket at `path` (syslog's `/dev/log`); `write(2)`
/// on it sends one datagram.
pub fn connect_unix_datagram(path: &Path) -> io::Result<OwnedFd> {
    connected(path, libc::SOCK_DGRAM)
}

/// Makes reads on `socket` fail with EAGAIN after `seconds` without data.
pub fn set_receive_timeout(socket: &OwnedFd, seconds: libc::c_long) -> io::Result<()> {
    // The kernel's own timeval of native longs, whatever size the C library's time_t has.
    let timeout: [libc::c_long; 2] = [seconds, 0];
    let len = std::mem::size_of_val(&timeout) as libc::socklen_t;
    // SAFETY: SO_RCVTIMEO reads a timeval of len bytes from the live array.
    let set = unsafe {
        let (level, name) = (libc::SOL_SOCKET, libc::SO_RCVTIMEO);
        kernel::setsockopt(socket.as_raw_fd(), level, name, timeout.as_ptr().cast(), len)
    };
    checked(set).map(drop)
}

fn connected(path: &Path, kind: libc::c_int) -> io::Result<OwnedFd> {
    let fd = new_socket(libc::AF_UNIX, kind)?;
    let (address, len) = unix_address(path)?;
    loop {
        // SAFETY: address holds a sockaddr_un of len bytes.
        let connected =
            unsafe { kernel::connect(fd.as_raw_fd(), (&raw const address).cast(), len) };
        match checked(connected) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(fd),
        }
    }
}

/// `path` as a `sockaddr_un` and its length; a path too long for one is refused.
pub fn unix_address(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data; zeroed is valid.
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    // One byte stays for the terminating NUL, which zeroing put there.
    if bytes.len() >= address.sun_path.len() || super::system::has_nul(bytes) {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (slot, byte) in address.sun_path.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Ok((address, len as libc::socklen_t))
}

/// A socket address as the C library takes it, with its length.
pub fn socket_address(address: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match address {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The IP socket address the C library wrote; `None` for another family (a Unix socket's).
pub fn address_of(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(ip, u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = IpAddr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip, u16::from_be(sin6.sin6_port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_read_with_a_receive_timeout_fails_with_eagain_when_nothing_comes() {
        let (ours, _theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        let socket = OwnedFd::from(ours);
        set_receive_timeout(&socket, 1).expect("timeout set");
        let started = std::time::Instant::now();
        let error = std::fs::File::from(socket).read(&mut [0u8; 4]).expect_err("nothing sent");
        assert_eq!(error.raw_os_error(), Some(libc::EAGAIN));
        assert!(started.elapsed() >= std::time::Duration::from_millis(900), "waited the second");
        let not_a_socket = OwnedFd::from(std::fs::File::open("/dev/null").expect("null"));
        let refused = set_receive_timeout(&not_a_socket, 1).expect_err("not a socket");
        assert_eq!(refused.raw_os_error(), Some(libc::ENOTSOCK));
    }

    #[test]
    fn socket_addresses_round_trip() {
        for text in ["192.0.2.7:80", "[2001:db8::7]:8080", "0.0.0.0:0"] {
            let address: SocketAddr = text.parse().unwrap();
            let (storage, _) = socket_address(&address);
            assert_eq!(address_of(&storage), Some(address));
        }
        // SAFETY: sockaddr_storage is plain data; zeroed is valid.
        let mut unix: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        unix.ss_family = libc::AF_UNIX as libc::sa_family_t;
        assert_eq!(address_of(&unix), None);
    }

    #[test]
    fn a_tcp_listener_accepts_and_names_its_address_and_the_peer() {
        let listener = StreamListener::tcp("127.0.0.1:0".parse().unwrap()).expect("listen");
        let address = listener.local_address().expect("bound");
        assert_eq!(address.ip(), IpAddr::from([127, 0, 0, 1]));
        assert_ne!(address.port(), 0);
        let error = listener.accept_client().expect_err("nobody connected yet");
        assert_eq!(error.raw_os_error(), Some(libc::EAGAIN));
        let mut peer = std::net::TcpStream::connect(address).expect("connect");
        let (stream, from) = listener.accept_client().expect("accepted");
        assert_eq!(from, Some(IpAddr::from([127, 0, 0, 1])));
        let mut stream = std::net::TcpStream::from(stream);
        peer.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        stream.set_nonblocking(false).unwrap();
        stream.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        // Taken again at once after the listener closes (SO_REUSEADDR), as after a restart.
        drop((listener, stream, peer));
        StreamListener::tcp(address).expect("the same address again");
    }

    #[test]
    fn a_unix_listener_accepts_without_a_peer_address() {
        let dir = std::env::temp_dir().join(format!("wanmon-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("control.sock");
        let _ = std::fs::remove_file(&path);
        let listener = StreamListener::unix(&path).expect("listen");
        assert_eq!(listener.local_address(), None);
        let _peer = connect_unix(&path).expect("connect");
        let (_, from) = listener.accept_client().expect("accepted");
        assert_eq!(from, None);
        let nobody = connect_unix(&dir.join("nobody.sock")).expect_err("nothing listens");
        assert_eq!(nobody.raw_os_error(), Some(libc::ENOENT));
        let taken = StreamListener::unix(&path).expect_err("the path is taken");
        assert_eq!(taken.raw_os_error(), Some(libc::EADDRINUSE));
        let long = dir.join("x".repeat(120));
        let refused = StreamListener::unix(&long).expect_err("too long for sockaddr_un");
        assert_eq!(refused.raw_os_error(), Some(libc::ENAMETOOLONG));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
