//! The C library's thin system-call wrappers, made through its one `syscall(2)` instead.
//!
//! Every C function the router binary imports costs it a dynamic symbol, its name, a hash
//! entry, a relocation and a PLT stub (about 60 bytes); the ones here do nothing but enter the
//! kernel (on the kernels wanmon runs on), so one import serves them all. Each keeps the
//! signature and the contract of the function it replaces: -1 and `errno` on failure.
//! `send` and `recv` are `sendto` and `recvfrom` without an address, `waitpid` is `wait4`
//! without resource usage, as the C library makes them.
#![allow(clippy::missing_safety_doc)] // as libc's own: the C function's contract.

use libc::{c_char, c_int, c_long, c_void, mode_t, nfds_t, pid_t, pollfd, size_t, sockaddr};
use libc::{socklen_t, ssize_t};

/// `syscall(number, args...)`, every argument as the `long` the C library reads it as (on a
/// 64-bit machine an `int` passed through `...` leaves the register's upper half undefined).
macro_rules! call {
    ($number:ident $(, $arg:expr)*) => {
        unsafe { libc::syscall(libc::$number $(, $arg as c_long)*) }
    };
}

pub unsafe fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int {
    call!(SYS_socket, domain, kind, protocol) as c_int
}

pub unsafe fn bind(fd: c_int, address: *const sockaddr, len: socklen_t) -> c_int {
    call!(SYS_bind, fd, address, len) as c_int
}

pub unsafe fn listen(fd: c_int, backlog: c_int) -> c_int {
    call!(SYS_listen, fd, backlog) as c_int
}

pub unsafe fn connect(fd: c_int, address: *const sockaddr, len: socklen_t) -> c_int {
    call!(SYS_connect, fd, address, len) as c_int
}

pub unsafe fn accept4(
    fd: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    call!(SYS_accept4, fd, address, len, flags) as c_int
}

pub unsafe fn getsockname(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int {
    call!(SYS_getsockname, fd, address, len) as c_int
}

pub unsafe fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    call!(SYS_setsockopt, fd, level, name, value, len) as c_int
}

pub unsafe fn sendto(
    fd: c_int,
    buffer: *const c_void,
    len: size_t,
    flags: c_int,
    address: *const sockaddr,
    address_len: socklen_t,
) -> ssize_t {
    call!(SYS_sendto, fd, buffer, len, flags, address, address_len) as ssize_t
}

pub unsafe fn send(fd: c_int, buffer: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    unsafe { sendto(fd, buffer, len, flags, std::ptr::null(), 0) }
}

pub unsafe fn recvfrom(
    fd: c_int,
    buffer: *mut c_void,
    len: size_t,
    flags: c_int,
    address: *mut sockaddr,
    address_len: *mut socklen_t,
) -> ssize_t {
    call!(SYS_recvfrom, fd, buffer, len, flags, address, address_len) as ssize_t
}

pub unsafe fn recv(fd: c_int, buffer: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    unsafe { recvfrom(fd, buffer, len, flags, std::ptr::null_mut(), std::ptr::null_mut()) }
}

pub unsafe fn poll(fds: *mut pollfd, count: nfds_t, timeout_ms: c_int) -> c_int {
    call!(SYS_poll, fds, count, timeout_ms) as c_int
}

pub unsafe fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    call!(SYS_pipe2, fds, flags) as c_int
}

pub unsafe fn dup2(from: c_int, to: c_int) -> c_int {
    call!(SYS_dup2, from, to) as c_int
}

pub unsafe fn umask(mask: mode_t) -> mode_t {
    call!(SYS_umask, mask) as mode_t
}

pub unsafe fn unlink(path: *const c_char) -> c_int {
    call!(SYS_unlink, path) as c_int
}

pub unsafe fn prctl(option: c_int, argument: *const u8) -> c_int {
    call!(SYS_prctl, option, argument) as c_int
}

pub unsafe fn setsid() -> pid_t {
    call!(SYS_setsid) as pid_t
}

pub unsafe fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    call!(SYS_execve, path, argv, envp) as c_int
}

pub unsafe fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    call!(SYS_wait4, pid, status, options, std::ptr::null_mut::<c_void>()) as pid_t
}

pub unsafe fn kill(pid: pid_t, signal: c_int) -> c_int {
    call!(SYS_kill, pid, signal) as c_int
}

pub fn getpid() -> pid_t {
    call!(SYS_getpid) as pid_t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Error;
    use std::os::fd::AsRawFd;

    fn errno() -> Option<i32> {
        Error::last_os_error().raw_os_error()
    }

    #[test]
    fn a_failed_call_is_minus_one_with_the_errno() {
        // SAFETY: calls on a descriptor that is not open, and on no child.
        unsafe {
            assert_eq!(listen(-1, 1), -1);
            assert_eq!(errno(), Some(libc::EBADF));
            assert_eq!(waitpid(-1, std::ptr::null_mut(), libc::WNOHANG), -1);
            assert_eq!(errno(), Some(libc::ECHILD));
            assert_eq!(unlink(c"/nonexistent/wanmon".as_ptr()), -1);
            assert_eq!(errno(), Some(libc::ENOENT));
        }
        assert_eq!(getpid() as u32, std::process::id());
    }

    #[test]
    fn a_datagram_goes_through_send_and_recv() {
        let (ours, theirs) = std::os::unix::net::UnixDatagram::pair().expect("pair");
        let mut buffer = [0u8; 8];
        // SAFETY: live buffers of the lengths passed.
        unsafe {
            assert_eq!(send(ours.as_raw_fd(), b"ping".as_ptr().cast(), 4, 0), 4);
            let got = recv(theirs.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), 0);
            assert_eq!(got, 4);
        }
        assert_eq!(&buffer[..4], b"ping");
        let mut ready = libc::pollfd { fd: theirs.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        assert_eq!(unsafe { poll(&mut ready, 1, 0) }, 0, "nothing left to read");
    }
}
