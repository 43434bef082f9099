//! The full stability report (steady state, analytic Jacobian, balancing, eigenvalues, verdict)
//! for circuits with W_r = I at n = 32, 128, 512 (Jacobians of 64, 256 and 1024 rows).
//!
//! Run briefly with `cargo bench -p organics-lyapunov --bench stability -- --quick`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use organics_core::{Model, ensemble};
use organics_lyapunov::stability;
use std::hint::black_box;

fn bench_stability(c: &mut Criterion) {
    // Single-threaded faer, as the workspace does (design.md); the report is per circuit.
    faer::set_global_parallelism(faer::Par::Seq);
    let mut group = c.benchmark_group("stability_report");
    group.sample_size(10);
    for n in [32usize, 128, 512] {
        let circuit = ensemble::theorem(Model::Main, n, 42).expect("valid ensemble circuit");
        group.bench_with_input(BenchmarkId::from_parameter(n), &circuit, |bch, circuit| {
            bch.iter(|| stability(black_box(circuit)).expect("stable report"));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_stability);
criterion_main!(benches);
