//! The doubling rotate-and-sum: slot `i` receives
//! `sum_{k < count} a[i + k * stride]` after `log2(count)` rotations by
//! `stride * 2^j` (`2^j < count`), each followed by one addition. Used by
//! [`super::HeScheme::rotate_and_sum`], the plan's `RotateSum`
//! instruction, its op counts and its key requirements: one definition of
//! the steps for all.

use super::error::Result;
use super::{HeScheme, Rotation};

/// The rotations of a rotate-and-sum of `count` terms `stride` apart, in
/// the order they are applied: `stride * 2^j` for every `2^j < count`.
pub(crate) fn doubling_steps(stride: i64, count: u64) -> impl Iterator<Item = Rotation> {
    std::iter::successors(Some(1i64), |s| s.checked_mul(2))
        .take_while(move |&s| (s as u64) < count)
        .map(move |s| Rotation(stride * s))
}

/// Rotate-and-sum `a` ([`doubling_steps`]): each rotation of the running
/// sum is added back to it.
pub(crate) fn rotate_sum<S: HeScheme>(
    scheme: &S,
    a: &S::Ciphertext,
    stride: i64,
    count: u64,
    keys: &S::EvalKeys,
) -> Result<S::Ciphertext> {
    let mut acc = a.clone();
    for r in doubling_steps(stride, count) {
        let rotated = scheme.rotate(&acc, r, keys)?;
        scheme.add_assign(&mut acc, &rotated)?;
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_up_to_the_count() {
        let steps = |stride, count| {
            doubling_steps(stride, count)
                .map(|r| r.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(steps(1, 1), Vec::<i64>::new());
        assert_eq!(steps(1, 2), vec![1]);
        assert_eq!(steps(3, 8), vec![3, 6, 12]);
        assert_eq!(steps(-2, 4), vec![-2, -4]);
        assert_eq!(steps(1, 5), vec![1, 2, 4]);
    }
}
