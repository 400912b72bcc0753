//! Probe: time one NTT of size 2^14 for a 40- and a 60-bit prime.
use std::time::Instant;
fn main() {
    for q in [1_099_510_054_913u64, 1_152_921_504_606_748_673u64] {
        let plan = tfhe_ntt::prime64::Plan::try_new(1 << 14, q).unwrap();
        let mut a: Vec<u64> = (0..1u64 << 14).map(|i| i * 7919 % q).collect();
        let s = Instant::now();
        for _ in 0..200 { plan.fwd(&mut a); plan.inv(&mut a); plan.normalize(&mut a); }
        println!("q bits {} fwd+inv {:.1} us ifma {}", 64 - q.leading_zeros(), s.elapsed().as_secs_f64() * 1e6 / 200.0, plan.use_ifma());
    }
}
