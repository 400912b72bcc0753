//! Primes for plaintext moduli: a deterministic 64-bit primality test and the
//! search for the smallest prime `t = 1 mod 2N` above a bound (what SIMD
//! batching in BFV needs, and what the quantiser's accumulator bound turns
//! into a usable plaintext modulus).

/// The smallest prime `t >= min` with `t = 1 mod 2 * degree` (a plaintext
/// modulus that allows SIMD batching at this degree), if one exists below 2^61.
pub fn smallest_simd_plaintext_modulus(min: u64, degree: usize) -> Option<u64> {
    if degree == 0 || !degree.is_power_of_two() {
        return None;
    }
    let step = 2 * degree as u64;
    // First candidate >= max(min, 3) of the form k * step + 1.
    let lo = min.max(3);
    let k = (lo - 1).div_ceil(step);
    let mut t = k.checked_mul(step)?.checked_add(1)?;
    while t < (1u64 << 61) {
        if is_prime(t) {
            return Some(t);
        }
        t = t.checked_add(step)?;
    }
    None
}

/// Deterministic Miller-Rabin for 64-bit integers.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    const SMALL: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    for p in SMALL {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let d0 = n - 1;
    let s = d0.trailing_zeros();
    let d = d0 >> s;
    let mul = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let pow = |mut b: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mul(r, b);
            }
            b = mul(b, b);
            e >>= 1;
        }
        r
    };
    'witness: for a in SMALL {
        let mut x = pow(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        let small: Vec<u64> = (0..60).filter(|&n| is_prime(n)).collect();
        assert_eq!(
            small,
            vec![
                2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59
            ]
        );
        assert!(is_prime(65537));
        assert!(is_prime(0x7fffffd8001));
        assert!(!is_prime(65537 * 65537));
        assert!(!is_prime(3215031751)); // strong pseudoprime to bases 2, 3, 5, 7
    }

    #[test]
    fn simd_plaintext_modulus_search() {
        assert_eq!(smallest_simd_plaintext_modulus(2, 8), Some(17));
        assert_eq!(smallest_simd_plaintext_modulus(18, 8), Some(97));
        assert_eq!(smallest_simd_plaintext_modulus(60000, 8192), Some(65537));
        assert_eq!(smallest_simd_plaintext_modulus(65538, 8192), Some(114689));
        assert_eq!(smallest_simd_plaintext_modulus(5, 6), None);
    }
}
