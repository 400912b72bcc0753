//! Word loops over one limb written as `pulp` operations: `with_simd` is
//! inlined into a function compiled for the CPU `pulp::Arch` detects
//! (AVX-512 / AVX2), so plain 64-bit lane code vectorises without `unsafe`.
//!
//! Reductions by primes `q < 2^50` estimate their quotient in `f64` and
//! correct it once, so no 128-bit product is needed (see [`ReduceLimb`]).

use super::modulus::{Modulus, Shoup};

/// Maps `r` in `(-q, 2q)` (as a wrapped `u64`) into `[0, q)`, branch-free.
#[inline(always)]
pub(crate) fn fix(r: u64, q: u64) -> u64 {
    let r = r.wrapping_add(q & (((r as i64) >> 63) as u64));
    r - (q & 0u64.wrapping_sub(u64::from(r >= q)))
}

/// `round(v)` for `0 <= v < 2^52` as a `u64`, by adding `2^52` (which
/// leaves the integer in the mantissa) and subtracting its bits: unlike
/// `v as u64` (saturating, which LLVM does not vectorise), this is two
/// lane-wise operations.
#[inline(always)]
pub(crate) fn round_small(v: f64) -> u64 {
    const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
    (v + MAGIC).to_bits() - MAGIC.to_bits()
}

/// `x mod q` for any `x < 2^64` and `2^20 <= q < 2^61`: the `f64` quotient
/// `x * (1/q) < 2^44` is within `2^-8` of `x / q` (53-bit mantissas), so
/// its rounding is off by at most one and [`fix`] corrects it.
#[inline(always)]
fn reduce_f64(x: u64, q: u64, inv_q: f64) -> u64 {
    let t = round_small(x as f64 * inv_q);
    fix(x.wrapping_sub(t.wrapping_mul(q)), q)
}

/// `a[i] = f(a[i], b[i])` over one limb as a `pulp` operation, so that a
/// branch-free `f` vectorises (outside `pulp` the crate is compiled for the
/// baseline x86-64, which has no 64-bit vector compare).
struct ZipLimb<'a, F> {
    a: &'a mut [u64],
    b: &'a [u64],
    f: F,
}

impl<F: Fn(u64, u64) -> u64> pulp::WithSimd for ZipLimb<'_, F> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for (x, &y) in self.a.iter_mut().zip(self.b) {
            *x = (self.f)(*x, y);
        }
    }
}

/// `a += b mod q` over one limb (vectorised).
pub(crate) fn add_assign_limb(m: &Modulus, a: &mut [u64], b: &[u64]) {
    let m = *m;
    super::simd::arch().dispatch(ZipLimb {
        a,
        b,
        f: |x, y| m.add(x, y),
    });
}

/// `a -= b mod q` over one limb (vectorised).
pub(crate) fn sub_assign_limb(m: &Modulus, a: &mut [u64], b: &[u64]) {
    let m = *m;
    super::simd::arch().dispatch(ZipLimb {
        a,
        b,
        f: |x, y| m.sub(x, y),
    });
}

/// `a = a - b + c mod q` over one limb (vectorised).
pub(crate) fn sub_add_limb(m: &Modulus, a: &mut [u64], b: &[u64], c: &[u64]) {
    struct SubAdd<'a> {
        m: Modulus,
        a: &'a mut [u64],
        b: &'a [u64],
        c: &'a [u64],
    }
    impl pulp::WithSimd for SubAdd<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) {
            let m = self.m;
            for ((x, &y), &z) in self.a.iter_mut().zip(self.b).zip(self.c) {
                *x = m.add(m.sub(*x, y), z);
            }
        }
    }
    super::simd::arch().dispatch(SubAdd { m: *m, a, b, c });
}

/// `out = x mod q` for one limb (raising a digit to another prime).
pub(crate) struct ReduceLimb<'a> {
    q: u64,
    inv_q: f64,
    x: &'a [u64],
    out: &'a mut [u64],
}

impl<'a> ReduceLimb<'a> {
    pub(crate) fn new(m: &Modulus, x: &'a [u64], out: &'a mut [u64]) -> ReduceLimb<'a> {
        ReduceLimb {
            q: m.value(),
            inv_q: 1.0 / m.value() as f64,
            x,
            out,
        }
    }
}

impl pulp::WithSimd for ReduceLimb<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let (q, inv_q) = (self.q, self.inv_q);
        for (o, &x) in self.out.iter_mut().zip(self.x) {
            *o = reduce_f64(x, q, inv_q);
        }
    }
}

/// Constants for `c / P mod q` with `c` the centred value of `y mod P` (one
/// special prime): `(y - [y > P/2] P) P^-1 = y P^-1 - [y > P/2] mod q`.
pub(crate) struct CentredDiv {
    m: Modulus,
    /// `floor(P / 2)`.
    half: u64,
    /// `P^-1 mod q`.
    w: u64,
    /// `1 / q` and `w / q` as `f64` (the path for `q < 2^50`).
    inv_q: f64,
    w_q: f64,
    /// `P^-1 2^64 mod q` and the Montgomery constants (the path for wider
    /// primes).
    w_mont: u64,
    mont: Mont,
}

impl CentredDiv {
    pub(crate) fn new(m: &Modulus, p: u64, w: Shoup) -> CentredDiv {
        let q = m.value() as f64;
        CentredDiv {
            m: *m,
            half: p / 2,
            w: w.w,
            inv_q: 1.0 / q,
            w_q: w.w as f64 / q,
            w_mont: m.mul(w.w, m.reduce_u128(1u128 << 64)),
            mont: Mont::new(m.value()),
        }
    }
}

/// One limb of the single-special-prime mod-down as a `pulp` operation
/// (inlined into code compiled for the detected CPU, so the loop
/// vectorises): `out = centred(y) / P mod q`.
///
/// For `q < 2^50` the quotients are estimated in `f64` and corrected once
/// (plain 64-bit lanes, no 128-bit product): `y < 2^61` has `y / q` within
/// `2^-31` of its `f64` estimate, and `r w / q` for `r, w < q < 2^50` within
/// `2^-2`, so each truncated estimate is off by at most one and one
/// conditional addition or subtraction of `q` fixes it. Larger primes take
/// one Montgomery reduction of `y * P^-1 2^64` (see [`MontInnerProduct`]).
pub(crate) struct CentredDivStep<'a> {
    pub(crate) k: &'a CentredDiv,
    pub(crate) y: &'a [u64],
    pub(crate) out: &'a mut [u64],
}

impl pulp::WithSimd for CentredDivStep<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let k = self.k;
        let q = k.m.value();
        if q < 1 << 50 {
            for (o, &y) in self.out.iter_mut().zip(self.y) {
                let r = reduce_f64(y, q, k.inv_q);
                let t = round_small(r as f64 * k.w_q);
                let c = fix(r.wrapping_mul(k.w).wrapping_sub(t.wrapping_mul(q)), q);
                *o = k.m.sub(c, u64::from(y > k.half));
            }
        } else {
            // y P^-1 = REDC(y * P^-1 2^64), with y * w_mont < 2^64 q.
            for (o, &y) in self.out.iter_mut().zip(self.y) {
                let mut acc = Acc::default();
                acc.add(y & LOW, y >> 32, k.w_mont);
                *o = k.m.sub(acc.reduce(k.mont), u64::from(y > k.half));
            }
        }
    }
}

/// The key switch's inner product over one limb, `o0 = sum_t x_t b_t`,
/// `o1 = sum_t x_t a_t` times `2^-64 mod q` (the keys `b_t, a_t` carry the
/// Montgomery radix), in plain 64-bit lanes:
///
/// - each product `x k` is split in 32-bit halves, `xl kl + (xl kh + xh kl)
///   2^32 + xh kh 2^64`, and the parts are summed in four 64-bit
///   accumulators, each growing by less than `q + 2^32` per term (room for
///   15 terms with a 60-bit prime; chunks are kept to [`MAX_FIXED_TERMS`]);
/// - the sum `T < terms q^2` is assembled into two words and Montgomery-
///   reduced once: `m = T mod 2^64 * (-q^-1)`, `(T + m q) / 2^64 < 2q`, one
///   conditional subtraction. That needs `terms * q < 2^64`; longer sums
///   are split in chunks whose results are added modulo q.
///
/// Chunks of up to [`MAX_FIXED_TERMS`] terms run a loop specialised to
/// their length, so the accumulators stay in registers.
pub(crate) struct MontInnerProduct<'a> {
    mont: Mont,
    /// Terms per Montgomery reduction.
    chunk: usize,
    terms: &'a [[&'a [u64]; 3]],
    o0: &'a mut [u64],
    o1: &'a mut [u64],
}

/// Longest chunk with a specialised loop (longer chunks are split).
const MAX_FIXED_TERMS: usize = 4;

impl<'a> MontInnerProduct<'a> {
    /// `terms[t] = [x_t, b_t, a_t]`, every slice as long as the outputs.
    pub(crate) fn new(
        m: &Modulus,
        terms: &'a [[&'a [u64]; 3]],
        o0: &'a mut [u64],
        o1: &'a mut [u64],
    ) -> MontInnerProduct<'a> {
        let q = m.value();
        MontInnerProduct {
            mont: Mont::new(q),
            chunk: (u64::MAX / (q + (1 << 32))).clamp(1, MAX_FIXED_TERMS as u64) as usize,
            terms,
            o0,
            o1,
        }
    }
}

/// Constants of the Montgomery reduction modulo `q`.
#[derive(Clone, Copy)]
struct Mont {
    q: u64,
    ql: u64,
    qh: u64,
    /// `-q^-1 mod 2^64`.
    q_neg_inv: u64,
}

impl Mont {
    fn new(q: u64) -> Mont {
        // Newton iteration for q^-1 mod 2^64 (q odd): each step doubles the
        // number of correct low bits, starting from 3 (q * q = 1 mod 8).
        let mut inv = q;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(q.wrapping_mul(inv)));
        }
        Mont {
            q,
            ql: q & LOW,
            qh: q >> 32,
            q_neg_inv: inv.wrapping_neg(),
        }
    }
}

const LOW: u64 = 0xffff_ffff;

/// The four partial-product accumulators of one coefficient.
#[derive(Clone, Copy, Default)]
struct Acc {
    lo: u64,
    m1: u64,
    m2: u64,
    hi: u64,
}

impl Acc {
    #[inline(always)]
    fn add(&mut self, xl: u64, xh: u64, k: u64) {
        let (kl, kh) = (k & LOW, k >> 32);
        let ll = xl * kl;
        self.lo += ll & LOW;
        self.m1 += xl * kh;
        self.m2 += xh * kl + (ll >> 32);
        self.hi += xh * kh;
    }

    /// `T 2^-64 mod q` for the accumulated `T < q 2^64`.
    #[inline(always)]
    fn reduce(self, c: Mont) -> u64 {
        // T = hi 2^64 + (m1 + m2) 2^32 + lo as (th, tl).
        let s = (self.lo >> 32) + (self.m1 & LOW) + (self.m2 & LOW);
        let tl = (self.lo & LOW) | (s << 32);
        let th = self.hi + (self.m1 >> 32) + (self.m2 >> 32) + (s >> 32);
        // (T + m q) / 2^64 with m = tl (-q^-1): the low words cancel, with a
        // carry unless tl = 0.
        let m = tl.wrapping_mul(c.q_neg_inv);
        let (ml, mh) = (m & LOW, m >> 32);
        let (lh, hl) = (ml * c.qh, mh * c.ql);
        let mid = ((ml * c.ql) >> 32) + (lh & LOW) + (hl & LOW);
        let mq_hi = mh * c.qh + (lh >> 32) + (hl >> 32) + (mid >> 32);
        let r = th + mq_hi + u64::from(tl != 0);
        r - (c.q & 0u64.wrapping_sub(u64::from(r >= c.q)))
    }
}

/// One chunk of `D` terms over the whole limb; `first`: write, else add.
#[inline(always)]
fn ip_chunk<const D: usize>(
    c: Mont,
    terms: &[[&[u64]; 3]],
    o0: &mut [u64],
    o1: &mut [u64],
    first: bool,
) {
    let n = o0.len();
    let o1 = &mut o1[..n];
    let t: [[&[u64]; 3]; D] =
        std::array::from_fn(|d| [&terms[d][0][..n], &terms[d][1][..n], &terms[d][2][..n]]);
    for i in 0..n {
        let mut a0 = Acc::default();
        let mut a1 = Acc::default();
        for td in &t {
            let x = td[0][i];
            let (xl, xh) = (x & LOW, x >> 32);
            a0.add(xl, xh, td[1][i]);
            a1.add(xl, xh, td[2][i]);
        }
        let (r0, r1) = (a0.reduce(c), a1.reduce(c));
        if first {
            o0[i] = r0;
            o1[i] = r1;
        } else {
            o0[i] = fix(o0[i] + r0, c.q);
            o1[i] = fix(o1[i] + r1, c.q);
        }
    }
}

impl pulp::WithSimd for MontInnerProduct<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let c = self.mont;
        for (k, chunk) in self.terms.chunks(self.chunk).enumerate() {
            let (o0, o1, first) = (&mut *self.o0, &mut *self.o1, k == 0);
            match chunk.len() {
                1 => ip_chunk::<1>(c, chunk, o0, o1, first),
                2 => ip_chunk::<2>(c, chunk, o0, o1, first),
                3 => ip_chunk::<3>(c, chunk, o0, o1, first),
                // chunks are at most MAX_FIXED_TERMS = 4 long
                _ => ip_chunk::<MAX_FIXED_TERMS>(c, chunk, o0, o1, first),
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pulp::simd_type! {
    /// AVX-512 with the 52-bit integer multiply-add extension (IFMA).
    pub(crate) struct V4Ifma {
        pub sse: "sse",
        pub sse2: "sse2",
        pub fxsr: "fxsr",
        pub sse3: "sse3",
        pub ssse3: "ssse3",
        pub sse4_1: "sse4.1",
        pub sse4_2: "sse4.2",
        pub popcnt: "popcnt",
        pub avx: "avx",
        pub avx2: "avx2",
        pub bmi1: "bmi1",
        pub bmi2: "bmi2",
        pub fma: "fma",
        pub lzcnt: "lzcnt",
        pub avx512f: "avx512f",
        pub avx512bw: "avx512bw",
        pub avx512cd: "avx512cd",
        pub avx512dq: "avx512dq",
        pub avx512vl: "avx512vl",
        pub avx512ifma: "avx512ifma",
    }
}

/// Terms per reduction of [`ifma_inner_product`]: the high accumulator
/// (plus the low one's carries) must stay below `2^52`, and each term adds
/// less than `2^48` for `q < 2^50`.
#[cfg(target_arch = "x86_64")]
const IFMA_CHUNK: usize = 15;

/// Vector constants of [`ifma_inner_product`] for one prime.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct IfmaConsts {
    simd: V4Ifma,
    q: core::arch::x86_64::__m512i,
    /// `2^52 mod q` and its 52-bit Shoup companion.
    c: core::arch::x86_64::__m512i,
    c_s: core::arch::x86_64::__m512i,
    mask: core::arch::x86_64::__m512i,
    zero: core::arch::x86_64::__m512i,
    inv_q: core::arch::x86_64::__m512d,
    magic: core::arch::x86_64::__m512d,
    magic_bits: core::arch::x86_64::__m512i,
}

#[cfg(target_arch = "x86_64")]
impl IfmaConsts {
    #[inline(always)]
    fn new(simd: V4Ifma, m: &Modulus) -> IfmaConsts {
        const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
        let q = m.value();
        let c = m.reduce(1 << 52);
        let c_s = ((u128::from(c) << 52) / u128::from(q)) as u64;
        let f = simd.avx512f;
        let splat = |x: u64| f._mm512_set1_epi64(x as i64);
        IfmaConsts {
            simd,
            q: splat(q),
            c: splat(c),
            c_s: splat(c_s),
            mask: splat((1 << 52) - 1),
            zero: f._mm512_setzero_si512(),
            inv_q: f._mm512_set1_pd(1.0 / q as f64),
            magic: f._mm512_set1_pd(MAGIC),
            magic_bits: splat(MAGIC.to_bits()),
        }
    }

    /// `min(x, x - q)`: maps `[0, 2q)` to `[0, q)`.
    #[inline(always)]
    fn sub_q(self, x: core::arch::x86_64::__m512i) -> core::arch::x86_64::__m512i {
        let f = self.simd.avx512f;
        f._mm512_min_epu64(x, f._mm512_sub_epi64(x, self.q))
    }

    /// `(h 2^52 + l) mod q` for `h + l / 2^52 < 2^52`.
    #[inline(always)]
    fn reduce(
        self,
        l: core::arch::x86_64::__m512i,
        h: core::arch::x86_64::__m512i,
    ) -> core::arch::x86_64::__m512i {
        let (f, dq, ifma) = (self.simd.avx512f, self.simd.avx512dq, self.simd.avx512ifma);
        let lo = f._mm512_and_si512(l, self.mask);
        let hi = f._mm512_add_epi64(h, f._mm512_srli_epi64::<52>(l));
        // hi 2^52 mod q in [0, 2q): hi c - floor(hi c_s / 2^52) q, mod 2^52.
        let qt = ifma._mm512_madd52hi_epu64(self.zero, hi, self.c_s);
        let r = f._mm512_sub_epi64(
            ifma._mm512_madd52lo_epu64(self.zero, hi, self.c),
            ifma._mm512_madd52lo_epu64(self.zero, qt, self.q),
        );
        let v = f._mm512_add_epi64(f._mm512_and_si512(r, self.mask), lo);
        // v < 2^53: quotient rounded in f64, off by at most one.
        let vf = dq._mm512_cvtepu64_pd(v);
        let t = f._mm512_sub_epi64(
            f._mm512_castpd_si512(f._mm512_add_pd(f._mm512_mul_pd(vf, self.inv_q), self.magic)),
            self.magic_bits,
        );
        let r = f._mm512_add_epi64(
            f._mm512_sub_epi64(v, dq._mm512_mullo_epi64(t, self.q)),
            self.q,
        );
        self.sub_q(self.sub_q(r))
    }
}

/// The key switch's inner product over one limb for `q < 2^50` (keys in
/// plain form), `o0 = sum_t x_t b_t`, `o1 = sum_t x_t a_t mod q`, with the
/// IFMA extension: every product adds its low and high 52 bits to two
/// accumulators (`madd52lo` / `madd52hi`), and each output is reduced once,
/// `T = hi 2^52 + lo`: `hi 2^52 mod q` by Shoup's method in 52-bit words,
/// then the sum (below `2^53`) by an `f64` quotient. Returns `false` (and
/// writes nothing) when the CPU lacks IFMA, `MOFHEI_SIMD` asks for less than AVX-512, or
/// `q >= 2^50`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn ifma_inner_product(
    m: &Modulus,
    terms: &[[&[u64]; 3]],
    o0: &mut [u64],
    o1: &mut [u64],
) -> bool {
    if super::simd::level() < super::simd::SimdLevel::Avx512 {
        return false;
    }
    let Some(simd) = V4Ifma::try_new() else {
        return false;
    };
    if m.value() >= 1 << 50 || terms.is_empty() {
        return false;
    }
    simd.vectorize(
        #[inline(always)]
        move || ifma_inner_product_body(IfmaConsts::new(simd, m), m, terms, o0, o1),
    );
    true
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ifma_inner_product_body(
    k: IfmaConsts,
    m: &Modulus,
    terms: &[[&[u64]; 3]],
    o0: &mut [u64],
    o1: &mut [u64],
) {
    use core::arch::x86_64::__m512i;
    let (f, ifma) = (k.simd.avx512f, k.simd.avx512ifma);
    let n = o0.len();
    let full = n / 8;
    for (c, chunk) in terms.chunks(IFMA_CHUNK).enumerate() {
        let arrays: Vec<[&[[u64; 8]]; 3]> = chunk
            .iter()
            .map(|t| {
                [
                    pulp::as_arrays::<8, u64>(t[0]).0,
                    pulp::as_arrays::<8, u64>(t[1]).0,
                    pulp::as_arrays::<8, u64>(t[2]).0,
                ]
            })
            .collect();
        let o0a = pulp::as_arrays_mut::<8, u64>(o0).0;
        let o1a = pulp::as_arrays_mut::<8, u64>(&mut o1[..n]).0;
        for (i, (d0, d1)) in o0a.iter_mut().zip(o1a.iter_mut()).enumerate() {
            let (mut l0, mut h0, mut l1, mut h1) = (k.zero, k.zero, k.zero, k.zero);
            for t in &arrays {
                let x: __m512i = pulp::cast(t[0][i]);
                let b: __m512i = pulp::cast(t[1][i]);
                let a: __m512i = pulp::cast(t[2][i]);
                l0 = ifma._mm512_madd52lo_epu64(l0, x, b);
                h0 = ifma._mm512_madd52hi_epu64(h0, x, b);
                l1 = ifma._mm512_madd52lo_epu64(l1, x, a);
                h1 = ifma._mm512_madd52hi_epu64(h1, x, a);
            }
            let (r0, r1) = (k.reduce(l0, h0), k.reduce(l1, h1));
            if c == 0 {
                *d0 = pulp::cast(r0);
                *d1 = pulp::cast(r1);
            } else {
                *d0 = pulp::cast(k.sub_q(f._mm512_add_epi64(pulp::cast(*d0), r0)));
                *d1 = pulp::cast(k.sub_q(f._mm512_add_epi64(pulp::cast(*d1), r1)));
            }
        }
        // Tail (n not a multiple of 8): 128-bit sums.
        for i in full * 8..n {
            let (mut s0, mut s1) = (0u128, 0u128);
            for t in chunk {
                s0 += u128::from(t[0][i]) * u128::from(t[1][i]);
                s1 += u128::from(t[0][i]) * u128::from(t[2][i]);
            }
            let (r0, r1) = (m.reduce_u128(s0), m.reduce_u128(s1));
            if c == 0 {
                o0[i] = r0;
                o1[i] = r1;
            } else {
                o0[i] = m.add(o0[i], r0);
                o1[i] = m.add(o1[i], r1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::he::ckks::simd::SimdLevel;
    use proptest::prelude::*;

    const PRIMES: [u64; 4] = [
        1_152_921_504_606_748_673, // 60 bits
        1_099_510_054_913,         // 40 bits
        1_125_899_906_826_241,     // 50 bits
        1_048_609,                 // 21 bits
    ];

    fn modmul(a: u64, b: u64, q: u64) -> u64 {
        ((u128::from(a) * u128::from(b)) % u128::from(q)) as u64
    }

    proptest! {
        #[test]
        fn reduce_limb_matches_remainder(xs in proptest::collection::vec(any::<u64>(), 1..40)) {
            for q in PRIMES {
                let m = Modulus::new(q);
                for level in SimdLevel::available() {
                    let mut out = vec![0; xs.len()];
                    level.arch().dispatch(ReduceLimb::new(&m, &xs, &mut out));
                    for (o, x) in out.iter().zip(&xs) {
                        prop_assert_eq!(*o, x % q);
                    }
                }
            }
        }

        #[test]
        fn centred_div_matches_reference(ys in proptest::collection::vec(any::<u64>(), 1..40)) {
            let p = PRIMES[0] - 2 * 65_536; // any odd P works here
            for q in PRIMES[1..].iter().copied().chain([1_152_921_504_606_584_833]) {
                let m = Modulus::new(q);
                let w = m.shoup(m.inv(m.reduce(p)));
                let ys: Vec<u64> = ys.iter().map(|y| y % p).collect();
                let k = CentredDiv::new(&m, p, w);
                for level in SimdLevel::available() {
                    let mut out = vec![0; ys.len()];
                    level.arch().dispatch(CentredDivStep { k: &k, y: &ys, out: &mut out });
                    for (o, &y) in out.iter().zip(&ys) {
                        let c = if y > p / 2 { i128::from(y) - i128::from(p) } else { i128::from(y) };
                        let c = c.rem_euclid(i128::from(q)) as u64;
                        prop_assert_eq!(*o, modmul(c, w.w, q));
                    }
                }
            }
        }

        #[test]
        fn montgomery_inner_product_matches_reference(
            seed in any::<u64>(),
            terms in 1usize..40,
            len in 1usize..24,
        ) {
            for q in PRIMES {
                let m = Modulus::new(q);
                let mut state = seed;
                let mut next = || {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    (state >> 1) % q
                };
                let data: Vec<[Vec<u64>; 3]> = (0..terms)
                    .map(|_| std::array::from_fn(|_| (0..len).map(|_| next()).collect()))
                    .collect();
                let refs: Vec<[&[u64]; 3]> = data
                    .iter()
                    .map(|t| [&t[0][..], &t[1][..], &t[2][..]])
                    .collect();
                let (mut o0, mut o1) = (vec![0; len], vec![0; len]);
                for level in SimdLevel::available() {
                    let (mut p0, mut p1) = (vec![0; len], vec![0; len]);
                    level.arch().dispatch(MontInnerProduct::new(&m, &refs, &mut p0, &mut p1));
                    if level > SimdLevel::Scalar {
                        prop_assert_eq!(&p0, &o0);
                        prop_assert_eq!(&p1, &o1);
                    }
                    (o0, o1) = (p0, p1);
                }
                let r_inv = m.inv(m.reduce_u128(1u128 << 64));
                for i in 0..len {
                    let (mut s0, mut s1) = (0u64, 0u64);
                    for t in &data {
                        s0 = m.add(s0, modmul(t[0][i], t[1][i], q));
                        s1 = m.add(s1, modmul(t[0][i], t[2][i], q));
                    }
                    prop_assert_eq!(o0[i], modmul(s0, r_inv, q));
                    prop_assert_eq!(o1[i], modmul(s1, r_inv, q));
                }
                #[cfg(target_arch = "x86_64")]
                {
                    let (mut p0, mut p1) = (vec![0; len], vec![0; len]);
                    if ifma_inner_product(&m, &refs, &mut p0, &mut p1) {
                        for i in 0..len {
                            prop_assert_eq!(modmul(p0[i], r_inv, q), o0[i]);
                            prop_assert_eq!(modmul(p1[i], r_inv, q), o1[i]);
                        }
                    } else {
                        prop_assert!(q >= 1 << 50 || V4Ifma::try_new().is_none());
                    }
                }
            }
        }
    }
}
