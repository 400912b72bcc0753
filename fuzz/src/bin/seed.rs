//! Writes the valid seeds of every target to `corpus/<target>/seed-<i>`
//! (run from `fuzz/`: `cargo run --release --bin seed`; an argument
//! names another corpus directory).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("corpus"), PathBuf::from);
    for t in mofhei_fuzz::TARGETS {
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
