//! The daemon's contact with the OS besides sockets: signals (through a self-pipe, so the poll
//! loop sees them), the log (syslog's /dev/log for OpenWrt's logread, else stderr), and the hook.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is one valid byte.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// Signals turned into bytes on a pipe.
#[derive(Debug)]
pub struct Signals {
    read: OwnedFd,
    _write: OwnedFd,
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }
}

impl Signals {
    /// Catches SIGTERM, SIGINT and SIGHUP; ignores SIGPIPE (a web client that hangs up).
    pub fn install() -> io::Result<Signals> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        SIGNAL_PIPE.store(write.as_raw_fd(), Ordering::Relaxed);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            // SAFETY: sigaction is plain data; the handler only calls write(2).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        // SAFETY: setting a signal to be ignored.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        Ok(Signals {
            read,
            _write: write,
        })
    }

    /// The signals that arrived since the last call.
    pub fn take(&self) -> Vec<i32> {
        let mut buffer = [0u8; 16];
        // SAFETY: buffer is valid for writes of its length.
        let got = unsafe {
            libc::read(
                self.read.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        };
        if got <= 0 {
            Vec::new()
        } else {
            buffer[..got as usize]
                .iter()
                .map(|b| i32::from(*b))
                .collect()
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
}

/// One line per event: to syslog (daemon facility) when /dev/log exists, else to stderr.
#[derive(Debug)]
pub struct Log {
    syslog: Option<UnixDatagram>,
    pid: u32,
}

impl Log {
    pub fn open() -> Log {
        let syslog = UnixDatagram::unbound()
            .ok()
            .filter(|socket| socket.connect("/dev/log").is_ok());
        Log {
            syslog,
            pid: std::process::id(),
        }
    }

    pub fn line(&self, level: Level, message: &str) {
        if let Some(socket) = &self.syslog {
            // Facility daemon (3): priority = 3 * 8 + level.
            let line = format!("<{}>wanmon[{}]: {message}", 24 + level as u8, self.pid);
            if socket.send(line.as_bytes()).is_ok() {
                return;
            }
        }
        let _ = writeln!(io::stderr(), "wanmon: {message}");
    }
}

/// Hooks still running, so they are reaped and time-limited rather than left as zombies.
#[derive(Debug, Default)]
pub struct Hooks {
    running: Vec<(Child, Instant)>,
}

/// A hook that runs longer than this is killed.
const HOOK_TIME_LIMIT: Duration = Duration::from_secs(30);

impl Hooks {
    /// Starts the hook with the switch in its environment. The argv comes from the config as is:
    /// no shell, so no link name or reason can become a command.
    pub fn start(&mut self, argv: &[String], from: &str, to: &str, reason: &str, log: &Log) {
        let Some((program, args)) = argv.split_first() else {
            return;
        };
        let started = Command::new(program)
            .args(args)
            .env("WANMON_FROM", from)
            .env("WANMON_TO", to)
            .env("WANMON_REASON", reason)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match started {
            Ok(child) => self.running.push((child, Instant::now())),
            Err(e) => log.line(
                Level::Warning,
                &format!("hook {program} could not start: {e}"),
            ),
        }
    }

    /// Reaps finished hooks, logs failures, kills those over the time limit.
    pub fn reap(&mut self, log: &Log) {
        self.running
            .retain_mut(|(child, started)| match child.try_wait() {
                Ok(Some(status)) if status.success() => false,
                Ok(Some(status)) => {
                    log.line(Level::Warning, &format!("hook failed: {status}"));
                    false
                }
                Ok(None) if started.elapsed() > HOOK_TIME_LIMIT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    log.line(Level::Warning, "hook killed after 30 s");
                    false
                }
                Ok(None) => true,
                Err(e) => {
                    log.line(Level::Warning, &format!("hook lost: {e}"));
                    false
                }
            });
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}
