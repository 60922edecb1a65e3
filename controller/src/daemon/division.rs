//! 64-bit division for the 32-bit router, one bit at a time: smaller than compiler-builtins'.
//!
//! MIPS32 divides 32-bit numbers in hardware; a `u64` quotient (microseconds into milliseconds,
//! a byte count into digits) is a call to `__udivdi3`. compiler-builtins answers it with a
//! routine tuned for speed (1.1 KB of MIPS code with its wrappers); the daemon divides a few
//! dozen times a second, so the router binary defines the three symbols itself and the linker
//! leaves the large routine out. Numbers that fit in 32 bits still go to the hardware divider.

/// `(numerator / divisor, numerator % divisor)`; a zero divisor gives `(u64::MAX, numerator)`
/// (Rust checks for zero before it ever calls the division routines).
#[inline(never)]
pub fn divide(numerator: u64, divisor: u64) -> (u64, u64) {
    if (numerator | divisor) >> 32 == 0 && divisor != 0 {
        let (n, d) = (numerator as u32, divisor as u32);
        return (u64::from(n / d), u64::from(n % d));
    }
    // The quotient's bits take the numerator's place as it shifts out, as long division does.
    let (mut shifting, mut remainder) = (numerator, 0u64);
    for _ in 0..64 {
        let overflowed = remainder >> 63 != 0;
        remainder = remainder << 1 | shifting >> 63;
        shifting <<= 1;
        if overflowed || remainder >= divisor {
            remainder = remainder.wrapping_sub(divisor);
            shifting |= 1;
        }
    }
    (shifting, remainder)
}

/// `numerator / divisor` for signed numbers, rounded toward zero as Rust's `/` is.
pub fn divide_signed(numerator: i64, divisor: i64) -> i64 {
    let quotient = divide(numerator.unsigned_abs(), divisor.unsigned_abs()).0 as i64;
    if (numerator < 0) != (divisor < 0) { quotient.wrapping_neg() } else { quotient }
}

#[cfg(target_arch = "mips")]
#[unsafe(no_mangle)]
extern "C" fn __udivdi3(numerator: u64, divisor: u64) -> u64 {
    divide(numerator, divisor).0
}

#[cfg(target_arch = "mips")]
#[unsafe(no_mangle)]
extern "C" fn __umoddi3(numerator: u64, divisor: u64) -> u64 {
    divide(numerator, divisor).1
}

#[cfg(target_arch = "mips")]
#[unsafe(no_mangle)]
extern "C" fn __divdi3(numerator: i64, divisor: i64) -> i64 {
    divide_signed(numerator, divisor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges_agree_with_the_hardware() {
        let edges = [0, 1, 2, 3, 9, 10, 1_000, 1_000_000, u32::MAX as u64, 1 << 32, (1 << 32) + 1];
        let edges = edges.into_iter().chain([u64::MAX, u64::MAX - 1, 1 << 63, i64::MAX as u64]);
        let edges: Vec<u64> = edges.collect();
        for &n in &edges {
            for &d in edges.iter().filter(|&&d| d != 0) {
                assert_eq!(divide(n, d), (n / d, n % d), "{n} / {d}");
                let (n, d) = (n as i64, d as i64);
                assert_eq!(divide_signed(n, d), n.wrapping_div(d), "{n} / {d} signed");
            }
        }
    }

    #[test]
    fn a_zero_divisor_is_no_panic() {
        assert_eq!(divide(7, 0), (u64::MAX, 7));
        assert_eq!(divide(1 << 40, 0), (u64::MAX, 1 << 40));
    }

    proptest! {
        #[test]
        fn unsigned_agrees_with_std(n: u64, d in 1u64..) {
            prop_assert_eq!(divide(n, d), (n / d, n % d));
        }

        #[test]
        fn small_divisors_agree_with_std(n: u64, d in 1u64..100_000) {
            prop_assert_eq!(divide(n, d), (n / d, n % d));
        }

        #[test]
        fn signed_agrees_with_std(n: i64, d in any::<i64>().prop_filter("not zero", |d| *d != 0)) {
            prop_assert_eq!(divide_signed(n, d), n.wrapping_div(d));
        }
    }
}
