//! Cache-blocked multiply-accumulate kernels (`pulp`, AVX2 / AVX-512 where
//! the CPU has them): every output of a convolution window from one pass
//! over each input block.

use rayon::prelude::*;

use super::modulus::Modulus;
use super::rns::{Ring, parallel};

/// One output polynomial of [`blocked_mac`]: `(input polynomial, its
/// multiplier reduced modulo every prime)` per term.
pub(super) struct BlockRow<'a> {
    pub(super) terms: Vec<(&'a [u64], &'a [u64])>,
}

/// Coefficients per block of [`blocked_mac`]: a block of every input of a
/// convolution window stays in L1/L2 while all its outputs read it.
pub(super) const MAC_BLOCK: usize = 512;

/// `out[r] = sum_t terms[r][t].0 * terms[r][t].1[limb]` over the first
/// `limbs` limbs, block by block: every output's terms are read for one
/// block of coefficients before moving on, so an input shared by many
/// outputs is fetched from memory once, not once per output. Blocks run in
/// parallel; each output coefficient is reduced once per
/// [`Modulus::MAX_LAZY_TERMS`] terms (products summed in 128 bits).
pub(super) fn blocked_mac(ring: &Ring, limbs: usize, rows: &[BlockRow<'_>]) -> Vec<Vec<u64>> {
    let n = ring.n;
    let block = MAC_BLOCK.min(n);
    let mut outs: Vec<Vec<u64>> = rows.iter().map(|_| vec![0u64; limbs * n]).collect();
    let blocks = limbs * n / block;
    let mut per_block: Vec<Vec<&mut [u64]>> = (0..blocks)
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for out in &mut outs {
        for (b, chunk) in out.chunks_mut(block).enumerate() {
            per_block[b].push(chunk);
        }
    }
    let arch = super::simd::arch();
    let work = |(b, chunks): (usize, Vec<&mut [u64]>)| {
        let start = b * block;
        let j = start / n;
        let m = &ring.moduli[j];
        let kernel = if m.value() < 1 << 32 {
            MacKernel::Split32
        } else if m.value() < 1 << 50 && rows.iter().all(|r| r.terms.len() <= MAC48_MAX_TERMS) {
            MacKernel::Split50
        } else {
            MacKernel::Wide
        };
        arch.dispatch(MacBlock {
            kernel,
            m,
            j,
            start,
            block,
            rows,
            chunks,
        });
    };
    if parallel(limbs * n * rows.len()) {
        per_block.into_par_iter().enumerate().for_each(work);
    } else {
        per_block.into_iter().enumerate().for_each(work);
    }
    outs
}

/// Which multiply-accumulate kernel a block's prime allows.
#[derive(Clone, Copy)]
pub(super) enum MacKernel {
    /// `q < 2^32`: [`mac_block_32`].
    Split32,
    /// `q < 2^50`: [`mac_block_48`].
    Split50,
    /// Any `q < 2^61`: [`mac_block_wide`].
    Wide,
}

/// One block of [`blocked_mac`]: limb `j`, coefficients `start..start +
/// block` of every row, written to `chunks`. A `pulp` operation: its
/// `with_simd` is inlined into a function compiled for the detected
/// instruction set, and the kernels are `#[inline(always)]`, so their loops
/// vectorise with AVX2 / AVX-512 (a closure would not be inlined and would
/// stay at the baseline's 128-bit vectors).
pub(super) struct MacBlock<'r, 'a> {
    pub(super) kernel: MacKernel,
    pub(super) m: &'r Modulus,
    pub(super) j: usize,
    pub(super) start: usize,
    pub(super) block: usize,
    pub(super) rows: &'r [BlockRow<'a>],
    pub(super) chunks: Vec<&'r mut [u64]>,
}

impl pulp::WithSimd for MacBlock<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        match self.kernel {
            MacKernel::Split32 => mac_block_32(self),
            MacKernel::Split50 => mac_block_48(self),
            MacKernel::Wide => mac_block_wide(self),
        }
    }
}

/// One block of [`blocked_mac`] for `q < 2^32`: products of two values
/// below `2^32` fit in 64 bits; their low and high halves are summed in two
/// `u64` accumulators (no overflow below `2^32` terms) and combined once.
/// Plain 64-bit lanes, so the compiler vectorises it (inlined into
/// `pulp`'s dispatch, with AVX2 / AVX-512 where the CPU has them).
#[inline(always)]
pub(super) fn mac_block_32(b: MacBlock<'_, '_>) {
    let MacBlock {
        m,
        j,
        start,
        block,
        rows,
        chunks,
        ..
    } = b;
    const LOW: u64 = 0xffff_ffff;
    let mut lo = [0u64; MAC_BLOCK];
    let mut hi = [0u64; MAC_BLOCK];
    let (lo, hi) = (&mut lo[..block], &mut hi[..block]);
    let two32 = m.reduce(1 << 32);
    for (row, out) in rows.iter().zip(chunks) {
        lo.fill(0);
        hi.fill(0);
        // Four terms per pass: the accumulators are loaded and stored once
        // per four products (each half of a product is below 2^32).
        let mut quads = row.terms.chunks_exact(4);
        for q in quads.by_ref() {
            let [(x0, w0), (x1, w1), (x2, w2), (x3, w3)] = [q[0], q[1], q[2], q[3]];
            let (w0, w1, w2, w3) = (w0[j] & LOW, w1[j] & LOW, w2[j] & LOW, w3[j] & LOW);
            let r = start..start + block;
            let (x0, x1, x2, x3) = (&x0[r.clone()], &x1[r.clone()], &x2[r.clone()], &x3[r]);
            for k in 0..block {
                let p0 = (x0[k] & LOW) * w0;
                let p1 = (x1[k] & LOW) * w1;
                let p2 = (x2[k] & LOW) * w2;
                let p3 = (x3[k] & LOW) * w3;
                lo[k] += (p0 & LOW) + (p1 & LOW) + (p2 & LOW) + (p3 & LOW);
                hi[k] += (p0 >> 32) + (p1 >> 32) + (p2 >> 32) + (p3 >> 32);
            }
        }
        for &(x, w) in quads.remainder() {
            let w = w[j] & LOW;
            let x = &x[start..start + block];
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(x) {
                let p = (v & LOW) * w;
                *l += p & LOW;
                *h += p >> 32;
            }
        }
        for ((o, &l), &h) in out.iter_mut().zip(lo.iter()).zip(hi.iter()) {
            *o = m.add(m.mul(m.reduce(h), two32), m.reduce(l));
        }
    }
}

/// Most terms per output [`mac_block_48`] can sum: its middle accumulator
/// gains less than `2^51` per term and must stay below `2^64`.
pub(super) const MAC48_MAX_TERMS: usize = 1 << 12;

/// One block of [`blocked_mac`] for `2^32 <= q < 2^50` (e.g. the 48-bit
/// base prime): with `x = xh 2^32 + xl` and `w = wh 2^32 + wl` (halves below
/// `2^32`, high halves below `2^18`), `x w = xh wh 2^64 + (xh wl + xl wh)
/// 2^32 + xl wl`; each partial product fits in 64 bits and goes to its own
/// 64-bit accumulator (`xl wl` split in halves), so the loop vectorises
/// like [`mac_block_32`] at four multiplies per term instead of one.
#[inline(always)]
pub(super) fn mac_block_48(b: MacBlock<'_, '_>) {
    let MacBlock {
        m,
        j,
        start,
        block,
        rows,
        chunks,
        ..
    } = b;
    const LOW: u64 = 0xffff_ffff;
    let mut lo = [0u64; MAC_BLOCK];
    let mut mid = [0u64; MAC_BLOCK];
    let mut hi = [0u64; MAC_BLOCK];
    let (lo, mid, hi) = (&mut lo[..block], &mut mid[..block], &mut hi[..block]);
    let two32 = m.reduce(1 << 32);
    let two64 = m.mul(two32, two32);
    for (row, out) in rows.iter().zip(chunks) {
        lo.fill(0);
        mid.fill(0);
        hi.fill(0);
        for &(x, w) in &row.terms {
            let (wl, wh) = (w[j] & LOW, w[j] >> 32);
            let x = &x[start..start + block];
            for (((l, md), h), &v) in lo.iter_mut().zip(mid.iter_mut()).zip(hi.iter_mut()).zip(x) {
                let (xl, xh) = (v & LOW, v >> 32);
                let p = xl * wl;
                *l += p & LOW;
                *md += (p >> 32) + xl * wh + xh * wl;
                *h += xh * wh;
            }
        }
        for (((o, &l), &md), &h) in out.iter_mut().zip(lo.iter()).zip(mid.iter()).zip(hi.iter()) {
            let v = m.add(m.mul(m.reduce(h), two64), m.mul(m.reduce(md), two32));
            *o = m.add(v, m.reduce(l));
        }
    }
}

/// One block of [`blocked_mac`] for any `q < 2^61`: products summed in
/// `u128`, reduced every [`Modulus::MAX_LAZY_TERMS`] terms.
#[inline(always)]
pub(super) fn mac_block_wide(b: MacBlock<'_, '_>) {
    let MacBlock {
        m,
        j,
        start,
        block,
        rows,
        chunks,
        ..
    } = b;
    let mut acc = [0u128; MAC_BLOCK];
    let acc = &mut acc[..block];
    for (row, out) in rows.iter().zip(chunks) {
        acc.fill(0);
        for chunk in row.terms.chunks(Modulus::MAX_LAZY_TERMS) {
            for &(x, w) in chunk {
                let w = u128::from(w[j]);
                for (a, &v) in acc.iter_mut().zip(&x[start..start + block]) {
                    *a += u128::from(v) * w;
                }
            }
            for a in acc.iter_mut() {
                *a = u128::from(m.reduce_u128(*a));
            }
        }
        for (o, &a) in out.iter_mut().zip(acc.iter()) {
            *o = a as u64;
        }
    }
}

pub(super) fn mac_plain_limb(m: &Modulus, terms: &[(&[u64], &[u64])], out: &mut [u64]) {
    for chunk in terms.chunks(Modulus::MAX_LAZY_TERMS) {
        for (k, o) in out.iter_mut().enumerate() {
            let mut acc = u128::from(*o);
            for &(x, p) in chunk {
                acc += u128::from(x[k]) * u128::from(p[k]);
            }
            *o = m.reduce_u128(acc);
        }
    }
}
