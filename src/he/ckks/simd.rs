//! The SIMD level every CKKS kernel dispatches to: the best one the CPU
//! has (AVX-512, else AVX2, else scalar), or a lower one forced by the
//! environment variable `MOFHEI_SIMD` (`auto`, `avx512`, `avx2`, `scalar`),
//! read once per process. Forcing `avx2` on an AVX-512 machine measures and
//! tests the AVX2 kernels there.
//!
//! Kernels written as `pulp` operations dispatch through [`arch`]; the NTT
//! and the IFMA kernels, which pick their own instruction sets, ask
//! [`level`].

use std::sync::OnceLock;

/// An instruction-set level, ordered from the lowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SimdLevel {
    /// Plain 64-bit code, no vector extension assumed.
    Scalar,
    /// x86-64-v3: AVX2 (with FMA, BMI2).
    Avx2,
    /// x86-64-v4: AVX-512 F/BW/CD/DQ/VL, and IFMA where the CPU has it.
    Avx512,
}

impl SimdLevel {
    /// Every level the CPU supports, lowest first (`Scalar` always).
    pub(crate) fn available() -> Vec<SimdLevel> {
        let best = SimdLevel::detect();
        [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .filter(|&l| l <= best)
            .collect()
    }

    /// The best level the CPU supports.
    fn detect() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            if pulp::x86::V4::try_new().is_some() {
                return SimdLevel::Avx512;
            }
            if pulp::x86::V3::try_new().is_some() {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Scalar
    }

    /// The level named by `MOFHEI_SIMD` (`None` for `auto`, unset or an
    /// unknown value).
    fn requested(value: Option<&str>) -> Option<SimdLevel> {
        match value?.trim().to_ascii_lowercase().as_str() {
            "scalar" | "none" => Some(SimdLevel::Scalar),
            "avx2" | "v3" => Some(SimdLevel::Avx2),
            "avx512" | "avx-512" | "v4" => Some(SimdLevel::Avx512),
            _ => None,
        }
    }

    /// The `pulp` dispatcher for this level (capped at what the CPU has).
    pub(crate) fn arch(self) -> pulp::Arch {
        #[cfg(target_arch = "x86_64")]
        {
            if self >= SimdLevel::Avx512
                && let Some(simd) = pulp::x86::V4::try_new()
            {
                return pulp::Arch::V4(simd);
            }
            if self >= SimdLevel::Avx2
                && let Some(simd) = pulp::x86::V3::try_new()
            {
                return pulp::Arch::V3(simd);
            }
        }
        pulp::Arch::Scalar
    }
}

/// The process's level: the CPU's best, lowered by `MOFHEI_SIMD` (read on
/// the first call).
pub(crate) fn level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = SimdLevel::detect();
        let var = std::env::var("MOFHEI_SIMD").ok();
        SimdLevel::requested(var.as_deref()).map_or(best, |l| l.min(best))
    })
}

/// The `pulp` dispatcher for the process's [`level`].
#[inline]
pub(crate) fn arch() -> pulp::Arch {
    level().arch()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_levels_are_capped() {
        assert_eq!(SimdLevel::requested(Some("AVX2")), Some(SimdLevel::Avx2));
        assert_eq!(
            SimdLevel::requested(Some("scalar")),
            Some(SimdLevel::Scalar)
        );
        assert_eq!(
            SimdLevel::requested(Some("avx512")),
            Some(SimdLevel::Avx512)
        );
        assert_eq!(SimdLevel::requested(Some("auto")), None);
        assert_eq!(SimdLevel::requested(None), None);
        let avail = SimdLevel::available();
        assert_eq!(avail[0], SimdLevel::Scalar);
        assert!(avail.contains(&level()));
        assert!(matches!(SimdLevel::Scalar.arch(), pulp::Arch::Scalar));
    }
}
