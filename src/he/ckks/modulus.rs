//! Word-size modular arithmetic for one RNS prime: Barrett reduction of 64-
//! and 128-bit values, Shoup multiplication by precomputed constants.
//!
//! Every prime is below 2^61, so `3q < 2^64` and lazily accumulated sums of
//! products fit in a `u128` for up to 2^6 terms of full size (more when the
//! caller reduces in chunks, see [`Modulus::MAX_LAZY_TERMS`]).

/// A prime modulus with its Barrett constant `floor(2^128 / q)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Modulus {
    q: u64,
    r_hi: u64,
    r_lo: u64,
}

/// A constant `w` with its Shoup companion `floor(w * 2^64 / q)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shoup {
    pub(crate) w: u64,
    pub(crate) ws: u64,
}

impl Modulus {
    /// Number of products `< q^2` that can be summed in a `u128` before a
    /// reduction is needed (q < 2^61 gives products < 2^122).
    pub(crate) const MAX_LAZY_TERMS: usize = 32;

    /// The modulus `q` (odd, `2 < q < 2^61`).
    pub(crate) fn new(q: u64) -> Modulus {
        // floor((2^128 - 1) / q) == floor(2^128 / q) because q is odd.
        let r = u128::MAX / u128::from(q);
        Modulus {
            q,
            r_hi: (r >> 64) as u64,
            r_lo: r as u64,
        }
    }

    /// The value of the modulus.
    #[inline(always)]
    pub(crate) fn value(&self) -> u64 {
        self.q
    }

    /// `x mod q` for any `u64`.
    #[inline(always)]
    pub(crate) fn reduce(&self, x: u64) -> u64 {
        let qh = ((u128::from(x) * u128::from(self.r_hi)) >> 64) as u64;
        let r = x.wrapping_sub(qh.wrapping_mul(self.q));
        if r >= self.q { r - self.q } else { r }
    }

    /// `x mod q` for any `u128` (exact Barrett quotient, one correction).
    #[inline(always)]
    pub(crate) fn reduce_u128(&self, x: u128) -> u64 {
        let x0 = x as u64;
        let x1 = (x >> 64) as u64;
        let hi00 = ((u128::from(x0) * u128::from(self.r_lo)) >> 64) as u64;
        let s1 = u128::from(x0) * u128::from(self.r_hi) + u128::from(hi00);
        let s2 = u128::from(x1) * u128::from(self.r_lo) + u128::from(s1 as u64);
        let quot = x1
            .wrapping_mul(self.r_hi)
            .wrapping_add((s1 >> 64) as u64)
            .wrapping_add((s2 >> 64) as u64);
        let r = x0.wrapping_sub(quot.wrapping_mul(self.q));
        if r >= self.q { r - self.q } else { r }
    }

    /// `a * b mod q` for `a, b < 2^64`.
    #[inline(always)]
    pub(crate) fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(u128::from(a) * u128::from(b))
    }

    /// `a + b mod q` for `a, b < q`.
    #[inline(always)]
    pub(crate) fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        if s >= self.q { s - self.q } else { s }
    }

    /// `a - b mod q` for `a, b < q`.
    #[inline(always)]
    pub(crate) fn sub(&self, a: u64, b: u64) -> u64 {
        let d = a.wrapping_sub(b);
        d.wrapping_add(self.q & 0u64.wrapping_sub(u64::from(a < b)))
    }

    /// `-a mod q` for `a < q`.
    #[inline(always)]
    pub(crate) fn neg(&self, a: u64) -> u64 {
        if a == 0 { 0 } else { self.q - a }
    }

    /// A signed integer reduced into `[0, q)`.
    #[inline(always)]
    pub(crate) fn reduce_i64(&self, x: i64) -> u64 {
        // Branch-free (signs of errors and messages are random): negate by
        // subtracting from q under a mask, then map q to 0.
        let r = self.reduce(x.unsigned_abs());
        let neg = 0u64.wrapping_sub(u64::from(x < 0));
        let v = (r & !neg) | (self.q.wrapping_sub(r) & neg);
        v & 0u64.wrapping_sub(u64::from(v != self.q))
    }

    /// `w` with its Shoup companion, for repeated multiplication by `w < q`.
    pub(crate) fn shoup(&self, w: u64) -> Shoup {
        Shoup {
            w,
            ws: ((u128::from(w) << 64) / u128::from(self.q)) as u64,
        }
    }

    /// `a * w mod q` by Shoup's method, for any `a < 2^64`.
    #[inline(always)]
    pub(crate) fn mul_shoup(&self, a: u64, w: Shoup) -> u64 {
        let qh = ((u128::from(a) * u128::from(w.ws)) >> 64) as u64;
        let r = a.wrapping_mul(w.w).wrapping_sub(qh.wrapping_mul(self.q));
        if r >= self.q { r - self.q } else { r }
    }

    /// `a^e mod q`.
    pub(crate) fn pow(&self, mut a: u64, mut e: u64) -> u64 {
        let mut r = 1 % self.q;
        a = self.reduce(a);
        while e > 0 {
            if e & 1 == 1 {
                r = self.mul(r, a);
            }
            a = self.mul(a, a);
            e >>= 1;
        }
        r
    }

    /// `a^-1 mod q` (q prime, `a` not a multiple of q).
    pub(crate) fn inv(&self, a: u64) -> u64 {
        self.pow(a, self.q - 2)
    }

    /// The residue of a finite, integral `f64` (any magnitude) modulo q.
    pub(crate) fn reduce_f64_integer(&self, x: f64) -> u64 {
        if x.abs() < 9.2e18 {
            return self.reduce_i64(x as i64);
        }
        // x = m * 2^e with |m| < 2^53, e > 0 for these magnitudes.
        let bits = x.abs().to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64 - 1075;
        let mant = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
        let r = if exp >= 0 {
            self.mul(self.reduce(mant), self.pow(2, exp as u64))
        } else {
            self.reduce(mant >> (-exp).min(63))
        };
        if x < 0.0 { self.neg(r) } else { r }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const Q60: u64 = 1_152_921_504_606_748_673; // largest 60-bit prime = 1 mod 2^15
    const Q40: u64 = 1_099_510_054_913;

    #[test]
    fn test_moduli_are_prime() {
        use crate::he::primes::is_prime;
        assert!(is_prime(Q60));
        assert!(is_prime(Q40));
        assert!(!is_prime(Q60 - 2));
    }

    proptest! {
        #[test]
        fn barrett_matches_u128(a in any::<u64>(), b in any::<u64>(), x in any::<u128>()) {
            for q in [Q60, Q40, 65537u64] {
                let m = Modulus::new(q);
                prop_assert_eq!(m.reduce(a), a % q);
                prop_assert_eq!(m.reduce_u128(x), (x % u128::from(q)) as u64);
                prop_assert_eq!(m.mul(a, b), ((u128::from(a) * u128::from(b)) % u128::from(q)) as u64);
                let w = b % q;
                prop_assert_eq!(m.mul_shoup(a, m.shoup(w)), ((u128::from(a) * u128::from(w)) % u128::from(q)) as u64);
                let v = a as i64;
                prop_assert_eq!(m.reduce_i64(v), (i128::from(v).rem_euclid(i128::from(q))) as u64);
            }
        }
    }

    #[test]
    fn big_floats_reduce() {
        let m = Modulus::new(Q40);
        let x = 2f64.powi(80) * 3.0;
        let expect = m.mul(m.pow(2, 80), 3);
        assert_eq!(m.reduce_f64_integer(x), expect);
        assert_eq!(m.reduce_f64_integer(-x), m.neg(expect));
        assert_eq!(m.reduce_f64_integer(-5.0), Q40 - 5);
        assert_eq!(m.inv(3) * 3 % Q40, 1);
    }
}
