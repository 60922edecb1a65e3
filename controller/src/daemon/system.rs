//! The daemon's contact with the OS besides sockets: signals (through a self-pipe, so the poll
//! loop sees them), the log (syslog's /dev/log for OpenWrt's logread, else stderr), and the hook.

use super::kernel;
pub use crate::core::Level;
use crate::core::{Instant, Micros};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

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
        if unsafe { kernel::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        SIGNAL_PIPE.store(write.as_raw_fd(), Ordering::Relaxed);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            // SAFETY: the handler only calls write(2).
            unsafe { set_disposition(signal, on_signal as *const () as usize) };
        }
        // SAFETY: ignoring a signal has no handler to be unsafe in.
        unsafe { set_disposition(libc::SIGPIPE, libc::SIG_IGN) };
        Ok(Signals { read, _write: write })
    }

    /// The signals that arrived since the last call.
    pub fn take(&self) -> Vec<i32> {
        let mut buffer = [0u8; 16];
        // SAFETY: buffer is valid for writes of its length.
        let got =
            unsafe { libc::read(self.read.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if got <= 0 {
            Vec::new()
        } else {
            buffer[..got as usize].iter().map(|b| i32::from(*b)).collect()
        }
    }
}

/// One line per event: to syslog (daemon facility) when /dev/log exists, else to stderr.
#[derive(Debug)]
pub struct Log {
    syslog: Option<OwnedFd>,
    pid: u32,
}

impl Log {
    pub fn open() -> Log {
        Log::open_at("/dev/log")
    }

    /// Logs to the syslog socket at `path` if something listens there, else to stderr.
    pub fn open_at(path: &str) -> Log {
        let syslog = super::stream::connect_unix_datagram(std::path::Path::new(path)).ok();
        Log { syslog, pid: kernel::getpid() as u32 }
    }

    pub fn say(&self, level: Level, message: &str) {
        let mut line = String::new();
        if let Some(socket) = &self.syslog {
            // Facility daemon (3): priority = 3 * 8 + level.
            put!(&mut line, "<", 24 + level as u8, ">wanmon[", self.pid, "]: ", message);
            // SAFETY: a live buffer of the length passed; one write is one datagram.
            let sent = unsafe { libc::write(socket.as_raw_fd(), line.as_ptr().cast(), line.len()) };
            if sent >= 0 {
                return;
            }
            line.clear();
        }
        put!(&mut line, "wanmon: ", message, "\n");
        write_out(2, &line);
    }
}

/// Writes `text` to descriptor `fd` (1 stdout, 2 stderr) straight through `write(2)`: what
/// `println!` does, without std's buffered stdout machinery in the router's binary.
pub fn write_out(fd: libc::c_int, text: &str) {
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        // SAFETY: rest is a valid buffer of the length passed.
        let written = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if written < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if written <= 0 {
            return;
        }
        rest = &rest[written as usize..];
    }
}

/// What `signal` does on arrival: `handler`, or `SIG_IGN`; interrupted system calls restart.
/// Through sigaction alone (no signal(3) and no sigemptyset(3): the zeroed mask is empty), each
/// C function imported costing flash.
///
/// # Safety
/// `handler` is `SIG_IGN`, `SIG_DFL` or an `extern "C" fn(c_int)` that is async-signal-safe.
unsafe fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: sigaction is plain data, zeroed is a valid empty one; the handler is as the
    // caller promised.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// What std's start-up does that the daemon needs, for a binary that has its own C `main`
/// (`main.rs`): the environment kept for the hooks ([`keep_environment`]), a write to a closed
/// socket fails with EPIPE rather than killing the process, and descriptors 0, 1 and 2 are open
/// (on /dev/null where they were not), so that no socket the daemon opens later becomes its
/// stdout or stderr.
pub fn start_up(environment: *const *const libc::c_char) {
    keep_environment(environment);
    // SAFETY: ignoring a signal has no handler to be unsafe in.
    unsafe { set_disposition(libc::SIGPIPE, libc::SIG_IGN) };
    let mut standard = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: three valid pollfds; a zero timeout only asks about each descriptor.
    if unsafe { kernel::poll(standard.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for closed in standard.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // SAFETY: a constant NUL-terminated path. open takes the lowest free descriptor, which
        // is this one: the ones before it are open or were opened in this loop.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if fd != closed.fd {
            return;
        }
    }
}

/// Names the process after `command`, how it was started (the basename of `argv[0]`, cut to
/// the kernel's 15 bytes), as the kernel does when it executes a file. The router's unpacker
/// executes a memory file, which the kernel names by its descriptor number ("3"), and that is
/// the name `ps`, `pidof` and `killall` would see.
pub fn name_process(command: &[u8]) {
    let base = command.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let mut name = [0u8; 16];
    let len = base.len().min(name.len() - 1);
    name[..len].copy_from_slice(&base[..len]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes; `name` is one.
    unsafe { kernel::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// The monotonic clock (`CLOCK_MONOTONIC`) in the decision core's unit, from the kernel's own
/// origin. One system call and a multiplication: std's `Instant` and its checked arithmetic
/// cost the router 1.4 KB more.
pub fn monotonic_now() -> Instant {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    Instant::from_micros(now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000)
}

/// Hooks still running, so they are reaped and time-limited rather than left as zombies.
#[derive(Debug, Default)]
pub struct Hooks {
    running: Vec<(libc::pid_t, Instant)>,
}

/// A hook that runs longer than this is killed.
const HOOK_TIME_LIMIT: Micros = 30_000_000;

/// `bytes` NUL-terminated for the C library; `None` if they hold a NUL of their own. std's
/// `CString` does the same with a search routine and conversions of its own (0.2 KB of the
/// router's LZMA stream).
pub fn c_string(bytes: &[u8]) -> Option<Vec<u8>> {
    if has_nul(bytes) {
        return None;
    }
    let mut terminated = Vec::with_capacity(bytes.len() + 1);
    terminated.extend_from_slice(bytes);
    terminated.push(0);
    Some(terminated)
}

/// Whether `bytes` hold a NUL. A plain walk: `contains` brings core's word-at-a-time `memchr`
/// into the router's binary for names of a few bytes.
#[allow(clippy::manual_contains)]
pub fn has_nul(bytes: &[u8]) -> bool {
    bytes.iter().any(|b| *b == 0)
}

/// Removes the file at `path`: unlink(2), as `std::fs::remove_file` does.
pub fn remove_file(path: &std::path::Path) -> io::Result<()> {
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let path = c_string(bytes).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated path.
    if unsafe { kernel::unlink(path.as_ptr().cast()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The environment the daemon was started with, as `main` received it (its third argument).
/// Not the C library's `environ`: the daemon would then hold a copy of it (a copy relocation),
/// and the link-time stub of the router's C library that zig links against puts every data
/// object at one address, so the copy brought `__progname`, `__stack_chk_guard`, `optarg` and
/// the rest along as aliases of the same four bytes. The C library's start-up then wrote the
/// program's name over the environment, and the first hook crashed the daemon.
static ENVIRONMENT: AtomicPtr<*const libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// Keeps `environment` (null-terminated, as `main` receives it) for the hooks.
pub fn keep_environment(environment: *const *const libc::c_char) {
    ENVIRONMENT.store(environment.cast_mut(), Ordering::Relaxed);
}

/// The daemon's own environment, byte for byte whatever its encoding, but for any `WANMON_`
/// variable (the hook's own are set afresh). Pointers into it rather than copies
/// (`std::env::vars_os` costs ~1 KB of flash more): nothing changes the environment, and the
/// daemon has one thread.
fn inherited_environment() -> Vec<*const libc::c_char> {
    let mut inherited = Vec::new();
    // SAFETY: the kept environment is a null-terminated array of valid C strings (or null),
    // left alone while we read.
    unsafe {
        let mut entry = ENVIRONMENT.load(Ordering::Relaxed).cast_const();
        while !entry.is_null() && !(*entry).is_null() {
            if !std::ffi::CStr::from_ptr(*entry).to_bytes().starts_with(b"WANMON_") {
                inherited.push(*entry);
            }
            entry = entry.add(1);
        }
    }
    inherited
}

impl Hooks {
    /// Starts the hook with the switch in its environment. The argv comes from the config as is:
    /// no shell, so no link name or reason can become a command. fork + execve by hand rather
    /// than std::process::Command: the same thing for ~10 KB less flash.
    pub fn start(&mut self, argv: &[String], from: &str, to: &str, reason: &str, log: &Log) {
        let Some(program) = argv.first() else { return };
        // Loops rather than collecting adapters: those cost the router's flash half a kilobyte.
        let mut args = Vec::with_capacity(argv.len());
        for arg in argv {
            let Some(arg) = c_string(arg.as_bytes()) else {
                log.say(
                    Level::Warning,
                    &text!("hook ", program, " could not start: a NUL byte in its arguments"),
                );
                return;
            };
            args.push(arg);
        }
        let mut switch = Vec::with_capacity(3);
        for (key, value) in [("WANMON_FROM", from), ("WANMON_TO", to), ("WANMON_REASON", reason)] {
            // A NUL byte in a reason cannot be passed: that variable is left out.
            switch.extend(c_string(text!(key, "=", value).as_bytes()));
        }
        let mut arg_pointers = Vec::with_capacity(args.len() + 1);
        for arg in &args {
            arg_pointers.push(arg.as_ptr().cast::<libc::c_char>());
        }
        arg_pointers.push(std::ptr::null());
        let mut env_pointers = inherited_environment();
        for variable in &switch {
            env_pointers.push(variable.as_ptr().cast::<libc::c_char>());
        }
        env_pointers.push(std::ptr::null());
        let path = &args[0];
        let null = c"/dev/null";
        // Everything the child needs is prepared: after fork it only calls async-signal-safe
        // functions (open, dup2, close, execve, _exit). The daemon has one thread.
        // SAFETY: fork in a single-threaded process.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: the child only uses async-signal-safe calls on prepared, valid buffers.
            unsafe {
                let fd = libc::open(null.as_ptr(), libc::O_RDWR);
                if fd >= 0 {
                    kernel::dup2(fd, 0);
                    kernel::dup2(fd, 1);
                    kernel::dup2(fd, 2);
                }
                kernel::setsid();
                kernel::execve(path.as_ptr().cast(), arg_pointers.as_ptr(), env_pointers.as_ptr());
                libc::_exit(127);
            }
        }
        if pid < 0 {
            log.say(
                Level::Warning,
                &text!(
                    "hook ",
                    program,
                    " could not start: ",
                    crate::text::OsError(&io::Error::last_os_error())
                ),
            );
            return;
        }
        self.running.push((pid, monotonic_now()));
    }

    /// Reaps finished hooks, logs failures, kills those over the time limit.
    pub fn reap(&mut self, log: &Log) {
        self.running.retain(|(pid, started)| {
            let mut status = 0;
            // SAFETY: waitpid on our own child with a valid status pointer.
            let done = unsafe { kernel::waitpid(*pid, &mut status, libc::WNOHANG) };
            if done == 0 {
                if monotonic_now().since(*started) > HOOK_TIME_LIMIT {
                    // SAFETY: killing and reaping our own child.
                    unsafe {
                        kernel::kill(*pid, libc::SIGKILL);
                        kernel::waitpid(*pid, &mut status, 0);
                    }
                    log.say(Level::Warning, "hook killed after 30 s");
                    return false;
                }
                return true;
            }
            if done < 0 {
                return false;
            }
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 127 {
                log.say(
                    Level::Warning,
                    "hook could not start: exit status 127 (not found or not executable)",
                );
            } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) != 0 {
                log.say(
                    Level::Warning,
                    &text!("hook failed: exit status: ", libc::WEXITSTATUS(status)),
                );
            } else if libc::WIFSIGNALED(status) {
                log.say(
                    Level::Warning,
                    &text!("hook failed: killed by signal ", libc::WTERMSIG(status)),
                );
            }
            false
        });
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};

    fn syslog(name: &str) -> (UnixDatagram, String, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("wanmon-log-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (socket, path.display().to_string(), dir)
    }

    fn received(socket: &UnixDatagram) -> String {
        let mut buffer = [0u8; 512];
        let len = socket.recv(&mut buffer).unwrap();
        String::from_utf8_lossy(&buffer[..len]).into_owned()
    }

    #[test]
    fn lines_go_to_syslog_with_facility_and_level() {
        let (socket, path, dir) = syslog("levels");
        let log = Log::open_at(&path);
        log.say(Level::Notice, "wan -> wwan: wan is dead");
        assert_eq!(
            received(&socket),
            format!("<29>wanmon[{}]: wan -> wwan: wan is dead", std::process::id())
        );
        log.say(Level::Error, "x");
        assert!(received(&socket).starts_with("<27>wanmon["));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn without_syslog_the_log_falls_back_to_stderr() {
        let log = Log::open_at("/nonexistent/log");
        assert!(log.syslog.is_none());
        log.say(Level::Info, "to stderr");
    }

    fn wait_for_hooks(hooks: &mut Hooks, log: &Log) {
        let start = Instant::now();
        while !hooks.is_empty() && start.elapsed() < Duration::from_secs(5) {
            hooks.reap(log);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(hooks.is_empty(), "hooks still running after 5 s");
    }

    unsafe extern "C" {
        /// The test's environment: the daemon's `main` would be given it.
        static environ: *const *const libc::c_char;
    }

    #[test]
    fn the_hook_gets_the_switch_in_its_environment_and_failures_are_logged() {
        // SAFETY: read once, before any hook; the test harness does not change it meanwhile.
        keep_environment(unsafe { environ });
        let (socket, path, dir) = syslog("hook");
        let log = Log::open_at(&path);
        let out = dir.join("hook.out");
        let script = dir.join("hook.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$WANMON_FROM>$WANMON_TO:$1:${{PATH:+path}}\" > {}\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut hooks = Hooks::default();
        // A name with shell syntax stays data: an environment value, never a command.
        hooks.start(
            &[script.display().to_string(), "arg".into()],
            "wan",
            "$(reboot);wwan",
            "reason",
            &log,
        );
        wait_for_hooks(&mut hooks, &log);
        // The daemon's own environment (PATH here) passes on.
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "wan>$(reboot);wwan:arg:path\n");
        hooks.start(&["/bin/false".into()], "a", "b", "r", &log);
        wait_for_hooks(&mut hooks, &log);
        assert!(received(&socket).contains("hook failed: exit status: 1"));
        hooks.start(&["/nonexistent/hook".into()], "a", "b", "r", &log);
        wait_for_hooks(&mut hooks, &log);
        assert!(received(&socket).contains("hook could not start: exit status 127"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn c_strings_are_terminated_and_refuse_a_nul_of_their_own() {
        assert_eq!(c_string(b"wanmon"), Some(b"wanmon\0".to_vec()));
        assert_eq!(c_string(b""), Some(b"\0".to_vec()));
        assert_eq!(c_string(b"a\0b"), None);
    }

    #[test]
    fn remove_file_removes_and_names_what_failed() {
        let path = std::env::temp_dir().join(format!("wanmon-remove-{}", std::process::id()));
        std::fs::write(&path, "x").unwrap();
        remove_file(&path).expect("removed");
        assert!(!path.exists());
        let gone = remove_file(&path).expect_err("nothing to remove");
        assert_eq!(gone.raw_os_error(), Some(libc::ENOENT));
        let nul = std::path::Path::new(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"a\0b"),
        );
        assert_eq!(remove_file(nul).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    }
}
