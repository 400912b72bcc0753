//! Seeded synthetic data sets for tests and examples.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Dataset;
use crate::error::{Error, Result};
use crate::model::Tensor;
use crate::model::init::normal;

fn check(name: &'static str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::InvalidParameter {
            name,
            value: 0,
            allowed: "at least 1",
        });
    }
    Ok(())
}

/// `n` samples of `features` values drawn around `classes` random centres
/// (standard normal noise scaled by `spread`); labels are the centre index.
pub fn blobs(n: usize, features: usize, classes: usize, spread: f32, seed: u64) -> Result<Dataset> {
    check("features", features)?;
    check("classes", classes)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..classes * features)
        .map(|_| rng.random_range(-2.0f32..2.0))
        .collect();
    let mut x = Vec::with_capacity(n * features);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % classes;
        y.push(c);
        for f in 0..features {
            x.push(centres[c * features + f] + spread * normal(&mut rng));
        }
    }
    Dataset::classification(Tensor::new(vec![n, features], x)?, y, classes)
}

/// `n` images `[1, size, size]` with one bright horizontal (class 0) or
/// vertical (class 1) bar at a random position, plus noise of amplitude
/// `noise`.
pub fn bars(n: usize, size: usize, noise: f32, seed: u64) -> Result<Dataset> {
    check("size", size)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = vec![0.0f32; n * size * size];
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 2;
        let pos = rng.random_range(0..size);
        let img = &mut x[i * size * size..(i + 1) * size * size];
        for (k, v) in img.iter_mut().enumerate() {
            let (r, c) = (k / size, k % size);
            let on = if class == 0 { r == pos } else { c == pos };
            *v = if on { 1.0 } else { 0.0 } + noise * rng.random_range(-1.0f32..1.0);
        }
        y.push(class);
    }
    Dataset::classification(Tensor::new(vec![n, 1, size, size], x)?, y, 2)
}

/// `n` samples of `features` standard-normal inputs with targets
/// `W x + noise` for a random `[outputs, features]` matrix `W`.
pub fn linear(n: usize, features: usize, outputs: usize, noise: f32, seed: u64) -> Result<Dataset> {
    check("features", features)?;
    check("outputs", outputs)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<f32> = (0..outputs * features).map(|_| normal(&mut rng)).collect();
    let x: Vec<f32> = (0..n * features).map(|_| normal(&mut rng)).collect();
    let mut t = Vec::with_capacity(n * outputs);
    for s in 0..n {
        for o in 0..outputs {
            let dot: f32 = (0..features)
                .map(|f| w[o * features + f] * x[s * features + f])
                .sum();
            t.push(dot + noise * normal(&mut rng));
        }
    }
    Dataset::regression(
        Tensor::new(vec![n, features], x)?,
        Tensor::new(vec![n, outputs], t)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_seeded() {
        assert_eq!(
            blobs(30, 4, 3, 0.1, 1).unwrap(),
            blobs(30, 4, 3, 0.1, 1).unwrap()
        );
        assert_ne!(
            blobs(30, 4, 3, 0.1, 1).unwrap(),
            blobs(30, 4, 3, 0.1, 2).unwrap()
        );
        let b = bars(10, 6, 0.0, 3).unwrap();
        assert_eq!(b.inputs().shape(), &[10, 1, 6, 6]);
        assert_eq!(b.inputs().data().iter().sum::<f32>(), 60.0);
        let l = linear(20, 3, 2, 0.0, 4).unwrap();
        assert_eq!(l.len(), 20);
        assert!(blobs(3, 0, 1, 0.1, 0).is_err());
    }
}
