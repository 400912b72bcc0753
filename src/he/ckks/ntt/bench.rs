//! Entry points for the `ntt` criterion benchmark (not a stable API): one
//! prime's forward + inverse transform with our NTT at a chosen SIMD level
//! and lane width, or with `tfhe-ntt` (feature `tfhe-ntt`).

use super::HarveyNtt;
#[cfg(feature = "tfhe-ntt")]
use super::Ntt;
use crate::he::ckks::simd::SimdLevel;

/// One transform plan to time.
pub struct NttBench {
    kind: Kind,
}

enum Kind {
    Ours(HarveyNtt, SimdLevel),
    #[cfg(feature = "tfhe-ntt")]
    Tfhe(super::TfheNtt),
}

/// The SIMD levels this CPU runs (`"scalar"`, `"avx2"`, `"avx512"`).
pub fn simd_levels() -> Vec<&'static str> {
    SimdLevel::available()
        .into_iter()
        .map(|l| match l {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        })
        .collect()
}

impl NttBench {
    /// Our NTT for `N = n` and the prime `q`, in 32-bit lanes when `narrow`
    /// (needs `q < 2^31`), at the level named as in [`simd_levels`].
    /// `None` for a bad prime or an unknown level.
    pub fn ours(n: usize, q: u64, narrow: bool, level: &str) -> Option<NttBench> {
        let level = SimdLevel::available()
            .into_iter()
            .zip(simd_levels())
            .find(|&(_, name)| name == level)?
            .0;
        let plan = HarveyNtt::with_width(n, q, narrow).ok()?;
        Some(NttBench {
            kind: Kind::Ours(plan, level),
        })
    }

    /// `tfhe-ntt`'s 64-bit plan for `N = n` and `q`.
    #[cfg(feature = "tfhe-ntt")]
    pub fn tfhe(n: usize, q: u64) -> Option<NttBench> {
        Some(NttBench {
            kind: Kind::Tfhe(super::TfheNtt::new(n, q).ok()?),
        })
    }

    /// `acc += a b mod q` pointwise (`[0, q)` words).
    pub fn mul_acc(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        match &self.kind {
            Kind::Ours(plan, level) => plan.mul_acc_at(*level, acc, a, b),
            #[cfg(feature = "tfhe-ntt")]
            Kind::Tfhe(plan) => plan.mul_acc(acc, a, b),
        }
    }

    /// Forward then normalised inverse transform of `a` (`[0, q)` words).
    pub fn forward_inverse(&self, a: &mut [u64]) {
        match &self.kind {
            Kind::Ours(plan, level) => {
                plan.forward_at(*level, a);
                plan.inverse_at(*level, a);
            }
            #[cfg(feature = "tfhe-ntt")]
            Kind::Tfhe(plan) => {
                plan.forward(a);
                plan.inverse(a);
            }
        }
    }
}
