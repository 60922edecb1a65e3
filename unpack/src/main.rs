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
// Inline assembly on MIPS is behind a feature gate: the router build already runs Debian's
// rustc with RUSTC_BOOTSTRAP=1 for -Zbuild-std.
#![cfg_attr(target_arch = "mips", feature(asm_experimental_arch))]

use core::ffi::c_char;

static PACKED: &[u8] = include_bytes!(env!("WANMON_PACKED"));

/// Where the kernel starts the process: no C library, so no C start-up code (musl's is ~2.5 KB
/// of the package: thread-local storage, auxiliary vector, locale). `_start` hands the initial
/// stack pointer to [`start`], which finds argc, argv and envp there.
#[unsafe(no_mangle)]
unsafe extern "C" fn start(stack: *const usize) -> ! {
    // SAFETY: the kernel's initial stack holds argc, then argc argument pointers and a null,
    // then the environment's pointers and a null.
    let (argv, envp) = unsafe {
        let argc = *stack;
        let argv = stack.add(1).cast::<*const c_char>();
        (argv, argv.add(argc + 1))
    };
    let size = match wanmon_unpack::unpacked_size(PACKED) {
        Ok(size) => size,
        Err(error) => fail(error.describe(), 0),
    };
    // SAFETY: plain system calls on a descriptor and a mapping this function owns; the mapping
    // is `size` bytes long, the length of the slice made from it, and is unmapped before exec.
    unsafe {
        let fd = sys::call(
            sys::MEMFD_CREATE,
            [c"wanmon".as_ptr() as usize, sys::MFD_CLOEXEC, 0, 0, 0, 0],
        )
        .unwrap_or_else(|errno| fail("cannot create a memory file (memfd_create)", errno));
        if let Err(errno) = sys::call(sys::FTRUNCATE, [fd, size, 0, 0, 0, 0]) {
            fail("cannot size the memory file", errno);
        }
        let mapping = [0, size, sys::PROT_READ | sys::PROT_WRITE, sys::MAP_SHARED, fd, 0];
        let map = sys::call(sys::MMAP, mapping)
            .unwrap_or_else(|errno| fail("cannot map the memory file", errno));
        let image = core::slice::from_raw_parts_mut(map as *mut u8, size);
        if let Err(error) = wanmon_unpack::decode(PACKED, image) {
            fail(error.describe(), 0);
        }
        let _ = sys::call(sys::MUNMAP, [map, size, 0, 0, 0, 0]);
        let exec = [fd, c"".as_ptr() as usize, argv as usize, envp as usize, sys::AT_EMPTY_PATH, 0];
        let errno = sys::call(sys::EXECVEAT, exec).err().unwrap_or(0);
        fail("cannot execute the unpacked daemon (execveat)", errno)
    }
}

/// Says what failed on standard error, as `wanmon: cannot start: WHAT (errno N)`, and exits 127,
/// what a shell returns for a command it cannot run.
fn fail(what: &str, errno: i32) -> ! {
    say(b"wanmon: cannot start: ");
    say(what.as_bytes());
    if errno != 0 {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut rest = errno.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        say(b" (errno ");
        say(&digits[at..]);
        say(b")");
    }
    say(b"\n");
    loop {
        // SAFETY: ends the process (it does not return); nothing is left to clean up. The call
        // reads only the first argument; the rest are 127 too, as zeros would be a memset (and
        // its 200 bytes in the package).
        let _ = unsafe { sys::call(sys::EXIT_GROUP, [127; 6]) };
    }
}

/// Writes `bytes` to standard error (what does not fit is lost: the process is ending).
#[inline(never)]
fn say(bytes: &[u8]) {
    // SAFETY: writes a live slice to standard error.
    let _ = unsafe { sys::call(sys::WRITE, [2, bytes.as_ptr() as usize, bytes.len(), 0, 0, 0]) };
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail("internal error", 0)
}

/// The kernel's interface for the two architectures the router package is built for: system
/// call numbers and flags, [`call`], and `_start`.
mod sys {
    #[cfg(target_arch = "mips")]
    mod numbers {
        // o32: 4000 + the number in arch/mips/kernel/syscalls/syscall_o32.tbl.
        pub const WRITE: usize = 4004;
        pub const MMAP: usize = 4090;
        pub const MUNMAP: usize = 4091;
        pub const FTRUNCATE: usize = 4093;
        pub const EXIT_GROUP: usize = 4246;
        pub const MEMFD_CREATE: usize = 4354;
        pub const EXECVEAT: usize = 4356;
    }
    #[cfg(target_arch = "x86_64")]
    mod numbers {
        pub const WRITE: usize = 1;
        pub const MMAP: usize = 9;
        pub const MUNMAP: usize = 11;
        pub const FTRUNCATE: usize = 77;
        pub const EXIT_GROUP: usize = 231;
        pub const MEMFD_CREATE: usize = 319;
        pub const EXECVEAT: usize = 322;
    }
    pub use numbers::*;

    pub const MFD_CLOEXEC: usize = 1;
    pub const PROT_READ: usize = 1;
    pub const PROT_WRITE: usize = 2;
    pub const MAP_SHARED: usize = 1;
    pub const AT_EMPTY_PATH: usize = 0x1000;

    /// System call `number` with six arguments (the unused ones zero): its result, or the errno.
    ///
    /// # Safety
    /// The arguments must be what the call takes: pointers to live memory of the right size.
    #[cfg(target_arch = "mips")]
    pub unsafe fn call(number: usize, args: [usize; 6]) -> Result<usize, i32> {
        let (result, failed): (usize, usize);
        // SAFETY: the o32 convention (as musl's syscall_arch.h): the number in $2, arguments
        // in $4-$7 and the fifth and sixth on the stack at 16 and 20; $7 comes back non-zero
        // on failure with the errno in $2. The kernel may change $3, $8-$15, $24, $25, and hi
        // and lo, which Rust cannot name: nothing here keeps a value in them across the call.
        unsafe {
            core::arch::asm!(
                "addiu $sp, $sp, -32",
                "sw {fifth}, 16($sp)",
                "sw {sixth}, 20($sp)",
                "syscall",
                "addiu $sp, $sp, 32",
                fifth = in(reg) args[4],
                sixth = in(reg) args[5],
                inlateout("$2") number => result,
                in("$4") args[0],
                in("$5") args[1],
                in("$6") args[2],
                inlateout("$7") args[3] => failed,
                lateout("$3") _,
                lateout("$8") _,
                lateout("$9") _,
                lateout("$10") _,
                lateout("$11") _,
                lateout("$12") _,
                lateout("$13") _,
                lateout("$14") _,
                lateout("$15") _,
                lateout("$24") _,
                lateout("$25") _,
            );
        }
        if failed != 0 { Err(result as i32) } else { Ok(result) }
    }

    #[cfg(target_arch = "x86_64")]
    pub unsafe fn call(number: usize, args: [usize; 6]) -> Result<usize, i32> {
        let result: usize;
        // SAFETY: the x86-64 convention: the number in rax, arguments in rdi, rsi, rdx, r10,
        // r8, r9; the kernel changes rcx and r11; -4095..-1 is an errno.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") number => result,
                in("rdi") args[0],
                in("rsi") args[1],
                in("rdx") args[2],
                in("r10") args[3],
                in("r8") args[4],
                in("r9") args[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        if result > (-4096isize) as usize { Err(-(result as isize) as i32) } else { Ok(result) }
    }

    // The entry point: the stack pointer as the kernel left it goes to `start`, on a stack
    // aligned as the ABI wants (8 bytes on o32, with the 16 bytes of argument slots a callee
    // may use; 16 bytes on x86-64). `start` never returns.
    #[cfg(target_arch = "mips")]
    core::arch::global_asm!(
        ".globl __start",
        ".globl _start",
        "__start:",
        "_start:",
        ".set push",
        ".set noreorder",
        "lui $gp, %hi(_gp)",
        "addiu $gp, $gp, %lo(_gp)",
        "move $4, $sp",
        "li $8, -8",
        "and $sp, $sp, $8",
        "addiu $sp, $sp, -16",
        "jal {start}",
        "nop",
        ".set pop",
        start = sym super::start,
    );

    #[cfg(target_arch = "x86_64")]
    core::arch::global_asm!(
        ".globl _start",
        "_start:",
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {start}",
        start = sym super::start,
    );
}
