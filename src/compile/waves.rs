//! Scheduling: dead-code removal, a depth-first order from the outputs (so a
//! pool window's four products are squared and summed right after they are
//! computed, not after the whole layer), waves of independent instructions
//! for parallel execution, and the wave after which each value dies.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::plan::{Step, ValueId, Wave};

pub(super) struct Scheduled {
    pub steps: Vec<Step>,
    pub waves: Vec<Wave>,
    pub peak_live: usize,
    pub peak_live_streamed: usize,
}

pub(super) fn schedule(
    steps: &[Step],
    n_values: usize,
    n_inputs: u32,
    outputs: &[ValueId],
    width: usize,
) -> Scheduled {
    const NONE: usize = usize::MAX;
    let mut producer = vec![NONE; n_values];
    for (i, s) in steps.iter().enumerate() {
        for o in s.instr.outputs() {
            producer[o as usize] = i;
        }
    }
    let inputs: Vec<Vec<ValueId>> = steps.iter().map(|s| s.instr.inputs()).collect();

    // Dead code: keep a step iff one of its outputs is needed.
    let mut needed = vec![false; n_values];
    for &o in outputs {
        needed[o as usize] = true;
    }
    let mut keep = vec![false; steps.len()];
    for i in (0..steps.len()).rev() {
        if steps[i].instr.outputs().iter().any(|&o| needed[o as usize]) {
            keep[i] = true;
            for &v in &inputs[i] {
                needed[v as usize] = true;
            }
        }
    }

    // Locality key: the smallest input id a step depends on (transitively),
    // e.g. the top-left corner of a convolution output's receptive field.
    // Children are visited in key order, so a layer is computed window by
    // window across channels and the previous layer's values die early.
    let mut key = vec![usize::MAX; steps.len()];
    for i in 0..steps.len() {
        key[i] = inputs[i]
            .iter()
            .map(|&v| match producer[v as usize] {
                NONE => v as usize,
                p => key[p],
            })
            .min()
            .unwrap_or(usize::MAX);
    }
    let kids: Vec<Vec<usize>> = inputs
        .iter()
        .map(|ins| {
            let mut k: Vec<usize> = ins
                .iter()
                .map(|&v| producer[v as usize])
                .filter(|&p| p != NONE)
                .collect();
            k.sort_by_key(|&p| (key[p], p));
            k.dedup();
            k
        })
        .collect();

    // Depth-first post-order from the outputs gives each step a priority.
    let mut prio = vec![usize::MAX; steps.len()];
    let mut next = 0usize;
    let mut visited = vec![false; steps.len()];
    for &o in outputs {
        let root = producer[o as usize];
        if root == NONE || visited[root] {
            continue;
        }
        // Stack of (step, index of the next child to visit).
        let mut stack = vec![(root, 0usize)];
        visited[root] = true;
        while let Some(&mut (s, ref mut k)) = stack.last_mut() {
            if *k < kids[s].len() {
                let p = kids[s][*k];
                *k += 1;
                if !visited[p] {
                    visited[p] = true;
                    stack.push((p, 0));
                }
            } else {
                prio[s] = next;
                next += 1;
                stack.pop();
            }
        }
    }

    // List scheduling in waves of up to `width` ready steps, lowest priority first.
    let mut pending = vec![0usize; steps.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n_values];
    for i in (0..steps.len()).filter(|&i| keep[i]) {
        for &v in &inputs[i] {
            if producer[v as usize] != NONE {
                pending[i] += 1;
            }
            users[v as usize].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<(usize, usize)>> = (0..steps.len())
        .filter(|&i| keep[i] && pending[i] == 0)
        .map(|i| Reverse((prio[i], i)))
        .collect();
    let mut order: Vec<usize> = Vec::new();
    let mut wave_ends: Vec<usize> = Vec::new();
    while !ready.is_empty() {
        let mut wave = Vec::new();
        while wave.len() < width {
            match ready.pop() {
                Some(Reverse((_, i))) => wave.push(i),
                None => break,
            }
        }
        for &i in &wave {
            for o in steps[i].instr.outputs() {
                for &u in &users[o as usize] {
                    pending[u] -= 1;
                    if pending[u] == 0 {
                        ready.push(Reverse((prio[u], u)));
                    }
                }
            }
        }
        order.extend(wave);
        wave_ends.push(order.len());
    }

    // Last wave that reads each value; values never read die where they are made.
    let mut wave_of = vec![0usize; steps.len()];
    let mut start = 0usize;
    for (w, &end) in wave_ends.iter().enumerate() {
        for &i in &order[start..end] {
            wave_of[i] = w;
        }
        start = end;
    }
    let mut last: Vec<Option<usize>> = vec![None; n_values];
    for (v, l) in last.iter_mut().enumerate().take(n_inputs as usize) {
        let _ = v;
        *l = Some(0);
    }
    for &i in &order {
        for o in steps[i].instr.outputs() {
            last[o as usize] = Some(wave_of[i]);
        }
    }
    for &i in &order {
        for &v in &inputs[i] {
            let w = wave_of[i];
            let l = &mut last[v as usize];
            *l = Some(l.map_or(w, |x| x.max(w)));
        }
    }
    let mut is_output = vec![false; n_values];
    for &o in outputs {
        is_output[o as usize] = true;
    }
    let mut frees: Vec<Vec<ValueId>> = vec![Vec::new(); wave_ends.len()];
    for (v, l) in last.iter().enumerate() {
        if let Some(w) = *l
            && !is_output[v]
            && let Some(f) = frees.get_mut(w)
        {
            f.push(v as ValueId);
        }
    }
    // Inputs first read in each wave (streamed runs fetch them just before).
    let mut loads: Vec<Vec<ValueId>> = vec![Vec::new(); wave_ends.len()];
    let mut first: Vec<Option<usize>> = vec![None; n_inputs as usize];
    for &i in &order {
        for &v in &inputs[i] {
            if let Some(f) = first.get_mut(v as usize) {
                let w = wave_of[i];
                *f = Some(f.map_or(w, |x| x.min(w)));
            }
        }
    }
    for (v, f) in first.iter().enumerate() {
        if let Some(w) = f {
            loads[*w].push(v as ValueId);
        }
    }
    let mut peaks = [0usize; 2];
    for (k, peak) in peaks.iter_mut().enumerate() {
        let streamed = k == 1;
        let mut live = if streamed { 0 } else { n_inputs as usize };
        *peak = live;
        let mut start = 0usize;
        for (w, &end) in wave_ends.iter().enumerate() {
            if streamed {
                live += loads[w].len();
            }
            live += order[start..end]
                .iter()
                .map(|&i| steps[i].instr.outputs().len())
                .sum::<usize>();
            *peak = (*peak).max(live);
            // A streamed run never loads an input nothing reads (a pruned
            // input tile), so it has nothing to free.
            live -= frees[w]
                .iter()
                .filter(|&&v| !streamed || first.get(v as usize).is_none_or(|f| f.is_some()))
                .count();
            start = end;
        }
    }
    let waves = wave_ends
        .iter()
        .zip(frees)
        .zip(loads)
        .map(|((&end, frees), loads)| Wave {
            end: end as u32,
            frees,
            loads,
        })
        .collect();
    Scheduled {
        steps: order.into_iter().map(|i| steps[i].clone()).collect(),
        waves,
        peak_live: peaks[0],
        peak_live_streamed: peaks[1],
    }
}
