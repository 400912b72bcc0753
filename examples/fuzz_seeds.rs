//! Writes the valid seeds of every fuzz target (`tests/fuzz_targets/mod.rs`)
//! to `<dir>/<target>/seed-<i>`, the corpora `cargo fuzz run` starts from:
//!
//! ```sh
//! cargo run --example fuzz_seeds --features bfv -- fuzz/corpus
//! ```

#[path = "../tests/fuzz_targets/mod.rs"]
mod fuzz_targets;

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("fuzz/corpus"), PathBuf::from);
    for t in fuzz_targets::TARGETS {
        let dir = root.join(t.name);
        std::fs::create_dir_all(&dir)?;
        let seeds = (t.seeds)();
        let mut bytes = 0;
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s)?;
            bytes += s.len();
        }
        println!("{:24} {} seeds, {bytes} bytes", t.name, seeds.len());
    }
    Ok(())
}
