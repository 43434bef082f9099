//! The paper's conjecture for general W_r (docs/model.md#general-recurrence): the fraction of random Fig. 4-ensemble
//! circuits (N = 10, ‖z‖ = 1) whose simulated fixed point is stable, for several ‖W_r‖₂.
//!
//! The paper reports 100 % at ‖W_r‖₂ = 1 and 2 and failures at 3.
//!
//! `cargo run --release -p organics-lyapunov --example conjecture [TRIALS]` (default 100).

use organics_lyapunov::conjecture::{ConjectureOptions, conjecture_experiment, conjecture_table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let trials = match std::env::args().nth(1) {
        Some(t) => t.parse()?,
        None => 100,
    };
    let opts = ConjectureOptions {
        trials,
        ..ConjectureOptions::default()
    };
    let rows = conjecture_experiment(&opts)?;
    println!(
        "Main model, N = {}, {} circuits per norm, seeds {}..{}\n",
        opts.n,
        opts.trials,
        opts.seed,
        opts.seed + opts.trials as u64 - 1
    );
    print!("{}", conjecture_table(&rows));
    Ok(())
}
