//! The router's `/usr/sbin/wanmon`: unpacks the daemon it carries (LZMA) into an anonymous
//! memory file and executes it in its own place, same process, same arguments and environment.
//!
//! Why: on the router's flash (JFFS2, compressed per 4 KiB node) the plain binary takes about
//! 1.4 times what LZMA over the whole file does, and the user's router had 132 KB free. The cost
//! is paid at every start in time (tens of milliseconds on a 580 MHz MT7628) and, while the
//! daemon runs, in RAM (the unpacked image lives in the memory file instead of the page cache).
//! Only `cargo xtask dist` builds this, with `WANMON_PACKED` naming the `.lzma` file to carry.
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int};

static PACKED: &[u8] = include_bytes!(env!("WANMON_PACKED"));

#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    let size = match wanmon_unpack::unpacked_size(PACKED) {
        Ok(size) => size,
        Err(error) => fail(error.describe(), 0),
    };
    // SAFETY: plain system calls on a descriptor and a mapping this function owns; the mapping
    // is `size` bytes long, the length of the slice made from it, and is unmapped before exec.
    unsafe {
        let fd = libc::syscall(libc::SYS_memfd_create, c"wanmon".as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            fail("cannot create a memory file (memfd_create)", errno());
        }
        let fd = fd as c_int;
        if libc::ftruncate(fd, size as libc::off_t) != 0 {
            fail("cannot size the memory file", errno());
        }
        let protection = libc::PROT_READ | libc::PROT_WRITE;
        let map = libc::mmap(core::ptr::null_mut(), size, protection, libc::MAP_SHARED, fd, 0);
        if map == libc::MAP_FAILED {
            fail("cannot map the memory file", errno());
        }
        let image = core::slice::from_raw_parts_mut(map.cast::<u8>(), size);
        if let Err(error) = wanmon_unpack::decode(PACKED, image) {
            fail(error.describe(), 0);
        }
        libc::munmap(map, size);
        libc::syscall(libc::SYS_execveat, fd, c"".as_ptr(), argv, envp, libc::AT_EMPTY_PATH);
        fail("cannot execute the unpacked daemon (execveat)", errno())
    }
}

fn errno() -> c_int {
    // SAFETY: musl's thread-local errno, read right after the failed call.
    unsafe { *libc::__errno_location() }
}

/// Says what failed on standard error, as `wanmon: cannot start: WHAT (errno N)`, and exits 127,
/// what a shell returns for a command it cannot run.
fn fail(what: &str, errno: c_int) -> ! {
    let mut number = [0u8; 12];
    let mut at = number.len();
    let mut rest = errno.unsigned_abs();
    loop {
        at -= 1;
        number[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let parts: [&[u8]; 5] =
        [b"wanmon: cannot start: ", what.as_bytes(), b" (errno ", &number[at..], b")\n"];
    let parts = if errno == 0 { [parts[0], parts[1], b"\n", b"", b""] } else { parts };
    for part in parts {
        // SAFETY: writes a live slice to standard error.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    // SAFETY: ends the process; nothing is left to clean up.
    unsafe { libc::_exit(127) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail("internal error", 0)
}
