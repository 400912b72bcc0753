//! Hybrid key switching (Han-Ki): decompose in digits of K primes, raise
//! each digit to the extended basis `Q_l * P` (fast base conversion + NTT),
//! take the inner product with the key (reduced once per coefficient), then
//! divide by `P` (mod-down). The word loops are in [`super::kernels`].
//!
//! Hoisting: the raised digits of `c_1` are computed once and reused by
//! every rotation step; Galois keys switch from `s` to `sigma^-1(s)`, so the
//! automorphism is applied once to the switched result (an NTT-domain
//! permutation of two polynomials) instead of to every digit: `k` rotations
//! cost one decomposition plus `k` inner products, mod-downs and
//! permutations.

use rayon::prelude::*;

use super::Ckks;
use super::kernels::{
    CentredDiv, CentredDivStep, MontInnerProduct, ReduceLimb, sub_add_limb, sub_assign_limb,
};

#[cfg(target_arch = "x86_64")]
use super::kernels::ifma_inner_product;
use super::keys::{SwitchingKey, digit_count, digit_primes, montgomery_form};
use super::rns::{BaseConverter, join, parallel, recycle, take_copy, take_scratch};

/// Without x86-64 there is no IFMA kernel: the caller falls back.
#[cfg(not(target_arch = "x86_64"))]
fn ifma_inner_product(
    _: &super::modulus::Modulus,
    _: &[[&[u64]; 3]],
    _: &mut [u64],
    _: &mut [u64],
) -> bool {
    false
}

/// The last pass of a mod-down on each ciphertext limb `x` (`c / P` the
/// rounding correction already divided by P).
#[derive(Clone, Copy)]
enum LastPass<'a> {
    /// `x P^-1 - c / P` (a plain extended-basis polynomial).
    Unscaled,
    /// `x - c / P (+ addend)`: `x` already carries `P^-1` (key-switch output).
    Scaled(Option<&'a [u64]>),
}

/// The digits of a polynomial raised to the extended basis, NTT form.
pub(crate) struct Decomposed {
    pub(crate) level: usize,
    /// One `(level + 1 + K) * N` vector per digit present at this level.
    pub(crate) digits: Vec<Vec<u64>>,
}

impl Drop for Decomposed {
    fn drop(&mut self) {
        self.digits.drain(..).for_each(recycle);
    }
}

impl Ckks {
    /// Raises each digit of `c` (NTT form, `level + 1` limbs) to the extended basis.
    pub(crate) fn decompose(&self, c: &[u64], level: usize) -> Decomposed {
        let ring = &*self.ring;
        let n = ring.n;
        let basis = ring.extended_basis(level);
        let mut coeffs = take_copy(c);
        ring.inverse_all(&mut coeffs, &basis[..=level]);
        let ndig = (0..digit_count(ring))
            .take_while(|&d| digit_primes(ring, d).start <= level)
            .count();
        let arch = super::simd::arch();
        let raise = |d: usize| {
            let src: Vec<usize> = digit_primes(ring, d).filter(|&j| j <= level).collect();
            // Assembled in extended-basis order: the digit's own limbs are
            // copied from c, the others raised (every word written).
            let mut out = take_scratch(basis.len() * n);
            if let [i] = src[..] {
                // One prime per digit: raising is a reduction of the limb
                // modulo each other prime (a copy into a larger prime).
                let x = &coeffs[i * n..(i + 1) * n];
                for (e, limb) in out.chunks_mut(n).enumerate() {
                    if basis[e] == i {
                        limb.copy_from_slice(&c[e * n..(e + 1) * n]);
                    } else {
                        arch.dispatch(ReduceLimb::new(&ring.moduli[basis[e]], x, limb));
                        ring.forward(basis[e], limb);
                    }
                }
                return out;
            }
            let dst: Vec<usize> = basis.iter().copied().filter(|j| !src.contains(j)).collect();
            let conv = BaseConverter::new(ring, &src, &dst);
            let mut raised = take_scratch(dst.len() * n); // convert writes every word
            conv.convert(
                ring,
                &coeffs[src[0] * n..(src[src.len() - 1] + 1) * n],
                &mut raised,
            );
            ring.forward_all(&mut raised, &dst);
            let mut next = raised.chunks(n);
            for (e, limb) in out.chunks_mut(n).enumerate() {
                if src.contains(&basis[e]) {
                    limb.copy_from_slice(&c[e * n..(e + 1) * n]);
                } else if let Some(r) = next.next() {
                    limb.copy_from_slice(r);
                }
            }
            recycle(raised);
            out
        };
        let digits = if parallel(ndig * basis.len() * n) {
            (0..ndig).into_par_iter().map(raise).collect()
        } else {
            (0..ndig).map(raise).collect()
        };
        recycle(coeffs);
        Decomposed { level, digits }
    }

    /// `sum_d digit_d * key_d` over the extended basis: the two components,
    /// still to be divided by P on the special primes (on the ciphertext
    /// primes the key already carries `P^-1`). For primes of 50 bits or more
    /// products are summed in 128 bits and each output coefficient is
    /// reduced once, by Montgomery reduction (the key carries the radix, see
    /// [`super::keys`]); smaller primes sum 52-bit halves with IFMA and
    /// reduce once too (`kernels::ifma_inner_product`), or, on CPUs without
    /// IFMA, use the NTT crate's multiply-accumulate.
    pub(crate) fn inner_product(&self, dec: &Decomposed, key: &SwitchingKey) -> [Vec<u64>; 2] {
        let ring = &*self.ring;
        let n = ring.n;
        let basis = ring.extended_basis(dec.level);
        let len = basis.len() * n;
        let mut out0 = take_scratch(len); // every word is written
        let mut out1 = take_scratch(len);
        let arch = super::simd::arch();
        let work = |(e, (o0, o1)): (usize, (&mut [u64], &mut [u64]))| {
            let p = basis[e];
            let range = p * n..(p + 1) * n;
            let terms: Vec<[&[u64]; 3]> = dec
                .digits
                .iter()
                .zip(&key.b)
                .zip(&key.a)
                .map(|((digit, kb), ka)| {
                    [
                        &digit[e * n..(e + 1) * n],
                        &kb[range.clone()],
                        &ka[range.clone()],
                    ]
                })
                .collect();
            let m = &ring.moduli[p];
            if montgomery_form(m.value()) {
                arch.dispatch(MontInnerProduct::new(m, &terms, o0, o1));
            } else if !ifma_inner_product(m, &terms, o0, o1) {
                o0.fill(0);
                o1.fill(0);
                for [x, kb, ka] in &terms {
                    ring.mul_acc(p, o0, x, kb);
                    ring.mul_acc(p, o1, x, ka);
                }
            }
        };
        if parallel(len) {
            out0.par_chunks_mut(n)
                .zip(out1.par_chunks_mut(n))
                .enumerate()
                .for_each(work);
        } else {
            out0.chunks_mut(n)
                .zip(out1.chunks_mut(n))
                .enumerate()
                .for_each(work);
        }
        [out0, out1]
    }

    /// Divides an extended-basis polynomial (NTT form) by P, rounding to
    /// nearest: `(x - c) / P` with `c` the centred residue of `x` modulo P
    /// (equivalently `floor((x + h) / P)`, `h = (P-1)/2`). The result has
    /// `level + 1` limbs.
    pub(crate) fn mod_down(&self, x: Vec<u64>, level: usize) -> Vec<u64> {
        self.mod_down_with(x, level, LastPass::Unscaled)
    }

    /// [`Ckks::mod_down`] of a key-switch output whose ciphertext limbs are
    /// already divided by P (keys stored divided by P, see [`super::keys`]):
    /// each limb is then `x - c / P`, one subtraction per coefficient; with
    /// `addend` (`level + 1` limbs), `x - c / P + addend` in the same pass.
    pub(crate) fn mod_down_scaled(
        &self,
        x: Vec<u64>,
        level: usize,
        addend: Option<&[u64]>,
    ) -> Vec<u64> {
        self.mod_down_with(x, level, LastPass::Scaled(addend))
    }

    fn mod_down_with(&self, mut x: Vec<u64>, level: usize, last: LastPass<'_>) -> Vec<u64> {
        let ring = &*self.ring;
        let n = ring.n;
        let k = ring.num_p;
        let split = (level + 1) * n;
        let specials: Vec<usize> = (0..k).map(|i| ring.special(i)).collect();
        let mut sp = take_copy(&x[split..]);
        ring.inverse_all(&mut sp, &specials);
        // conv_j = c / P mod q_j, coefficient form.
        let mut conv = take_scratch(split); // every word is written below
        if k == 1 {
            let p = ring.moduli[specials[0]].value();
            let arch = super::simd::arch();
            for (j, cl) in conv.chunks_mut(n).enumerate() {
                let kern = CentredDiv::new(&ring.moduli[j], p, self.p_inv[j]);
                arch.dispatch(CentredDivStep {
                    k: &kern,
                    y: &sp,
                    out: cl,
                });
            }
        } else {
            // Several special primes: fast base conversion of [x + h]_P,
            // then subtract h and multiply by P^-1.
            for (limb, &p) in sp.chunks_mut(n).zip(&specials) {
                let m = &ring.moduli[p];
                let h = self.p_half[p];
                limb.iter_mut().for_each(|v| *v = m.add(*v, h));
            }
            self.moddown_conv[level].convert(ring, &sp, &mut conv);
            for (j, cl) in conv.chunks_mut(n).enumerate() {
                let m = &ring.moduli[j];
                let (h, w) = (self.p_half[j], self.p_inv[j]);
                cl.iter_mut()
                    .for_each(|v| *v = m.mul_shoup(m.sub(*v, h), w));
            }
        }
        x.truncate(split);
        let work = |(j, (xl, cl)): (usize, (&mut [u64], &mut [u64]))| {
            let m = &ring.moduli[j];
            ring.forward(j, cl);
            match last {
                LastPass::Scaled(Some(add)) => sub_add_limb(m, xl, cl, &add[j * n..(j + 1) * n]),
                LastPass::Scaled(None) => sub_assign_limb(m, xl, cl),
                LastPass::Unscaled => {
                    let w = self.p_inv[j];
                    for (a, &b) in xl.iter_mut().zip(cl.iter()) {
                        *a = m.sub(m.mul_shoup(*a, w), b);
                    }
                }
            }
        };
        if parallel(split) {
            x.par_chunks_mut(n)
                .zip(conv.par_chunks_mut(n))
                .enumerate()
                .for_each(work);
        } else {
            x.chunks_mut(n)
                .zip(conv.chunks_mut(n))
                .enumerate()
                .for_each(work);
        }
        recycle(sp);
        recycle(conv);
        x
    }

    /// Key-switches a decomposed polynomial: `(d0, d1)` at the same level
    /// with `d0 + d1 s ~ c * s_from`; `add` (each `level + 1` limbs) is added
    /// to the components in the mod-down's last pass.
    pub(crate) fn switch(
        &self,
        dec: &Decomposed,
        key: &SwitchingKey,
        add: [Option<&[u64]>; 2],
    ) -> [Vec<u64>; 2] {
        let [x0, x1] = self.inner_product(dec, key);
        let words = x0.len();
        let (d0, d1) = join(
            words,
            || self.mod_down_scaled(x0, dec.level, add[0]),
            || self.mod_down_scaled(x1, dec.level, add[1]),
        );
        [d0, d1]
    }
}
