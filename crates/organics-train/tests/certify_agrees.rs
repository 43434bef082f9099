//! `organics certify` (through `observe::fixed_point_stability`, which the Fig. 5/6 observers
//! and the certificate use per input) and `organics stability` judge a circuit the same way:
//! on the same circuit they report the same fixed point, bit-identical `max Re λ` and the same
//! verdict. The circuits include general W_r up to ‖W_r‖₂ = 3, where the iterative route can
//! land on fixed points that do not attract.

use organics_core::{CircuitSpec, Model, ensemble};
use organics_train::observe::fixed_point_stability;
use std::process::Command;

#[test]
fn certify_and_stability_agree_on_the_same_circuit() {
    let dir = std::env::temp_dir().join(format!("organics-agree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut judged = 0;
    for (k, &(norm, seed)) in [(0.5, 0), (1.0, 1), (2.0, 2), (2.0, 3), (3.0, 4), (3.0, 5)]
        .iter()
        .enumerate()
    {
        let drawn = ensemble::fig4(Model::Main, 4, norm, seed).unwrap();
        let text = drawn.to_spec().to_json().to_string();
        let path = dir.join(format!("c{k}.json"));
        std::fs::write(&path, &text).unwrap();
        // Judge the circuit the command will read (parsed from the same text).
        let c = CircuitSpec::from_json(&text).unwrap().build().unwrap();
        let (max_real, verdict) = fixed_point_stability(&c).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_organics"))
            .arg("stability")
            .arg(&path)
            .output()
            .unwrap();
        match verdict {
            None => {
                // No steady state for certify: stability finds none either (status 1).
                assert!(max_real.is_nan());
                assert_eq!(out.status.code(), Some(1), "norm {norm} seed {seed}");
            }
            Some(v) => {
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                // The same computation on the same circuit; the printed number is read back by
                // serde_json's default float parser, which may be 1 ulp off the nearest f64.
                let cli = s["max_real"].as_f64().unwrap();
                let ulps = cli.to_bits().abs_diff(max_real.to_bits());
                assert!(ulps <= 1, "norm {norm} seed {seed}: {cli} vs {max_real}");
                assert_eq!(s["verdict"], v.name(), "norm {norm} seed {seed}");
                judged += 1;
            }
        }
    }
    assert!(judged >= 4, "only {judged} circuits had a steady state");
}
