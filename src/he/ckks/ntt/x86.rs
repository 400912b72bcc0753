//! [`Lanes`] over AVX2 and AVX-512 registers, through `pulp`'s safe
//! wrappers of the intrinsics (each wrapper needs the CPU-feature token the
//! dispatcher obtained at run time, so no `unsafe` is needed):
//!
//! - `Avx2x32` / `Avx512x32`: eight / sixteen 32-bit words (`q < 2^31`),
//!   the Shoup high product from two `vpmuludq` on even and odd lanes;
//! - `Avx2x64` / `Avx512x64`: four / eight 64-bit words, the 64x64-bit
//!   high product from four 32x32-bit products;
//! - `Ifma52`: eight 64-bit words with 52-bit Shoup companions for
//!   `q < 2^50`, the products from IFMA's `vpmadd52lo/hi`.
//!
//! Stages with half-blocks `t` shorter than a vector load two vectors and
//! permute them (`vpermd` within each, then 128-bit lane shuffles across
//! the pair) so that lane `l` of `x` and `y` holds the `l`-th butterfly.

use core::arch::x86_64::{__m256i, __m512i};

use pulp::x86::{V3, V4};

use super::lanes::Lanes;
use crate::he::ckks::kernels::V4Ifma;

/// The in-register permutations for the short stages, as 32-bit lane
/// indices (a 64-bit word is two 32-bit lanes), for `t = 1, 2, 4, 8`.
/// `U32S` 32-bit lanes per vector, `WORD` of them per word.
#[derive(Clone, Copy)]
struct PermTables<const U32S: usize> {
    /// Within one vector: its first butterflies' `x` inputs, then their
    /// `y` inputs.
    split: [[u32; U32S]; 4],
    join: [[u32; U32S]; 4],
    /// Lane `l` takes word `l / t`.
    spread: [[u32; U32S]; 4],
}

impl<const U32S: usize> PermTables<U32S> {
    fn new(word: usize) -> Self {
        let lanes = U32S / word;
        let mut p = PermTables {
            split: [[0; U32S]; 4],
            join: [[0; U32S]; 4],
            spread: [[0; U32S]; 4],
        };
        for lt in 0..4 {
            let t = 1usize << lt;
            if t >= lanes {
                continue;
            }
            let half = lanes / 2;
            for k in 0..lanes {
                let (kk, off) = if k < half { (k, 0) } else { (k - half, t) };
                let pos = (kk / t) * 2 * t + off + kk % t;
                for s in 0..word {
                    p.split[lt][k * word + s] = (pos * word + s) as u32;
                    p.join[lt][pos * word + s] = (k * word + s) as u32;
                    p.spread[lt][k * word + s] = ((k / t) * word + s) as u32;
                }
            }
        }
        p
    }
}

/// AVX2 permutation vectors.
#[derive(Clone, Copy)]
struct Perm256 {
    split: [__m256i; 4],
    join: [__m256i; 4],
    spread: [__m256i; 4],
}

impl Perm256 {
    #[inline(always)]
    fn new(word: usize) -> Perm256 {
        let p = PermTables::<8>::new(word);
        Perm256 {
            split: p.split.map(pulp::cast),
            join: p.join.map(pulp::cast),
            spread: p.spread.map(pulp::cast),
        }
    }

    #[inline(always)]
    fn split(&self, s: V3, t: usize, a: __m256i, b: __m256i) -> (__m256i, __m256i) {
        let i = self.split[t.trailing_zeros() as usize];
        let pa = s.avx2._mm256_permutevar8x32_epi32(a, i);
        let pb = s.avx2._mm256_permutevar8x32_epi32(b, i);
        (
            s.avx2._mm256_permute2x128_si256::<0x20>(pa, pb),
            s.avx2._mm256_permute2x128_si256::<0x31>(pa, pb),
        )
    }

    #[inline(always)]
    fn join(&self, s: V3, t: usize, x: __m256i, y: __m256i) -> (__m256i, __m256i) {
        let i = self.join[t.trailing_zeros() as usize];
        let pa = s.avx2._mm256_permute2x128_si256::<0x20>(x, y);
        let pb = s.avx2._mm256_permute2x128_si256::<0x31>(x, y);
        (
            s.avx2._mm256_permutevar8x32_epi32(pa, i),
            s.avx2._mm256_permutevar8x32_epi32(pb, i),
        )
    }

    #[inline(always)]
    fn spread(&self, s: V3, t: usize, v: __m256i) -> __m256i {
        s.avx2
            ._mm256_permutevar8x32_epi32(v, self.spread[t.trailing_zeros() as usize])
    }
}

/// AVX-512 permutation vectors.
#[derive(Clone, Copy)]
struct Perm512 {
    split: [__m512i; 4],
    join: [__m512i; 4],
    spread: [__m512i; 4],
}

impl Perm512 {
    #[inline(always)]
    fn new(word: usize) -> Perm512 {
        let p = PermTables::<16>::new(word);
        Perm512 {
            split: p.split.map(pulp::cast),
            join: p.join.map(pulp::cast),
            spread: p.spread.map(pulp::cast),
        }
    }

    #[inline(always)]
    fn split(&self, s: V4, t: usize, a: __m512i, b: __m512i) -> (__m512i, __m512i) {
        let i = self.split[t.trailing_zeros() as usize];
        let f = s.avx512f;
        let pa = f._mm512_permutexvar_epi32(i, a);
        let pb = f._mm512_permutexvar_epi32(i, b);
        (
            f._mm512_shuffle_i64x2::<0x44>(pa, pb),
            f._mm512_shuffle_i64x2::<0xEE>(pa, pb),
        )
    }

    #[inline(always)]
    fn join(&self, s: V4, t: usize, x: __m512i, y: __m512i) -> (__m512i, __m512i) {
        let i = self.join[t.trailing_zeros() as usize];
        let f = s.avx512f;
        let pa = f._mm512_shuffle_i64x2::<0x44>(x, y);
        let pb = f._mm512_shuffle_i64x2::<0xEE>(x, y);
        (
            f._mm512_permutexvar_epi32(i, pa),
            f._mm512_permutexvar_epi32(i, pb),
        )
    }

    #[inline(always)]
    fn spread(&self, s: V4, t: usize, v: __m512i) -> __m512i {
        s.avx512f
            ._mm512_permutexvar_epi32(self.spread[t.trailing_zeros() as usize], v)
    }
}

/// The high 64 bits of the 64x64-bit products, from four 32x32-bit ones.
#[inline(always)]
fn mulhi64_avx2(s: V3, a: __m256i, b: __m256i) -> __m256i {
    let x = s.avx2;
    let low = s.avx._mm256_set1_epi64x(0xffff_ffff);
    let (ah, bh) = (x._mm256_srli_epi64::<32>(a), x._mm256_srli_epi64::<32>(b));
    let ll = x._mm256_mul_epu32(a, b);
    let lh = x._mm256_mul_epu32(a, bh);
    let hl = x._mm256_mul_epu32(ah, b);
    let hh = x._mm256_mul_epu32(ah, bh);
    let mid = x._mm256_add_epi64(
        x._mm256_add_epi64(x._mm256_srli_epi64::<32>(ll), x._mm256_and_si256(lh, low)),
        x._mm256_and_si256(hl, low),
    );
    x._mm256_add_epi64(
        x._mm256_add_epi64(hh, x._mm256_srli_epi64::<32>(lh)),
        x._mm256_add_epi64(
            x._mm256_srli_epi64::<32>(hl),
            x._mm256_srli_epi64::<32>(mid),
        ),
    )
}

/// The low 64 bits of `a b - c d` (AVX2 has no 64-bit low product).
#[inline(always)]
fn mullo_diff_avx2(s: V3, a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    let x = s.avx2;
    let (ah, bh) = (x._mm256_srli_epi64::<32>(a), x._mm256_srli_epi64::<32>(b));
    let (ch, dh) = (x._mm256_srli_epi64::<32>(c), x._mm256_srli_epi64::<32>(d));
    let cross_ab = x._mm256_add_epi64(x._mm256_mul_epu32(a, bh), x._mm256_mul_epu32(ah, b));
    let cross_cd = x._mm256_add_epi64(x._mm256_mul_epu32(c, dh), x._mm256_mul_epu32(ch, d));
    let lo = x._mm256_sub_epi64(x._mm256_mul_epu32(a, b), x._mm256_mul_epu32(c, d));
    let mid = x._mm256_sub_epi64(cross_ab, cross_cd);
    x._mm256_add_epi64(lo, x._mm256_slli_epi64::<32>(mid))
}

/// Four 64-bit words on AVX2.
#[derive(Clone, Copy)]
pub(super) struct Avx2x64 {
    simd: V3,
    perm: Perm256,
}

impl Avx2x64 {
    #[inline(always)]
    pub(super) fn new(simd: V3) -> Avx2x64 {
        Avx2x64 {
            simd,
            perm: Perm256::new(2),
        }
    }
}

impl Lanes for Avx2x64 {
    type W = u64;
    type V = __m256i;
    type A = [u64; 4];
    const LANES: usize = 4;
    const WIDE: bool = true;

    #[inline(always)]
    fn arrays_mut(s: &mut [u64]) -> &mut [[u64; 4]] {
        pulp::as_arrays_mut::<4, u64>(s).0
    }
    #[inline(always)]
    fn arrays(s: &[u64]) -> &[[u64; 4]] {
        pulp::as_arrays::<4, u64>(s).0
    }
    #[inline(always)]
    fn load(self, a: &[u64; 4]) -> __m256i {
        pulp::cast(*a)
    }
    #[inline(always)]
    fn store(self, a: &mut [u64; 4], v: __m256i) {
        *a = pulp::cast(v);
    }
    #[inline(always)]
    fn splat(self, w: u64) -> __m256i {
        self.simd.avx._mm256_set1_epi64x(w as i64)
    }
    #[inline(always)]
    fn add(self, a: __m256i, b: __m256i) -> __m256i {
        self.simd.avx2._mm256_add_epi64(a, b)
    }
    #[inline(always)]
    fn sub(self, a: __m256i, b: __m256i) -> __m256i {
        self.simd.avx2._mm256_sub_epi64(a, b)
    }
    #[inline(always)]
    fn csub(self, a: __m256i, c: __m256i) -> __m256i {
        // Every value is below 2^63, so the signed comparison is exact.
        let x = self.simd.avx2;
        let below = x._mm256_cmpgt_epi64(c, a);
        x._mm256_blendv_epi8(x._mm256_sub_epi64(a, c), a, below)
    }
    #[inline(always)]
    fn mul_shoup(self, y: __m256i, w: __m256i, ws: __m256i, q: __m256i) -> __m256i {
        let hi = mulhi64_avx2(self.simd, y, ws);
        mullo_diff_avx2(self.simd, y, w, hi, q)
    }
    #[inline(always)]
    fn split(self, t: usize, a: __m256i, b: __m256i) -> (__m256i, __m256i) {
        self.perm.split(self.simd, t, a, b)
    }
    #[inline(always)]
    fn join(self, t: usize, x: __m256i, y: __m256i) -> (__m256i, __m256i) {
        self.perm.join(self.simd, t, x, y)
    }
    #[inline(always)]
    fn spread(self, t: usize, v: __m256i) -> __m256i {
        self.perm.spread(self.simd, t, v)
    }
}

/// Eight 32-bit words on AVX2.
#[derive(Clone, Copy)]
pub(super) struct Avx2x32 {
    simd: V3,
    perm: Perm256,
}

impl Avx2x32 {
    #[inline(always)]
    pub(super) fn new(simd: V3) -> Avx2x32 {
        Avx2x32 {
            simd,
            perm: Perm256::new(1),
        }
    }
}

impl Lanes for Avx2x32 {
    type W = u32;
    type V = __m256i;
    type A = [u32; 8];
    const LANES: usize = 8;
    const WIDE: bool = false;

    #[inline(always)]
    fn arrays_mut(s: &mut [u32]) -> &mut [[u32; 8]] {
        pulp::as_arrays_mut::<8, u32>(s).0
    }
    #[inline(always)]
    fn arrays(s: &[u32]) -> &[[u32; 8]] {
        pulp::as_arrays::<8, u32>(s).0
    }
    #[inline(always)]
    fn load(self, a: &[u32; 8]) -> __m256i {
        pulp::cast(*a)
    }
    #[inline(always)]
    fn store(self, a: &mut [u32; 8], v: __m256i) {
        *a = pulp::cast(v);
    }
    #[inline(always)]
    fn splat(self, w: u32) -> __m256i {
        self.simd.avx._mm256_set1_epi32(w as i32)
    }
    #[inline(always)]
    fn add(self, a: __m256i, b: __m256i) -> __m256i {
        self.simd.avx2._mm256_add_epi32(a, b)
    }
    #[inline(always)]
    fn sub(self, a: __m256i, b: __m256i) -> __m256i {
        self.simd.avx2._mm256_sub_epi32(a, b)
    }
    #[inline(always)]
    fn csub(self, a: __m256i, c: __m256i) -> __m256i {
        let x = self.simd.avx2;
        x._mm256_min_epu32(a, x._mm256_sub_epi32(a, c))
    }
    #[inline(always)]
    fn mul_shoup(self, y: __m256i, w: __m256i, ws: __m256i, q: __m256i) -> __m256i {
        let x = self.simd.avx2;
        let even = x._mm256_mul_epu32(y, ws);
        let odd = x._mm256_mul_epu32(x._mm256_srli_epi64::<32>(y), x._mm256_srli_epi64::<32>(ws));
        let hi = x._mm256_blend_epi32::<0b1010_1010>(x._mm256_srli_epi64::<32>(even), odd);
        x._mm256_sub_epi32(x._mm256_mullo_epi32(y, w), x._mm256_mullo_epi32(hi, q))
    }
    #[inline(always)]
    fn split(self, t: usize, a: __m256i, b: __m256i) -> (__m256i, __m256i) {
        self.perm.split(self.simd, t, a, b)
    }
    #[inline(always)]
    fn join(self, t: usize, x: __m256i, y: __m256i) -> (__m256i, __m256i) {
        self.perm.join(self.simd, t, x, y)
    }
    #[inline(always)]
    fn spread(self, t: usize, v: __m256i) -> __m256i {
        self.perm.spread(self.simd, t, v)
    }
}

/// The high 64 bits of the 64x64-bit products on AVX-512F.
#[inline(always)]
fn mulhi64_avx512(s: V4, a: __m512i, b: __m512i) -> __m512i {
    let f = s.avx512f;
    let low = f._mm512_set1_epi64(0xffff_ffff);
    let (ah, bh) = (f._mm512_srli_epi64::<32>(a), f._mm512_srli_epi64::<32>(b));
    let ll = f._mm512_mul_epu32(a, b);
    let lh = f._mm512_mul_epu32(a, bh);
    let hl = f._mm512_mul_epu32(ah, b);
    let hh = f._mm512_mul_epu32(ah, bh);
    let mid = f._mm512_add_epi64(
        f._mm512_add_epi64(f._mm512_srli_epi64::<32>(ll), f._mm512_and_si512(lh, low)),
        f._mm512_and_si512(hl, low),
    );
    f._mm512_add_epi64(
        f._mm512_add_epi64(hh, f._mm512_srli_epi64::<32>(lh)),
        f._mm512_add_epi64(
            f._mm512_srli_epi64::<32>(hl),
            f._mm512_srli_epi64::<32>(mid),
        ),
    )
}

macro_rules! avx512_common {
    ($w:ty, $lanes:expr) => {
        type W = $w;
        type V = __m512i;
        type A = [$w; $lanes];
        const LANES: usize = $lanes;

        #[inline(always)]
        fn arrays_mut(s: &mut [$w]) -> &mut [[$w; $lanes]] {
            pulp::as_arrays_mut::<$lanes, $w>(s).0
        }
        #[inline(always)]
        fn arrays(s: &[$w]) -> &[[$w; $lanes]] {
            pulp::as_arrays::<$lanes, $w>(s).0
        }
        #[inline(always)]
        fn load(self, a: &[$w; $lanes]) -> __m512i {
            pulp::cast(*a)
        }
        #[inline(always)]
        fn store(self, a: &mut [$w; $lanes], v: __m512i) {
            *a = pulp::cast(v);
        }
        #[inline(always)]
        fn split(self, t: usize, a: __m512i, b: __m512i) -> (__m512i, __m512i) {
            self.perm.split(self.v4(), t, a, b)
        }
        #[inline(always)]
        fn join(self, t: usize, x: __m512i, y: __m512i) -> (__m512i, __m512i) {
            self.perm.join(self.v4(), t, x, y)
        }
        #[inline(always)]
        fn spread(self, t: usize, v: __m512i) -> __m512i {
            self.perm.spread(self.v4(), t, v)
        }
    };
}

/// Eight 64-bit words on AVX-512.
#[derive(Clone, Copy)]
pub(super) struct Avx512x64 {
    simd: V4,
    perm: Perm512,
}

impl Avx512x64 {
    #[inline(always)]
    pub(super) fn new(simd: V4) -> Avx512x64 {
        Avx512x64 {
            simd,
            perm: Perm512::new(2),
        }
    }
    #[inline(always)]
    fn v4(self) -> V4 {
        self.simd
    }
}

impl Lanes for Avx512x64 {
    avx512_common!(u64, 8);
    const WIDE: bool = true;

    #[inline(always)]
    fn splat(self, w: u64) -> __m512i {
        self.simd.avx512f._mm512_set1_epi64(w as i64)
    }
    #[inline(always)]
    fn add(self, a: __m512i, b: __m512i) -> __m512i {
        self.simd.avx512f._mm512_add_epi64(a, b)
    }
    #[inline(always)]
    fn sub(self, a: __m512i, b: __m512i) -> __m512i {
        self.simd.avx512f._mm512_sub_epi64(a, b)
    }
    #[inline(always)]
    fn csub(self, a: __m512i, c: __m512i) -> __m512i {
        let f = self.simd.avx512f;
        f._mm512_min_epu64(a, f._mm512_sub_epi64(a, c))
    }
    #[inline(always)]
    fn mul_shoup(self, y: __m512i, w: __m512i, ws: __m512i, q: __m512i) -> __m512i {
        let hi = mulhi64_avx512(self.simd, y, ws);
        let dq = self.simd.avx512dq;
        self.simd
            .avx512f
            ._mm512_sub_epi64(dq._mm512_mullo_epi64(y, w), dq._mm512_mullo_epi64(hi, q))
    }
}

/// Sixteen 32-bit words on AVX-512.
#[derive(Clone, Copy)]
pub(super) struct Avx512x32 {
    simd: V4,
    perm: Perm512,
}

impl Avx512x32 {
    #[inline(always)]
    pub(super) fn new(simd: V4) -> Avx512x32 {
        Avx512x32 {
            simd,
            perm: Perm512::new(1),
        }
    }
    #[inline(always)]
    fn v4(self) -> V4 {
        self.simd
    }
}

impl Lanes for Avx512x32 {
    avx512_common!(u32, 16);
    const WIDE: bool = false;

    #[inline(always)]
    fn splat(self, w: u32) -> __m512i {
        self.simd.avx512f._mm512_set1_epi32(w as i32)
    }
    #[inline(always)]
    fn add(self, a: __m512i, b: __m512i) -> __m512i {
        self.simd.avx512f._mm512_add_epi32(a, b)
    }
    #[inline(always)]
    fn sub(self, a: __m512i, b: __m512i) -> __m512i {
        self.simd.avx512f._mm512_sub_epi32(a, b)
    }
    #[inline(always)]
    fn csub(self, a: __m512i, c: __m512i) -> __m512i {
        let f = self.simd.avx512f;
        f._mm512_min_epu32(a, f._mm512_sub_epi32(a, c))
    }
    #[inline(always)]
    fn mul_shoup(self, y: __m512i, w: __m512i, ws: __m512i, q: __m512i) -> __m512i {
        let f = self.simd.avx512f;
        let even = f._mm512_mul_epu32(y, ws);
        let odd = f._mm512_mul_epu32(f._mm512_srli_epi64::<32>(y), f._mm512_srli_epi64::<32>(ws));
        let hi = f._mm512_mask_blend_epi32(0xAAAA, f._mm512_srli_epi64::<32>(even), odd);
        f._mm512_sub_epi32(f._mm512_mullo_epi32(y, w), f._mm512_mullo_epi32(hi, q))
    }
}

/// Eight 64-bit words with IFMA's 52-bit products, for `q < 2^50` (so
/// `4q < 2^52`, and the Shoup companions are `floor(w 2^52 / q)`).
#[derive(Clone, Copy)]
pub(super) struct Ifma52 {
    simd: V4Ifma,
    perm: Perm512,
}

impl Ifma52 {
    #[inline(always)]
    pub(super) fn new(simd: V4Ifma) -> Ifma52 {
        Ifma52 {
            simd,
            perm: Perm512::new(2),
        }
    }
    #[inline(always)]
    fn v4(self) -> V4 {
        let s = self.simd;
        V4 {
            sse: s.sse,
            sse2: s.sse2,
            fxsr: s.fxsr,
            sse3: s.sse3,
            ssse3: s.ssse3,
            sse4_1: s.sse4_1,
            sse4_2: s.sse4_2,
            popcnt: s.popcnt,
            avx: s.avx,
            avx2: s.avx2,
            bmi1: s.bmi1,
            bmi2: s.bmi2,
            fma: s.fma,
            lzcnt: s.lzcnt,
            avx512f: s.avx512f,
            avx512bw: s.avx512bw,
            avx512cd: s.avx512cd,
            avx512dq: s.avx512dq,
            avx512vl: s.avx512vl,
        }
    }
}

impl Lanes for Ifma52 {
    avx512_common!(u64, 8);
    const WIDE: bool = true;

    #[inline(always)]
    fn splat(self, w: u64) -> __m512i {
        self.simd.avx512f._mm512_set1_epi64(w as i64)
    }
    #[inline(always)]
    fn add(self, a: __m512i, b: __m512i) -> __m512i {
        self.simd.avx512f._mm512_add_epi64(a, b)
    }
    #[inline(always)]
    fn sub(self, a: __m512i, b: __m512i) -> __m512i {
        self.simd.avx512f._mm512_sub_epi64(a, b)
    }
    #[inline(always)]
    fn csub(self, a: __m512i, c: __m512i) -> __m512i {
        let f = self.simd.avx512f;
        f._mm512_min_epu64(a, f._mm512_sub_epi64(a, c))
    }
    #[inline(always)]
    fn mul_shoup(self, y: __m512i, w: __m512i, ws: __m512i, q: __m512i) -> __m512i {
        let (f, ifma) = (self.simd.avx512f, self.simd.avx512ifma);
        let zero = f._mm512_setzero_si512();
        let hi = ifma._mm512_madd52hi_epu64(zero, y, ws);
        let r = f._mm512_sub_epi64(
            ifma._mm512_madd52lo_epu64(zero, y, w),
            ifma._mm512_madd52lo_epu64(zero, hi, q),
        );
        f._mm512_and_si512(r, f._mm512_set1_epi64((1 << 52) - 1))
    }
}
