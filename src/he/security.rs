//! The 128-bit security limits every real backend's parameter builder checks.
//!
//! The HomomorphicEncryption.org standard (v1.1, table for a ternary secret,
//! classical 128-bit security) gives, for each ring degree N, the largest
//! total modulus log2(QP) (ciphertext modulus times special primes) that
//! still reaches 128 bits of security:
//!
//! | N | max log2(QP) |
//! |---|---|
//! | 2^10 | 27 |
//! | 2^11 | 54 |
//! | 2^12 | 109 |
//! | 2^13 | 218 |
//! | 2^14 | 438 |
//! | 2^15 | 881 |
//! | 2^16 | 1762 (not in the standard; a conservative doubling of 2^15, below the lattice-estimator figures other libraries use) |

use crate::he::error::{Error, Result};

/// `(log2 N, max log2(QP))` pairs at 128-bit security, ternary secret.
pub const HE_STANDARD_128_TERNARY: [(u32, u32); 7] = [
    (10, 27),
    (11, 54),
    (12, 109),
    (13, 218),
    (14, 438),
    (15, 881),
    (16, 1762),
];

/// The largest total modulus (bits) allowed for ring degree `2^log_n` at
/// 128-bit security, or `None` if the degree is outside the table.
pub fn max_log_qp_128(log_n: u32) -> Option<u32> {
    HE_STANDARD_128_TERNARY
        .iter()
        .find(|(l, _)| *l == log_n)
        .map(|(_, q)| *q)
}

/// Checks that a ring degree `2^log_n` with a total modulus of `log_qp` bits
/// reaches 128-bit security; the error names the limit.
pub fn check_128_bit(log_n: u32, log_qp: u32) -> Result<()> {
    let max = max_log_qp_128(log_n).ok_or(Error::InvalidParameter {
        name: "log2(N)",
        value: i64::from(log_n),
        allowed: "10..=16",
    })?;
    if log_qp > max {
        return Err(Error::InsecureParameters {
            log_n,
            log_qp,
            max_log_qp: max,
        });
    }
    Ok(())
}

/// The smallest `log2 N` whose 128-bit limit admits `log_qp` bits, if any.
pub fn min_log_n_for(log_qp: u32) -> Option<u32> {
    HE_STANDARD_128_TERNARY
        .iter()
        .find(|(_, q)| *q >= log_qp)
        .map(|(l, _)| *l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_limits() {
        assert!(check_128_bit(14, 438).is_ok());
        assert!(matches!(
            check_128_bit(14, 439),
            Err(Error::InsecureParameters {
                log_n: 14,
                log_qp: 439,
                max_log_qp: 438
            })
        ));
        assert!(check_128_bit(9, 10).is_err());
        assert_eq!(min_log_n_for(200), Some(13));
        assert_eq!(min_log_n_for(400), Some(14));
        assert_eq!(min_log_n_for(5000), None);
    }
}
