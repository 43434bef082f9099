//! Seeded search of the Fig. 4 ensemble for a circuit that never comes to rest.
//!
//! For each seed, draw `ensemble::fig4(model, n, ‖W_r‖₂, seed)`, integrate from 0.01 (or the
//! optional sixth argument) in every variable with Dormand–Prince to `t = 4000` (2000 τ), and call the circuit *oscillating* when
//! the scaled right-hand side over the last quarter of the run never falls below 1e-3 and the
//! state still spans a range above 1e-2. The first such seed is printed with its circuit file.
//!
//! ```text
//! cargo run --release -p organics-core --example find_oscillating -- rectified 50 3 0 100
//! ```
//!
//! Found so far (2026-12-04): `rectified 20 3` → seed 12 (`examples/circuits/oscillating.json`);
//! `main 50 3` → seed 98 (`examples/circuits/oscillating_main50.json`, the first of seeds 0–98);
//! `rectified 50 3` → none of seeds 0–1799 (every one settles from 0.01); from 0.5, none of
//! seeds 0–599 oscillates and 319 of them leave the finite numbers. A wider search from 0.01
//! (each run stops at the first hit): seeds 1800–4228 → 4228 (`organics limit-cycle`: a stable
//! cycle, period 26.38 ms, largest amplitude 0.109; `examples/circuits/oscillating_rectified50.json`),
//! seeds 6800–10027 → 10027 (stable, period 57.38 ms, amplitude 0.040), seeds 11800–15055 →
//! none; 2 oscillators among 8913 seeds, none leaving the finite numbers.

use organics_core::VectorField;
use organics_core::ensemble;
use organics_core::integrate::{DormandPrince, Stepper};
use organics_core::params::Model;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = if args.get(1).map(String::as_str) == Some("main") {
        Model::Main
    } else {
        Model::Rectified
    };
    let parse = |k: usize, d: f64| args.get(k).and_then(|s| s.parse().ok()).unwrap_or(d);
    let n = parse(2, 50.0) as usize;
    let norm = parse(3, 3.0);
    let first = parse(4, 0.0) as u64;
    let count = parse(5, 100.0) as u64;
    // Optional: the initial value of every variable (default 0.01).
    let start = parse(6, 0.01);
    let t_end = 4000.0;
    for seed in first..first + count {
        let c = ensemble::fig4(model, n, norm, seed).expect("draw");
        let mut stepper = DormandPrince::new(1e-8, 1e-10, 0.1).expect("stepper");
        let mut x = vec![start; 2 * n];
        let mut k1 = vec![0.0; 2 * n];
        let mut t = 0.0;
        let mut min_res = f64::INFINITY;
        let mut lo = vec![f64::INFINITY; 2 * n];
        let mut hi = vec![f64::NEG_INFINITY; 2 * n];
        let mut failed = false;
        while t < t_end {
            c.eval(t, &x, &mut k1);
            if t > 0.75 * t_end {
                min_res = min_res.min(c.scaled_norm(&k1));
                for i in 0..2 * n {
                    lo[i] = lo[i].min(x[i]);
                    hi[i] = hi[i].max(x[i]);
                }
            }
            match stepper.step(&c, t, &mut x, &k1, t_end - t) {
                Ok(h) => t += h,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
            if x.iter().any(|v| !v.is_finite()) {
                failed = true;
                break;
            }
        }
        let span = (0..2 * n).map(|i| hi[i] - lo[i]).fold(0.0, f64::max);
        println!("seed {seed}: min residual {min_res:.3e}, span {span:.3e}, failed {failed}");
        if !failed && min_res > 1e-3 && span > 1e-2 {
            println!("{}", c.to_spec().to_json());
            return;
        }
    }
}
