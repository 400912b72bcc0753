//! Input standardisation fitted on a training set and reused by the client.
//!
//! A [`Normalizer`] holds a mean and a standard deviation per feature (every
//! element of a sample) or per channel (the first sample dimension of
//! `[C, H, W]` images) and maps `x -> (x - mean) / std`. Fit it on the
//! training set only, normalise the training and test sets with it, save it
//! next to the model ([`Normalizer::to_bytes`]) and have the client apply
//! it to each sample before encryption: the encrypted network never sees
//! raw inputs, and the server needs no extra HE operation.

use serde::{Deserialize, Serialize};

use super::Dataset;
use crate::error::{DecodeError, Error, Result};
use crate::model::Tensor;

/// The first bytes of a serialised [`Normalizer`].
pub const NORMALIZER_MAGIC: [u8; 8] = *b"MOFHEInz";

/// The normaliser format version this build writes and reads.
pub const NORMALIZER_VERSION: u32 = 1;

/// Largest serialised normaliser accepted (64 MiB).
const MAX_BYTES: usize = 64 << 20;

const HEADER: usize = NORMALIZER_MAGIC.len() + 4;
const WHAT: &str = "normalizer";

/// A standard deviation below this is taken as 1 (a constant feature, e.g.
/// MNIST's border pixels, is only centred).
pub const MIN_STD: f32 = 1e-6;

/// What a mean / standard deviation is shared over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NormalizeOver {
    /// One per element of a sample (tabular features).
    Feature,
    /// One per channel, the first sample dimension (`[C, H, W]` images), over
    /// all positions.
    Channel,
}

/// Per-feature or per-channel `(x - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    over: NormalizeOver,
    sample_shape: Vec<usize>,
    mean: Vec<f32>,
    std: Vec<f32>,
}

fn bad_value(name: &'static str, value: f64, allowed: &'static str) -> Error {
    Error::InvalidValue {
        name,
        value,
        allowed,
    }
}

impl Normalizer {
    /// A normaliser with the given statistics: `mean` and `std` have one
    /// value per feature (`over = Feature`, `sample_shape.product()`
    /// values) or per channel (`over = Channel`, `sample_shape[0]` values),
    /// or a single value shared by all. Standard deviations must be
    /// positive and finite, means finite.
    pub fn new(
        over: NormalizeOver,
        sample_shape: &[usize],
        mean: &[f32],
        std: &[f32],
    ) -> Result<Normalizer> {
        let groups = group_count(over, sample_shape)?;
        let widen = |v: &[f32]| -> Result<Vec<f32>> {
            match v.len() {
                1 => Ok(vec![v[0]; groups]),
                n if n == groups => Ok(v.to_vec()),
                n => Err(Error::ShapeMismatch {
                    layer: 0,
                    expected: vec![groups],
                    found: vec![n],
                }),
            }
        };
        let (mean, std) = (widen(mean)?, widen(std)?);
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(bad_value("mean", f64::from(*m), "finite"));
        }
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(bad_value("std", f64::from(*s), "finite and > 0"));
        }
        Ok(Normalizer {
            over,
            sample_shape: sample_shape.to_vec(),
            mean,
            std,
        })
    }

    /// Fits the mean and standard deviation (population, over the samples
    /// and, per channel, the positions) of `train`'s inputs.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] for an empty set, [`Error::ShapeMismatch`]
    /// when `over = Channel` and the samples have no channel dimension.
    pub fn fit(train: &Dataset, over: NormalizeOver) -> Result<Normalizer> {
        if train.is_empty() {
            return Err(Error::EmptyInput {
                what: "training samples",
            });
        }
        let shape = train.sample_shape().to_vec();
        let groups = group_count(over, &shape)?;
        let per_sample: usize = shape.iter().product();
        let run = per_sample / groups.max(1);
        let mut sum = vec![0.0f64; groups];
        let mut sq = vec![0.0f64; groups];
        for sample in train.inputs().data().chunks_exact(per_sample.max(1)) {
            for (i, &v) in sample.iter().enumerate() {
                let g = group_of(over, i, run);
                sum[g] += f64::from(v);
                sq[g] += f64::from(v) * f64::from(v);
            }
        }
        let count = (train.len() * run) as f64;
        let mut mean = Vec::with_capacity(groups);
        let mut std = Vec::with_capacity(groups);
        for g in 0..groups {
            let m = sum[g] / count;
            let var = (sq[g] / count - m * m).max(0.0);
            mean.push(m as f32);
            let s = var.sqrt() as f32;
            std.push(if s.is_finite() && s >= MIN_STD {
                s
            } else {
                1.0
            });
        }
        Normalizer::new(over, &shape, &mean, &std)
    }

    /// What the statistics are shared over.
    pub fn over(&self) -> NormalizeOver {
        self.over
    }

    /// The per-sample shape it was fitted on.
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// The means (one per feature or per channel).
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The standard deviations (one per feature or per channel).
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// Normalises one sample in place (what a client does before
    /// encrypting it).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the sample has the wrong size.
    pub fn apply_sample(&self, sample: &mut [f32]) -> Result<()> {
        let per_sample: usize = self.sample_shape.iter().product();
        if sample.len() != per_sample {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: self.sample_shape.clone(),
                found: vec![sample.len()],
            });
        }
        let run = per_sample / self.mean.len().max(1);
        for (i, v) in sample.iter_mut().enumerate() {
            let g = group_of(self.over, i, run);
            *v = (*v - self.mean[g]) / self.std[g];
        }
        Ok(())
    }

    /// Normalises a batch `[N, ...sample shape]`.
    pub fn apply(&self, inputs: &Tensor) -> Result<Tensor> {
        if inputs.shape().get(1..) != Some(self.sample_shape.as_slice()) {
            return Err(Error::ShapeMismatch {
                layer: 0,
                expected: self.sample_shape.clone(),
                found: inputs.shape().get(1..).unwrap_or_default().to_vec(),
            });
        }
        let mut out = inputs.clone();
        let per_sample: usize = self.sample_shape.iter().product();
        for sample in out.data_mut().chunks_exact_mut(per_sample.max(1)) {
            self.apply_sample(sample)?;
        }
        Ok(out)
    }

    /// The data set with normalised inputs (targets unchanged).
    pub fn normalize(&self, data: &Dataset) -> Result<Dataset> {
        Ok(Dataset {
            inputs: self.apply(data.inputs())?,
            targets: data.targets().clone(),
        })
    }

    /// Serialises: magic [`NORMALIZER_MAGIC`], version
    /// [`NORMALIZER_VERSION`] (little-endian `u32`), bincode payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let payload = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|_| Error::Encode { what: WHAT })?;
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.extend_from_slice(&NORMALIZER_MAGIC);
        out.extend_from_slice(&NORMALIZER_VERSION.to_le_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Reads what [`Normalizer::to_bytes`] wrote; anything else (wrong
    /// magic or version, truncated, trailing or inconsistent data) is
    /// [`Error::Decode`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Normalizer> {
        let err = |reason| Error::Decode { what: WHAT, reason };
        if bytes.len() > MAX_BYTES {
            return Err(err(DecodeError::TooLarge {
                len: bytes.len() as u64,
                limit: MAX_BYTES as u64,
            }));
        }
        if bytes.len() < HEADER {
            return Err(err(if NORMALIZER_MAGIC.starts_with(bytes) {
                DecodeError::Malformed {
                    offset: bytes.len() as u64,
                }
            } else {
                DecodeError::BadMagic
            }));
        }
        if bytes[..NORMALIZER_MAGIC.len()] != NORMALIZER_MAGIC {
            return Err(err(DecodeError::BadMagic));
        }
        let mut v = [0u8; 4];
        v.copy_from_slice(&bytes[NORMALIZER_MAGIC.len()..HEADER]);
        let version = u32::from_le_bytes(v);
        if version != NORMALIZER_VERSION {
            return Err(err(DecodeError::Version {
                found: version,
                supported: NORMALIZER_VERSION,
            }));
        }
        let config = bincode::config::standard().with_limit::<MAX_BYTES>();
        let (decoded, used): (Normalizer, usize) =
            bincode::serde::decode_from_slice(&bytes[HEADER..], config).map_err(|_| {
                err(DecodeError::Malformed {
                    offset: HEADER as u64,
                })
            })?;
        if HEADER + used != bytes.len() {
            return Err(err(DecodeError::TrailingBytes {
                count: (bytes.len() - HEADER - used) as u64,
            }));
        }
        // Re-check the invariants `new` enforces.
        Normalizer::new(
            decoded.over,
            &decoded.sample_shape,
            &decoded.mean,
            &decoded.std,
        )
        .ok()
        .filter(|n| n.mean.len() == decoded.mean.len())
        .ok_or(err(DecodeError::NotConforming {
            what: "statistics do not fit the sample shape, or a std is not positive",
        }))
    }
}

/// Number of statistics for `over` on samples of `shape`.
fn group_count(over: NormalizeOver, shape: &[usize]) -> Result<usize> {
    let features = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n > 0 && n <= 1 << 31)
        .ok_or_else(|| {
            bad_value(
                "sample size",
                shape.iter().product::<usize>() as f64,
                "1..=2^31",
            )
        })?;
    match over {
        NormalizeOver::Feature => Ok(features),
        NormalizeOver::Channel => match shape {
            [c, _, ..] => Ok(*c),
            _ => Err(Error::ShapeMismatch {
                layer: 0,
                expected: vec![0, 0, 0],
                found: shape.to_vec(),
            }),
        },
    }
}

/// The statistic of element `i` of a sample (`run` elements per channel).
fn group_of(over: NormalizeOver, i: usize, run: usize) -> usize {
    match over {
        NormalizeOver::Feature => i,
        NormalizeOver::Channel => i / run.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> Dataset {
        // 3 samples of [2, 1, 2]: channel 0 holds 1..=6, channel 1 is 10.
        let x = vec![
            1.0, 2.0, 10.0, 10.0, //
            3.0, 4.0, 10.0, 10.0, //
            5.0, 6.0, 10.0, 10.0,
        ];
        Dataset::classification(Tensor::new(vec![3, 2, 1, 2], x).unwrap(), vec![0, 1, 0], 2)
            .unwrap()
    }

    #[test]
    fn per_channel_fit_and_apply() {
        let d = images();
        let n = Normalizer::fit(&d, NormalizeOver::Channel).unwrap();
        assert_eq!(n.mean(), [3.5, 10.0]);
        let s = (17.5f32 / 6.0).sqrt();
        assert!((n.std()[0] - s).abs() < 1e-6);
        assert_eq!(n.std()[1], 1.0, "a constant channel is only centred");
        let out = n.normalize(&d).unwrap();
        assert_eq!(out.labels(), d.labels());
        // Normalised channel 0 has mean 0, variance 1.
        let c0: Vec<f32> = out
            .inputs()
            .data()
            .chunks(4)
            .flat_map(|s| s[..2].to_vec())
            .collect();
        let mean: f32 = c0.iter().sum::<f32>() / 6.0;
        let var: f32 = c0.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 6.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
        assert!(out.inputs().data().chunks(4).all(|s| s[2] == 0.0));
    }

    #[test]
    fn per_feature_fit_and_given_statistics() {
        let d = images();
        let n = Normalizer::fit(&d, NormalizeOver::Feature).unwrap();
        assert_eq!(n.mean(), [3.0, 4.0, 10.0, 10.0]);
        let mut sample = [5.0, 0.0, 10.0, 11.0];
        n.apply_sample(&mut sample).unwrap();
        let s = (8.0f32 / 3.0).sqrt();
        assert!((sample[0] - 2.0 / s).abs() < 1e-6 && (sample[1] + 4.0 / s).abs() < 1e-6);
        assert_eq!(sample[2..], [0.0, 1.0]);
        assert!(n.apply_sample(&mut [0.0; 3]).is_err());
        // MNIST's usual statistics, shared.
        let m = Normalizer::new(NormalizeOver::Channel, &[1, 28, 28], &[0.1307], &[0.3081]);
        let m = m.unwrap();
        let mut px = vec![0.1307; 784];
        m.apply_sample(&mut px).unwrap();
        assert!(px.iter().all(|&v| v == 0.0));
        assert!(Normalizer::new(NormalizeOver::Feature, &[2], &[0.0], &[0.0]).is_err());
        assert!(Normalizer::new(NormalizeOver::Feature, &[2], &[0.0; 3], &[1.0]).is_err());
        assert!(Normalizer::new(NormalizeOver::Channel, &[4], &[0.0], &[1.0]).is_err());
        let empty = d.subset(&[]).unwrap();
        assert!(Normalizer::fit(&empty, NormalizeOver::Feature).is_err());
    }

    #[test]
    fn serialisation_round_trips_and_refuses_corruption() {
        let n = Normalizer::fit(&images(), NormalizeOver::Channel).unwrap();
        let bytes = n.to_bytes().unwrap();
        assert_eq!(&bytes[..8], &NORMALIZER_MAGIC);
        assert_eq!(Normalizer::from_bytes(&bytes).unwrap(), n);
        for len in 0..bytes.len() {
            assert!(Normalizer::from_bytes(&bytes[..len]).is_err(), "{len}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Normalizer::from_bytes(&long).is_err());
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(matches!(
            Normalizer::from_bytes(&v2),
            Err(Error::Decode {
                reason: DecodeError::Version { found: 2, .. },
                ..
            })
        ));
        // A zero std smuggled into the payload is refused.
        let mut bad = n.clone();
        bad.std[0] = 0.0;
        let bytes = bad.to_bytes().unwrap();
        assert!(Normalizer::from_bytes(&bytes).is_err());
    }
}
