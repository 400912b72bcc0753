//! Data sets: a [`Dataset`] type (inputs `[N, ...]` plus class labels or
//! target values), the embedded digits set (8x8 and upsampled to 32x32),
//! loaders for IDX files (MNIST / Fashion-MNIST, raw or gzip, see [`idx`])
//! and CSV tables (see [`csv`]), seeded synthetic sets for tests
//! ([`synthetic`]), seeded shuffling, splitting and batching, and a
//! [`Normalizer`] fitted on training data for the client to apply before
//! encryption ([`normalize`]).
//!
//! The digits set is the UCI "Optical Recognition of Handwritten Digits"
//! test set (E. Alpaydin, C. Kaynak, CC BY 4.0); see `data/README.md`.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{DecodeError, Error, Result};
use crate::model::Tensor;

pub mod csv;
pub mod idx;
pub mod normalize;
pub mod synthetic;

pub use normalize::{NormalizeOver, Normalizer};

/// The embedded digits CSV (label, then 64 pixels 0..16).
const DIGITS_CSV: &str = include_str!("../../data/digits.csv");

/// What a data set's samples are labelled with.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class index per sample, each `< classes`.
    Classes {
        /// The labels.
        labels: Vec<usize>,
        /// Number of classes.
        classes: usize,
    },
    /// Real-valued targets `[N, ...]` (regression, autoencoders).
    Values(Tensor),
}

/// Samples (`inputs`, `[N, ...sample shape]`, e.g. NCHW images) with their
/// targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    inputs: Tensor,
    targets: Targets,
}

fn invalid(name: &'static str, value: f64, allowed: &'static str) -> Error {
    Error::InvalidValue {
        name,
        value,
        allowed,
    }
}

impl Dataset {
    /// A classification set; `labels[i] < classes` and one label per sample.
    pub fn classification(inputs: Tensor, labels: Vec<usize>, classes: usize) -> Result<Dataset> {
        let n = inputs.shape().first().copied().unwrap_or(0);
        if inputs.shape().is_empty() || labels.len() != n {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: vec![labels.len()],
                found: inputs.shape().to_vec(),
            });
        }
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(invalid("label", *bad as f64, "below the number of classes"));
        }
        Ok(Dataset {
            inputs,
            targets: Targets::Classes { labels, classes },
        })
    }

    /// A regression set: `targets` is `[N, ...]` with the same `N` as `inputs`.
    pub fn regression(inputs: Tensor, targets: Tensor) -> Result<Dataset> {
        let n = inputs.shape().first().copied();
        if n.is_none() || targets.shape().first().copied() != n {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: inputs.shape().to_vec(),
                found: targets.shape().to_vec(),
            });
        }
        Ok(Dataset {
            inputs,
            targets: Targets::Values(targets),
        })
    }

    /// The digits set, 8x8 images as `[1797, 1, 8, 8]`, values in `[0, 1]`,
    /// 10 classes (embedded; no file needed).
    pub fn digits_8x8() -> Dataset {
        // The embedded file is known to parse; an error here would be a
        // build defect, so fall back to an empty set rather than panic.
        let opts = csv::CsvOptions {
            label_column: Some(0),
            ..csv::CsvOptions::default()
        };
        match csv::parse(DIGITS_CSV, &opts).and_then(|d| d.scale(1.0 / 16.0).reshape(&[1, 8, 8])) {
            Ok(d) => d,
            Err(_) => Dataset {
                inputs: Tensor::zeros(vec![0, 1, 8, 8]),
                targets: Targets::Classes {
                    labels: Vec::new(),
                    classes: 10,
                },
            },
        }
    }

    /// The digits set upsampled to 32x32 (each pixel repeated as a 4x4
    /// block): `[1797, 1, 32, 32]`, values in `[0, 1]` — the input size of
    /// MOFHEI's LeNet.
    pub fn digits_32x32() -> Dataset {
        let d = Dataset::digits_8x8();
        d.upsample(4).unwrap_or(d)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.shape().first().copied().unwrap_or(0)
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inputs `[N, ...]`.
    pub fn inputs(&self) -> &Tensor {
        &self.inputs
    }

    /// The targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// The per-sample input shape.
    pub fn sample_shape(&self) -> &[usize] {
        &self.inputs.shape()[1..]
    }

    /// Class labels, if this is a classification set.
    pub fn labels(&self) -> Option<&[usize]> {
        match &self.targets {
            Targets::Classes { labels, .. } => Some(labels),
            Targets::Values(_) => None,
        }
    }

    /// Number of classes, if this is a classification set.
    pub fn classes(&self) -> Option<usize> {
        match &self.targets {
            Targets::Classes { classes, .. } => Some(*classes),
            Targets::Values(_) => None,
        }
    }

    /// Into inputs and targets.
    pub fn into_parts(self) -> (Tensor, Targets) {
        (self.inputs, self.targets)
    }

    /// The samples at `indices` (in that order; repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        let n = self.len();
        if let Some(bad) = indices.iter().find(|&&i| i >= n) {
            return Err(invalid("index", *bad as f64, "below the number of samples"));
        }
        Ok(Dataset {
            inputs: gather(&self.inputs, indices),
            targets: match &self.targets {
                Targets::Classes { labels, classes } => Targets::Classes {
                    labels: indices.iter().map(|&i| labels[i]).collect(),
                    classes: *classes,
                },
                Targets::Values(t) => Targets::Values(gather(t, indices)),
            },
        })
    }

    /// A seeded permutation of `0..len`.
    pub fn permutation(&self, seed: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        idx
    }

    /// The samples in a seeded random order.
    pub fn shuffled(&self, seed: u64) -> Dataset {
        let idx = self.permutation(seed);
        self.subset(&idx).unwrap_or_else(|_| self.clone())
    }

    /// A seeded random split: the second part holds `round(fraction * N)`
    /// samples, the first the rest (e.g. `split(0.2, seed)` gives
    /// train/test 80/20).
    pub fn split(&self, fraction: f32, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(invalid("fraction", f64::from(fraction), "0..=1"));
        }
        let idx = self.permutation(seed);
        let k = ((self.len() as f64) * f64::from(fraction)).round() as usize;
        let (a, b) = idx.split_at(self.len() - k.min(self.len()));
        Ok((self.subset(a)?, self.subset(b)?))
    }

    /// Consecutive batches of at most `size` samples (the last may be
    /// shorter); shuffle first for random batches.
    pub fn batches(&self, size: usize) -> impl Iterator<Item = Dataset> + '_ {
        let size = size.max(1);
        (0..self.len()).step_by(size).filter_map(move |s| {
            let idx: Vec<usize> = (s..(s + size).min(self.len())).collect();
            self.subset(&idx).ok()
        })
    }

    /// The same samples with inputs reshaped to `[N, ...shape]`.
    pub fn reshape(self, shape: &[usize]) -> Result<Dataset> {
        let n = self.len();
        let (old, data) = self.inputs.into_parts();
        let mut s = vec![n];
        s.extend_from_slice(shape);
        let inputs = Tensor::new(s, data).map_err(|_| Error::ShapeMismatch {
            layer: 0,
            expected: shape.to_vec(),
            found: old[1..].to_vec(),
        })?;
        Ok(Dataset {
            inputs,
            targets: self.targets,
        })
    }

    /// The same samples with inputs flattened to `[N, F]`.
    pub fn flatten(self) -> Dataset {
        let f = self.sample_shape().iter().product::<usize>();
        let targets = self.targets.clone();
        match self.reshape(&[f]) {
            Ok(d) => d,
            // unreachable: the element count is unchanged
            Err(_) => Dataset {
                inputs: Tensor::zeros(vec![0, f]),
                targets,
            },
        }
    }

    /// Multiplies every input value by `factor`.
    pub fn scale(mut self, factor: f32) -> Dataset {
        self.inputs.data_mut().iter_mut().for_each(|v| *v *= factor);
        self
    }

    /// An autoencoder set: targets are the inputs, flattened to `[N, F]`.
    pub fn to_autoencoder(&self) -> Dataset {
        let n = self.len();
        let f = self.sample_shape().iter().product::<usize>();
        let targets = Tensor::new(vec![n, f], self.inputs.data().to_vec())
            .unwrap_or_else(|_| Tensor::zeros(vec![n, f]));
        Dataset {
            inputs: self.inputs.clone(),
            targets: Targets::Values(targets),
        }
    }

    /// Nearest-neighbour upsampling of `[N, C, H, W]` images by `factor`
    /// (each pixel becomes a `factor x factor` block).
    pub fn upsample(&self, factor: usize) -> Result<Dataset> {
        let s = self.inputs.shape();
        if s.len() != 4 || factor == 0 {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: vec![0, 0, 0, 0],
                found: s.to_vec(),
            });
        }
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        let (Some(oh), Some(ow)) = (h.checked_mul(factor), w.checked_mul(factor)) else {
            return Err(invalid(
                "factor",
                factor as f64,
                "a size that fits in memory",
            ));
        };
        let Some(total) = crate::model::checked_product(&[n, c, oh, ow]) else {
            return Err(invalid(
                "factor",
                factor as f64,
                "a size that fits in memory",
            ));
        };
        let mut out = vec![0.0f32; total];
        let x = self.inputs.data();
        for p in 0..n * c {
            for i in 0..oh {
                for j in 0..ow {
                    out[(p * oh + i) * ow + j] = x[(p * h + i / factor) * w + j / factor];
                }
            }
        }
        Ok(Dataset {
            inputs: Tensor::new(vec![n, c, oh, ow], out)?,
            targets: self.targets.clone(),
        })
    }

    /// Zero-pads `[N, C, H, W]` images by `pad` pixels on every side (MNIST
    /// 28x28 -> 32x32 with `pad = 2`, as LeNet expects).
    pub fn pad(&self, pad: usize) -> Result<Dataset> {
        let s = self.inputs.shape();
        if s.len() != 4 {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: vec![0, 0, 0, 0],
                found: s.to_vec(),
            });
        }
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        let grow = |d: usize| pad.checked_mul(2).and_then(|p2| d.checked_add(p2));
        let (Some(oh), Some(ow)) = (grow(h), grow(w)) else {
            return Err(invalid("pad", pad as f64, "a size that fits in memory"));
        };
        let Some(total) = crate::model::checked_product(&[n, c, oh, ow]) else {
            return Err(invalid("pad", pad as f64, "a size that fits in memory"));
        };
        let mut out = vec![0.0f32; total];
        let x = self.inputs.data();
        for p in 0..n * c {
            for i in 0..h {
                let dst = (p * oh + i + pad) * ow + pad;
                out[dst..dst + w].copy_from_slice(&x[(p * h + i) * w..(p * h + i + 1) * w]);
            }
        }
        Ok(Dataset {
            inputs: Tensor::new(vec![n, c, oh, ow], out)?,
            targets: self.targets.clone(),
        })
    }
}

/// Rows `indices` of a `[N, ...]` tensor.
pub(crate) fn gather(t: &Tensor, indices: &[usize]) -> Tensor {
    let mut shape = t.shape().to_vec();
    let n = shape.first().copied().unwrap_or(0);
    let row = t.len().checked_div(n).unwrap_or(0);
    let mut data = Vec::with_capacity(indices.len() * row);
    for &i in indices {
        data.extend_from_slice(&t.data()[i * row..(i + 1) * row]);
    }
    if let Some(first) = shape.first_mut() {
        *first = indices.len();
    }
    Tensor::new(shape, data).unwrap_or_else(|_| Tensor::zeros(vec![0]))
}

/// A data-set error.
pub(crate) fn dataset_err(what: &'static str, reason: DecodeError) -> Error {
    Error::Dataset { what, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_embedded_and_upsampled() {
        let d = Dataset::digits_8x8();
        assert_eq!(d.inputs().shape(), &[1797, 1, 8, 8]);
        assert_eq!(d.classes(), Some(10));
        assert!(d.inputs().data().iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(d.labels().unwrap()[0], 0);
        // the first image's first row in the CSV is 0,0,5,13,9,1,0,0
        assert_eq!(d.inputs().data()[2], 5.0 / 16.0);
        let big = Dataset::digits_32x32();
        assert_eq!(big.inputs().shape(), &[1797, 1, 32, 32]);
        let x = big.inputs().data();
        // pixel (0, 2) of the 8x8 covers rows 0..4, cols 8..12 of the 32x32
        for i in 0..4 {
            for j in 8..12 {
                assert_eq!(x[i * 32 + j], 5.0 / 16.0);
            }
        }
        let counts = d.labels().unwrap().iter().fold([0usize; 10], |mut c, &l| {
            c[l] += 1;
            c
        });
        assert!(counts.iter().all(|&c| c > 170));
    }

    #[test]
    fn split_shuffle_batches_are_seeded() {
        let d = Dataset::digits_8x8().flatten();
        let (a, b) = d.split(0.25, 3).unwrap();
        assert_eq!(a.len() + b.len(), 1797);
        assert_eq!(b.len(), 449);
        let (a2, b2) = d.split(0.25, 3).unwrap();
        assert_eq!(a, a2);
        assert_eq!(b, b2);
        let (a3, _) = d.split(0.25, 4).unwrap();
        assert_ne!(a, a3);
        let sizes: Vec<usize> = a.batches(500).map(|b| b.len()).collect();
        assert_eq!(sizes, vec![500, 500, 348]);
        assert!(d.split(1.5, 0).is_err());
        assert!(d.subset(&[5000]).is_err());
        let img = Dataset::digits_8x8();
        assert!(img.upsample(usize::MAX / 4).is_err());
        assert!(img.pad(usize::MAX / 2).is_err());
        let ae = d.to_autoencoder();
        assert!(matches!(ae.targets(), Targets::Values(t) if t.shape() == [1797, 64]));
        let p = Dataset::digits_8x8().pad(2).unwrap();
        assert_eq!(p.sample_shape(), &[1, 12, 12]);
        assert_eq!(p.inputs().data()[2 * 12 + 2 + 2], 5.0 / 16.0);
    }

    #[test]
    fn constructors_check_sizes() {
        assert!(Dataset::classification(Tensor::zeros(vec![3, 2]), vec![0, 1], 2).is_err());
        assert!(Dataset::classification(Tensor::zeros(vec![2, 2]), vec![0, 2], 2).is_err());
        assert!(Dataset::regression(Tensor::zeros(vec![2, 2]), Tensor::zeros(vec![3, 1])).is_err());
        assert!(Dataset::regression(Tensor::zeros(vec![2, 2]), Tensor::zeros(vec![2, 1])).is_ok());
    }
}
