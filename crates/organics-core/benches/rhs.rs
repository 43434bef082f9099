//! Right-hand side and Jacobian evaluation at n ∈ {32, 128, 512} (Fig. 4 ensemble circuits).
//! Both are O(n²): one pass over W_r and one over W (rhs), or a 2n × 2n fill (Jacobian).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use organics_core::ensemble;
use organics_core::params::Model;
use std::hint::black_box;

fn rhs(c: &mut Criterion) {
    let mut g = c.benchmark_group("rhs");
    for n in [32usize, 128, 512] {
        let circuit = ensemble::fig4(Model::Main, n, 1.0, 1).unwrap();
        let x = vec![0.3; 2 * n];
        let mut f = vec![0.0; 2 * n];
        // Two n × n matrix-vector products: 4 n² flops.
        g.throughput(Throughput::Elements((4 * n * n) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| circuit.rhs(black_box(&x), black_box(&mut f)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("jacobian");
    for n in [32usize, 128, 512] {
        let circuit = ensemble::fig4(Model::Main, n, 1.0, 1).unwrap();
        let x = vec![0.3; 2 * n];
        let mut j = faer::Mat::zeros(2 * n, 2 * n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| circuit.jacobian_into(black_box(&x), j.as_mut()))
        });
    }
    g.finish();
}

criterion_group!(benches, rhs);
criterion_main!(benches);
