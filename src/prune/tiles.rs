//! Tile bookkeeping for HE-PEx: count non-zero tiles, prune almost-empty
//! tiles, and expansion.
//!
//! Under tile packing a tile that is entirely zero is neither encoded nor
//! multiplied, while a tile with one non-zero costs as much as a full one.
//! So after permutation gathers the non-zeros, tiles whose density is at or
//! below a threshold (HE-PEx: 1/16) are zeroed, and every weight inside a
//! surviving tile becomes trainable again ([`expand`]): it costs nothing
//! more under HE and gives the retraining back capacity.

use super::blocks::{LayerBlocks, matrix};
use super::selection::drop_weights;
use crate::error::{Error, Result};
use crate::model::Network;
use crate::train::Masks;

/// Non-zero blocks (tiles, for tile shapes) per layer of `net` under
/// `blocks` (0 for layers that are not pruned).
pub fn nonzero_blocks(net: &Network, blocks: &LayerBlocks) -> Vec<usize> {
    (0..net.layers.len())
        .map(|i| {
            let (Some(grid), Some(w)) = (blocks.grid(net, i), matrix(&net.layers[i])) else {
                return 0;
            };
            let mut nz = vec![false; grid.count()];
            for (idx, b) in grid.assignment().into_iter().enumerate() {
                if w[idx] != 0.0 {
                    nz[b] = true;
                }
            }
            nz.iter().filter(|b| **b).count()
        })
        .collect()
}

/// Total blocks per layer of `net` under `blocks` (non-empty ones).
pub fn total_blocks(net: &Network, blocks: &LayerBlocks) -> Vec<usize> {
    (0..net.layers.len())
        .map(|i| {
            blocks
                .grid(net, i)
                .map(|g| g.sizes().iter().filter(|&&s| s > 0).count())
                .unwrap_or(0)
        })
        .collect()
}

/// Keeps the weights of blocks whose density (non-zeros / block size) is
/// above `threshold`; blocks at or below it are dropped whole. Layers not
/// in `blocks` keep their non-zeros.
pub fn prune_sparse(net: &Network, blocks: &LayerBlocks, threshold: f64) -> Result<Masks> {
    if !(0.0..=1.0).contains(&threshold) || threshold.is_nan() {
        return Err(Error::InvalidValue {
            name: "tile density threshold",
            value: threshold,
            allowed: "0..=1",
        });
    }
    let mut sel = Masks::from_nonzero(net);
    for i in 0..net.layers.len() {
        let (Some(grid), Some(w)) = (blocks.grid(net, i), matrix(&net.layers[i])) else {
            continue;
        };
        let assign = grid.assignment();
        let sizes = grid.sizes();
        let mut nz = vec![0usize; grid.count()];
        for (idx, &b) in assign.iter().enumerate() {
            if w[idx] != 0.0 {
                nz[b] += 1;
            }
        }
        let drop = assign
            .iter()
            .enumerate()
            .filter(|&(_, &b)| (nz[b] as f64) <= threshold * sizes[b] as f64)
            .map(|(idx, _)| idx);
        drop_weights(&mut sel, net, i, drop);
    }
    Ok(sel)
}

/// Expansion: every weight inside a block of `blocks` that holds a non-zero
/// is kept (trainable again); weights of all-zero blocks stay pruned. Layers
/// not in `blocks` keep their non-zeros.
pub fn expand(net: &Network, blocks: &LayerBlocks) -> Masks {
    let mut sel = Masks::from_nonzero(net);
    for i in 0..net.layers.len() {
        let (Some(grid), Some(w)) = (blocks.grid(net, i), matrix(&net.layers[i])) else {
            continue;
        };
        let assign = grid.assignment();
        let mut nz = vec![false; grid.count()];
        for (idx, &b) in assign.iter().enumerate() {
            if w[idx] != 0.0 {
                nz[b] = true;
            }
        }
        sel.set(i, assign.iter().map(|&b| nz[b]).collect());
    }
    sel
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dense, Layer, Tensor};
    use crate::prune::blocks::BlockShape;

    fn net() -> Network {
        // 4 x 4, 2 x 2 tiles: TL has 1 non-zero, TR 0, BL 4, BR 2.
        #[rustfmt::skip]
        let w = vec![
            1.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
            1.0, 1.0, 1.0, 0.0,
            1.0, 1.0, 0.0, 1.0,
        ];
        Network::new(
            vec![4],
            vec![Layer::Dense(Dense {
                weight: Tensor::new(vec![4, 4], w).unwrap(),
                bias: vec![0.0; 4],
            })],
        )
        .unwrap()
    }

    #[test]
    fn count_prune_expand() {
        let n = net();
        let b = LayerBlocks::uniform(&n, BlockShape::Tile { rows: 2, cols: 2 });
        assert_eq!(nonzero_blocks(&n, &b), vec![3]);
        assert_eq!(total_blocks(&n, &b), vec![4]);
        let sel = prune_sparse(&n, &b, 0.25).unwrap();
        assert_eq!(crate::prune::selection::kept(&sel, &n), 6);
        let mut m = n.clone();
        sel.apply_assign(&mut m).unwrap();
        assert_eq!(nonzero_blocks(&m, &b), vec![2]);
        let e = expand(&m, &b);
        assert_eq!(crate::prune::selection::kept(&e, &m), 8);
        assert!(prune_sparse(&n, &b, 2.0).is_err());
    }
}
