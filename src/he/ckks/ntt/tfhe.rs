//! `tfhe-ntt`'s 64-bit prime plans behind [`Ntt`] (the `tfhe-ntt` cargo
//! feature), kept to compare with our own NTT.

use tfhe_ntt::prime64::Plan;

use super::Ntt;
use crate::he::error::{Error, Result};

/// `tfhe-ntt`'s plan for one prime.
pub(crate) struct TfheNtt {
    plan: Plan,
}

impl TfheNtt {
    pub(crate) fn new(n: usize, q: u64) -> Result<TfheNtt> {
        Plan::try_new(n, q)
            .map(|plan| TfheNtt { plan })
            .ok_or(Error::InvalidParameter {
                name: "NTT prime",
                value: q as i64,
                allowed: "a prime = 1 mod 2N",
            })
    }
}

impl Ntt for TfheNtt {
    #[inline]
    fn forward(&self, a: &mut [u64]) {
        self.plan.fwd(a);
    }
    #[inline]
    fn inverse(&self, a: &mut [u64]) {
        self.plan.inv(a);
        self.plan.normalize(a);
    }
    #[inline]
    fn mul_acc(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        self.plan.mul_accumulate(acc, a, b);
    }
}
