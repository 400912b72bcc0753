//! The negacyclic NTT written once over a vector of lanes ([`Lanes`]):
//! Cooley-Tukey forward and Gentleman-Sande inverse butterflies with
//! Harvey's lazy reduction and Shoup's precomputed quotients, with the
//! `psi` twist merged into the twiddles (Longa-Naehrig) and `N^-1` merged
//! into the last inverse stage. The scalar lane types live here, the
//! AVX2 / AVX-512 ones in `x86.rs`.
//!
//! Bounds. *Wide* lanes (64-bit words, `4q` below the word) keep Harvey's
//! `[0, 4q)` / `[0, 2q)`. *Narrow* lanes (32-bit words, `q < 2^31`, so only
//! `2q` fits) keep every value in `[0, 2q)`: one more conditional
//! subtraction per butterfly, no overflow.

/// The twiddles of one prime for one word type and Shoup width.
#[derive(Debug, Clone)]
pub(super) struct Tables<W> {
    pub(super) q: W,
    /// `psi^bitrev(k)` at `k` (`k = m + i` for block `i` of the stage with
    /// `m` blocks), and the Shoup companions; padded with zeros so a full
    /// vector can be loaded from any index below `N`.
    pub(super) fwd: Vec<W>,
    pub(super) fwd_s: Vec<W>,
    /// `psi^-bitrev(k)`, with index 1 (the last stage) times `N^-1`.
    pub(super) inv: Vec<W>,
    pub(super) inv_s: Vec<W>,
    /// `N^-1` and its Shoup companion.
    pub(super) n_inv: W,
    pub(super) n_inv_s: W,
}

/// Zeros after the tables, at least the widest vector.
pub(super) const PAD: usize = 16;

/// The vector operations the butterflies need, over `LANES` words.
pub(super) trait Lanes: Copy {
    /// The word: `u32` (narrow) or `u64` (wide).
    type W: Copy;
    /// A vector of `LANES` words.
    type V: Copy;
    /// `[W; LANES]`.
    type A: Copy;
    const LANES: usize;
    /// `true`: 64-bit words with `4q` below the word size.
    const WIDE: bool;

    fn arrays_mut(s: &mut [Self::W]) -> &mut [Self::A];
    fn arrays(s: &[Self::W]) -> &[Self::A];
    fn load(self, a: &Self::A) -> Self::V;
    fn store(self, a: &mut Self::A, v: Self::V);
    fn splat(self, w: Self::W) -> Self::V;
    /// Wrapping addition and subtraction.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - c` where `a >= c`, else `a` (for `a < 2c`).
    fn csub(self, a: Self::V, c: Self::V) -> Self::V;
    /// `y w mod q` in `[0, 2q)` by Shoup's method (`ws` the companion of
    /// `w` for this lane type's width, `y` below that width).
    fn mul_shoup(self, y: Self::V, w: Self::V, ws: Self::V, q: Self::V) -> Self::V;
    /// For a stage with half-block `t < LANES`: the vectors `a, b` (words
    /// `0..2 LANES` of a chunk) to `(x, y)`, lane `l` of `x` and `y` the
    /// two inputs of the `l`-th butterfly of the chunk in order.
    fn split(self, t: usize, a: Self::V, b: Self::V) -> (Self::V, Self::V);
    /// The inverse of [`Lanes::split`].
    fn join(self, t: usize, x: Self::V, y: Self::V) -> (Self::V, Self::V);
    /// Lane `l` of the result is lane `l / t` of `v` (`t < LANES`).
    fn spread(self, t: usize, v: Self::V) -> Self::V;
}

/// Cooley-Tukey butterfly: `(x + w y, x - w y)`. Wide: inputs in `[0, 4q)`,
/// outputs in `[0, 4q)`; narrow: in and out `[0, 2q)`.
#[inline(always)]
fn ct<L: Lanes>(l: L, x: L::V, y: L::V, w: L::V, ws: L::V, q: L::V, q2: L::V) -> (L::V, L::V) {
    let bound = if L::WIDE { q2 } else { q };
    let x = l.csub(x, bound);
    let mut t = l.mul_shoup(y, w, ws, q);
    if !L::WIDE {
        t = l.csub(t, q);
    }
    (l.add(x, t), l.sub(l.add(x, bound), t))
}

/// A forward output reduced into `[0, q)`.
#[inline(always)]
fn ct_final<L: Lanes>(l: L, v: L::V, q: L::V, q2: L::V) -> L::V {
    let v = if L::WIDE { l.csub(v, q2) } else { v };
    l.csub(v, q)
}

/// Gentleman-Sande butterfly: `(x + y, (x - y) w)`, inputs and outputs in
/// `[0, 2q)`.
#[inline(always)]
fn gs<L: Lanes>(l: L, x: L::V, y: L::V, w: L::V, ws: L::V, q: L::V, q2: L::V) -> (L::V, L::V) {
    if L::WIDE {
        let s = l.csub(l.add(x, y), q2);
        (s, l.mul_shoup(l.sub(l.add(x, q2), y), w, ws, q))
    } else {
        let (x, y) = (l.csub(x, q), l.csub(y, q));
        (l.add(x, y), l.mul_shoup(l.sub(l.add(x, q), y), w, ws, q))
    }
}

/// The last Gentleman-Sande stage with `N^-1` merged: `((x + y) N^-1,
/// (x - y) w N^-1)` in `[0, q)` (`wn` = `w N^-1`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gs_last<L: Lanes>(
    l: L,
    x: L::V,
    y: L::V,
    (wn, wns): (L::V, L::V),
    (ni, nis): (L::V, L::V),
    q: L::V,
    q2: L::V,
) -> (L::V, L::V) {
    let (x, y, bound) = if L::WIDE {
        (x, y, q2)
    } else {
        (l.csub(x, q), l.csub(y, q), q)
    };
    let s = l.add(x, y);
    let d = l.sub(l.add(x, bound), y);
    (
        l.csub(l.mul_shoup(s, ni, nis, q), q),
        l.csub(l.mul_shoup(d, wn, wns, q), q),
    )
}

/// In-place forward NTT (natural order in, bit-reversed out, `[0, q)` in
/// and out). `a.len()` is a power of two at least `2 LANES`.
#[inline(always)]
pub(super) fn forward<L: Lanes>(l: L, tab: &Tables<L::W>, a: &mut [L::W]) {
    let n = a.len();
    let q = l.splat(tab.q);
    let q2 = l.add(q, q);
    let (mut t, mut m) = (n, 1);
    while m < n {
        t /= 2;
        let last = t == 1;
        if t >= L::LANES {
            for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                let w = l.splat(tab.fwd[m + i]);
                let ws = l.splat(tab.fwd_s[m + i]);
                let (xs, ys) = block.split_at_mut(t);
                for (x, y) in L::arrays_mut(xs).iter_mut().zip(L::arrays_mut(ys)) {
                    let (mut u, mut v) = ct(l, l.load(x), l.load(y), w, ws, q, q2);
                    if last {
                        (u, v) = (ct_final(l, u, q, q2), ct_final(l, v, q, q2));
                    }
                    l.store(x, u);
                    l.store(y, v);
                }
            }
        } else {
            let per = L::LANES / t;
            for (c, pair) in L::arrays_mut(a).chunks_exact_mut(2).enumerate() {
                let k = m + c * per;
                let w = l.spread(t, l.load(&L::arrays(&tab.fwd[k..])[0]));
                let ws = l.spread(t, l.load(&L::arrays(&tab.fwd_s[k..])[0]));
                let (pa, pb) = pair.split_at_mut(1);
                let (x, y) = l.split(t, l.load(&pa[0]), l.load(&pb[0]));
                let (mut u, mut v) = ct(l, x, y, w, ws, q, q2);
                if last {
                    (u, v) = (ct_final(l, u, q, q2), ct_final(l, v, q, q2));
                }
                let (ra, rb) = l.join(t, u, v);
                l.store(&mut pa[0], ra);
                l.store(&mut pb[0], rb);
            }
        }
        m *= 2;
    }
}

/// In-place inverse NTT including the factor `N^-1` (bit-reversed order in,
/// natural out, `[0, q)` in and out). `a.len()` is a power of two at least
/// `2 LANES`.
#[inline(always)]
pub(super) fn inverse<L: Lanes>(l: L, tab: &Tables<L::W>, a: &mut [L::W]) {
    let n = a.len();
    let q = l.splat(tab.q);
    let q2 = l.add(q, q);
    let ni = (l.splat(tab.n_inv), l.splat(tab.n_inv_s));
    let (mut t, mut m) = (1, n);
    while m > 1 {
        let h = m / 2;
        let last = h == 1;
        if t >= L::LANES {
            for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                let w = l.splat(tab.inv[h + i]);
                let ws = l.splat(tab.inv_s[h + i]);
                let (xs, ys) = block.split_at_mut(t);
                for (x, y) in L::arrays_mut(xs).iter_mut().zip(L::arrays_mut(ys)) {
                    let (u, v) = if last {
                        gs_last(l, l.load(x), l.load(y), (w, ws), ni, q, q2)
                    } else {
                        gs(l, l.load(x), l.load(y), w, ws, q, q2)
                    };
                    l.store(x, u);
                    l.store(y, v);
                }
            }
        } else {
            let per = L::LANES / t;
            for (c, pair) in L::arrays_mut(a).chunks_exact_mut(2).enumerate() {
                let k = h + c * per;
                let w = l.spread(t, l.load(&L::arrays(&tab.inv[k..])[0]));
                let ws = l.spread(t, l.load(&L::arrays(&tab.inv_s[k..])[0]));
                let (pa, pb) = pair.split_at_mut(1);
                let (x, y) = l.split(t, l.load(&pa[0]), l.load(&pb[0]));
                let (u, v) = if last {
                    gs_last(l, x, y, (w, ws), ni, q, q2)
                } else {
                    gs(l, x, y, w, ws, q, q2)
                };
                let (ra, rb) = l.join(t, u, v);
                l.store(&mut pa[0], ra);
                l.store(&mut pb[0], rb);
            }
        }
        t *= 2;
        m = h;
    }
}

/// One 64-bit word at a time (any CPU).
#[derive(Clone, Copy)]
pub(super) struct Scalar64;

/// One 32-bit word at a time (any CPU), for `q < 2^31`.
#[derive(Clone, Copy)]
pub(super) struct Scalar32;

macro_rules! scalar_lanes {
    ($name:ident, $w:ty, $wide:ty, $bits:expr, $is_wide:expr) => {
        impl Lanes for $name {
            type W = $w;
            type V = $w;
            type A = [$w; 1];
            const LANES: usize = 1;
            const WIDE: bool = $is_wide;

            #[inline(always)]
            fn arrays_mut(s: &mut [$w]) -> &mut [[$w; 1]] {
                pulp::as_arrays_mut::<1, $w>(s).0
            }
            #[inline(always)]
            fn arrays(s: &[$w]) -> &[[$w; 1]] {
                pulp::as_arrays::<1, $w>(s).0
            }
            #[inline(always)]
            fn load(self, a: &[$w; 1]) -> $w {
                a[0]
            }
            #[inline(always)]
            fn store(self, a: &mut [$w; 1], v: $w) {
                a[0] = v;
            }
            #[inline(always)]
            fn splat(self, w: $w) -> $w {
                w
            }
            #[inline(always)]
            fn add(self, a: $w, b: $w) -> $w {
                a.wrapping_add(b)
            }
            #[inline(always)]
            fn sub(self, a: $w, b: $w) -> $w {
                a.wrapping_sub(b)
            }
            #[inline(always)]
            fn csub(self, a: $w, c: $w) -> $w {
                a - (c & (0 as $w).wrapping_sub(<$w>::from(a >= c)))
            }
            #[inline(always)]
            fn mul_shoup(self, y: $w, w: $w, ws: $w, q: $w) -> $w {
                let hi = ((<$wide>::from(y) * <$wide>::from(ws)) >> $bits) as $w;
                y.wrapping_mul(w).wrapping_sub(hi.wrapping_mul(q))
            }
            // With one lane every stage has `t >= LANES`: the chunk
            // permutations are the identity.
            #[inline(always)]
            fn split(self, _t: usize, a: $w, b: $w) -> ($w, $w) {
                (a, b)
            }
            #[inline(always)]
            fn join(self, _t: usize, x: $w, y: $w) -> ($w, $w) {
                (x, y)
            }
            #[inline(always)]
            fn spread(self, _t: usize, v: $w) -> $w {
                v
            }
        }
    };
}

scalar_lanes!(Scalar64, u64, u128, 64, true);
scalar_lanes!(Scalar32, u32, u64, 32, false);
