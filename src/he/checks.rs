//! Shared argument checks, so every backend refuses the same misuse with the
//! same error.

use super::{KeyId, Level, Scale};
use crate::he::OpKind;
use crate::he::error::{Error, Result};

/// `values` fit in `slots` and `level` is at most `max`.
pub(crate) fn encode_args(values: usize, slots: usize, level: Level, max: Level) -> Result<()> {
    if values > slots {
        return Err(Error::TooManyValues {
            given: values,
            slots,
        });
    }
    if level > max {
        return Err(Error::LevelOutOfRange {
            op: OpKind::Encode,
            requested: level,
            max,
        });
    }
    Ok(())
}

/// Two operands (or an operand and a key) of `op` under the same secret key.
#[inline]
pub(crate) fn same_key(op: OpKind, expected: KeyId, found: KeyId) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::KeyMismatch {
            op,
            expected,
            found,
        })
    }
}

/// Two operands of `op` at the same level.
pub(crate) fn same_level(op: OpKind, left: Level, right: Level) -> Result<()> {
    if left != right {
        return Err(Error::LevelMismatch { op, left, right });
    }
    Ok(())
}

/// Two operands of `op` at the same level and scale.
pub(crate) fn same_level_scale(
    op: OpKind,
    left: (Level, Scale),
    right: (Level, Scale),
) -> Result<()> {
    same_level(op, left.0, right.0)?;
    if !left.1.approx_eq(right.1) {
        return Err(Error::ScaleMismatch {
            op,
            left_log2: left.1.log2(),
            right_log2: right.1.log2(),
        });
    }
    Ok(())
}

/// The ciphertexts and weights of one row of
/// [`HeScheme::dot_scalar_many`](super::HeScheme::dot_scalar_many).
pub(crate) fn row_terms<'c, C, V: Copy>(
    cts: &[&'c C],
    row: &[(usize, V)],
) -> Result<(Vec<&'c C>, Vec<V>)> {
    let terms = row
        .iter()
        .map(|&(i, _)| {
            cts.get(i).copied().ok_or(Error::TermIndexOutOfRange {
                op: OpKind::CtScalarMul,
                index: i,
                len: cts.len(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((terms, row.iter().map(|&(_, w)| w).collect()))
}

/// Values of magnitude up to `2^magnitude_log2` times `scale` stay below
/// half the modulus `2^modulus_log2` of `level`.
pub(crate) fn scale_room(
    op: OpKind,
    level: Level,
    scale: Scale,
    magnitude_log2: f64,
    modulus_log2: f64,
) -> Result<()> {
    if scale.log2() + magnitude_log2 + 1.0 >= modulus_log2 {
        return Err(Error::ScaleOverflow {
            op,
            scale_log2: scale.log2(),
            modulus_log2,
            level,
        });
    }
    Ok(())
}

/// A drop from `current` to `target` goes down (or stays).
pub(crate) fn drop_target(current: Level, target: Level) -> Result<()> {
    if target > current {
        return Err(Error::LevelOutOfRange {
            op: OpKind::LevelDrop,
            requested: target,
            max: current,
        });
    }
    Ok(())
}
