//! Seeded random shifts of image batches while training.

use crate::error::{Error, Result};

/// Data augmentation of image batches while training: every sample of a
/// `[N, C, H, W]` batch is translated by a random whole-pixel offset (zero
/// fill), drawn from the trainer's seeded stream, so training stays
/// deterministic per seed. Evaluation never augments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Largest shift in pixels along each axis: offsets are uniform in
    /// `[-max_shift, max_shift]` per axis.
    pub max_shift: usize,
}

impl Augment {
    /// Random shifts of at most `max_shift` pixels.
    pub fn shifts(max_shift: usize) -> Augment {
        Augment { max_shift }
    }

    /// Shifts every sample of `x` (a `[N, C, H, W]` batch, row-major) by an
    /// offset drawn from `rng`; the channels of one sample move together.
    /// Inputs that are not images are refused.
    pub fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut impl rand::Rng) -> Result<()> {
        let &[n, c, h, w] = shape else {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: vec![0, 0, 0, 0],
                found: shape.to_vec(),
            });
        };
        if x.len() != n * c * h * w {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: shape.to_vec(),
                found: vec![x.len()],
            });
        }
        if self.max_shift == 0 {
            return Ok(());
        }
        let s = self.max_shift.min(i32::MAX as usize) as i32;
        let (hi, wi) = (h as isize, w as isize);
        let mut plane = vec![0.0f32; h * w];
        for sample in x.chunks_mut((c * h * w).max(1)) {
            let dy = rng.random_range(-s..=s) as isize;
            let dx = rng.random_range(-s..=s) as isize;
            if dy == 0 && dx == 0 {
                continue;
            }
            for ch in sample.chunks_mut((h * w).max(1)) {
                plane.copy_from_slice(ch);
                for i in 0..hi {
                    let si = i - dy;
                    for j in 0..wi {
                        let sj = j - dx;
                        ch[(i * wi + j) as usize] =
                            if (0..hi).contains(&si) && (0..wi).contains(&sj) {
                                plane[(si * wi + sj) as usize]
                            } else {
                                0.0
                            };
                    }
                }
            }
        }
        Ok(())
    }
}
