//! The canonical-embedding encoder: N/2 complex slots <-> a real polynomial
//! of degree < N.
//!
//! **Slot order.** Slot `i` (0 <= i < N/2) holds the evaluation of the
//! plaintext polynomial `m` at `zeta^(5^i mod 2N)`, `zeta = exp(i pi / N)`;
//! the conjugate root `zeta^(-5^i)` holds the conjugate value. The
//! automorphism `X -> X^(5^k)` therefore moves slot `i + k` to slot `i`,
//! which is `rotate(Rotation(k))` (left rotation for `k > 0`), and
//! `X -> X^(2N-1)` conjugates every slot.
//!
//! Both directions are one complex FFT of size N: with `u[t]` the value at
//! `zeta^(2t+1)`, `m_j = Re(zeta^-j * IDFT(u)_j)` and `u = DFT(m_j zeta^j)`.

use num_complex::Complex64;

/// Precomputed tables for one ring degree.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    n: usize,
    /// `slot_index[i] = (5^i mod 2N - 1) / 2`: where slot i sits in `u`.
    slot_index: Vec<usize>,
    /// `zeta^j`, j < N.
    zeta: Vec<Complex64>,
    /// `omega^t = exp(2 pi i t / N)`, t < N/2 (FFT twiddles).
    omega: Vec<Complex64>,
}

impl Encoder {
    pub(crate) fn new(n: usize) -> Encoder {
        let two_n = 2 * n;
        let mut slot_index = Vec::with_capacity(n / 2);
        let mut k = 1usize;
        for _ in 0..n / 2 {
            slot_index.push((k - 1) / 2);
            k = (k * 5) % two_n;
        }
        let zeta = (0..n)
            .map(|j| Complex64::from_polar(1.0, std::f64::consts::PI * j as f64 / n as f64))
            .collect();
        let omega = (0..n / 2)
            .map(|t| Complex64::from_polar(1.0, 2.0 * std::f64::consts::PI * t as f64 / n as f64))
            .collect();
        Encoder {
            n,
            slot_index,
            zeta,
            omega,
        }
    }

    /// In-place radix-2 FFT: `a[t] <- sum_j a[j] omega^(+-tj)`.
    fn fft(&self, a: &mut [Complex64], inverse: bool) {
        let n = a.len();
        let bits = n.trailing_zeros();
        for i in 0..n {
            let j = i.reverse_bits() >> (usize::BITS - bits);
            if i < j {
                a.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let step = n / len;
            let half = len / 2;
            for chunk in a.chunks_exact_mut(len) {
                let (lo, hi) = chunk.split_at_mut(half);
                for (k, (x, y)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    let w = self.omega[k * step];
                    let w = if inverse { w.conj() } else { w };
                    let t = *y * w;
                    *y = *x - t;
                    *x += t;
                }
            }
            len *= 2;
        }
    }

    /// The integer coefficients (as exact integral `f64`s) of the polynomial
    /// whose slots are `values * scale` (missing slots are zero).
    pub(crate) fn encode(&self, values: &[f64], scale: f64) -> Vec<f64> {
        let n = self.n;
        let mut u = vec![Complex64::new(0.0, 0.0); n];
        for (&v, &t) in values.iter().zip(&self.slot_index) {
            let z = v * scale;
            u[t] = Complex64::new(z, 0.0);
            // conjugate root: 2N - k = 2(N - 1 - t) + 1
            u[n - 1 - t] = Complex64::new(z, 0.0);
        }
        self.fft(&mut u, true);
        let inv_n = 1.0 / n as f64;
        u.iter()
            .zip(&self.zeta)
            .map(|(x, z)| ((*x * z.conj()).re * inv_n).round())
            .collect()
    }

    /// Slot values of a polynomial with (centred, real) coefficients `m`, divided by `scale`.
    pub(crate) fn decode(&self, m: &[f64], scale: f64) -> Vec<f64> {
        let mut u: Vec<Complex64> = m.iter().zip(&self.zeta).map(|(&c, z)| z * c).collect();
        self.fft(&mut u, false);
        let inv = 1.0 / scale;
        self.slot_index.iter().map(|&t| u[t].re * inv).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let n = 1 << 12;
        let enc = Encoder::new(n);
        let values: Vec<f64> = (0..n / 2)
            .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let scale = 2f64.powi(40);
        let m = enc.encode(&values, scale);
        assert!(m.iter().all(|c| c.fract() == 0.0));
        let back = enc.decode(&m, scale);
        let err = values
            .iter()
            .zip(&back)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 2f64.powi(-30), "err {err}");
    }

    #[test]
    fn slot_order_matches_rotation_by_five() {
        // m(X) -> m(X^5) moves slot i+1 to slot i.
        let n = 64;
        let enc = Encoder::new(n);
        let values: Vec<f64> = (0..n / 2).map(|i| i as f64).collect();
        let m = enc.encode(&values, 2f64.powi(30));
        let mut rot = vec![0.0; n];
        for (j, &c) in m.iter().enumerate() {
            let k = (j * 5) % (2 * n);
            if k < n {
                rot[k] = c;
            } else {
                rot[k - n] = -c;
            }
        }
        let back = enc.decode(&rot, 2f64.powi(30));
        for i in 0..n / 2 {
            assert!((back[i] - values[(i + 1) % (n / 2)]).abs() < 1e-6);
        }
    }
}
