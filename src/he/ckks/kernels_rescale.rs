//! The SIMD kernel of a rescale step for primes below `2^32`.

use super::modulus::Modulus;

/// Constants of a rescale step modulo `q_j < 2^32` when the dropped prime
/// `q_l < 2^32` too: every product then fits in 64 bits, so the loops use
/// plain 64-bit lanes (Shoup's method with 32-bit companions) and vectorise.
pub(super) struct Rescale32 {
    pub(super) q: u64,
    /// `floor(2^32 / q)`, to reduce values below `2^32`.
    pub(super) one_s: u64,
    /// `q_l mod q`.
    pub(super) ql_j: u64,
    /// `floor(q_l / 2)`.
    pub(super) half: u64,
    /// `q_l^-1 mod q` and `floor(inv * 2^32 / q)`.
    pub(super) inv: u64,
    pub(super) inv_s: u64,
}

impl Rescale32 {
    pub(super) fn new(m: &Modulus, ql: u64, inv: u64) -> Rescale32 {
        let q = m.value();
        Rescale32 {
            q,
            one_s: (1u64 << 32) / q,
            ql_j: m.reduce(ql),
            half: ql / 2,
            inv,
            inv_s: (inv << 32) / q,
        }
    }

    /// `a * w mod q` for `a, w < 2^32`, `ws = floor(w * 2^32 / q)`.
    #[inline(always)]
    pub(super) fn mul(&self, a: u64, w: u64, ws: u64) -> u64 {
        let qh = (a * ws) >> 32;
        let r = (a * w).wrapping_sub(qh * self.q);
        r - (self.q & 0u64.wrapping_sub(u64::from(r >= self.q)))
    }

    /// `a - b mod q` for `a, b < q`.
    #[inline(always)]
    pub(super) fn sub(&self, a: u64, b: u64) -> u64 {
        a.wrapping_sub(b)
            .wrapping_add(self.q & 0u64.wrapping_sub(u64::from(a < b)))
    }
}

/// One loop of a rescale step as a `pulp` operation (see [`MacBlock`](super::kernels_mac::MacBlock)):
/// `first`: `a = centred(b) mod q` from the dropped limb `b`;
/// otherwise `a = (a - b) * q_l^-1 mod q`.
pub(super) struct RescaleStep<'r> {
    pub(super) k: &'r Rescale32,
    pub(super) first: bool,
    pub(super) a: &'r mut [u64],
    pub(super) b: &'r [u64],
}

impl pulp::WithSimd for RescaleStep<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let k = self.k;
        if self.first {
            for (o, &r) in self.a.iter_mut().zip(self.b) {
                let rj = k.mul(r, 1, k.one_s);
                let shift = k.ql_j & 0u64.wrapping_sub(u64::from(r > k.half));
                *o = k.sub(rj, shift);
            }
        } else {
            for (x, &y) in self.a.iter_mut().zip(self.b) {
                *x = k.mul(k.sub(*x, y), k.inv, k.inv_s);
            }
        }
    }
}
