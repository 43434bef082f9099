//! The analytic Jacobian against central finite differences, on random circuits and states.

use organics_core::ensemble;
use organics_core::params::Model;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("tests/proptest-regressions/jacobian.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn jacobian_matches_central_differences(n in 1usize..=64, seed in any::<u64>(), rectified in any::<bool>(), wr_norm in 0.1f64..3.0) {
        let model = if rectified { Model::Rectified } else { Model::Main };
        let c = ensemble::fig4(model, n, wr_norm, seed).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
        // States away from the kinks: |y| ≥ 0.05 (the rectifier) and a ≥ 0.05 (√⌊a⌋).
        let mut x: Vec<f64> = (0..n).map(|_| {
            let m = 0.05 + rng.random::<f64>();
            if rng.random::<bool>() { m } else { -m }
        }).collect();
        x.extend((0..n).map(|_| 0.05 + 2.0 * rng.random::<f64>()));
        let j = c.jacobian(&x);
        let dim = 2 * n;
        let (mut fp, mut fm) = (vec![0.0; dim], vec![0.0; dim]);
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        let mut scale: f64 = 0.0;
        for k in 0..dim {
            let mut xp = x.clone();
            let mut xm = x.clone();
            xp[k] += h;
            xm[k] -= h;
            c.rhs(&xp, &mut fp);
            c.rhs(&xm, &mut fm);
            for i in 0..dim {
                let fd = (fp[i] - fm[i]) / (2.0 * h);
                worst = worst.max((fd - j[(i, k)]).abs());
                scale = scale.max(j[(i, k)].abs());
            }
        }
        // Central differences: truncation O(h² f''') ≈ 1e-12 · (third derivatives ≤ ~1e2 at
        // a ≥ 0.05), rounding ≈ ε |f| / h ≈ 1e-16 · 1e2 / 1e-6 = 1e-8. Allow 1e-6 relative
        // to the Jacobian's largest entry (an error in any term would be O(1) of an entry).
        prop_assert!(worst < 1e-6 * scale.max(1.0), "worst |FD - J| = {worst}, scale {scale}");
    }
}
