//! Does faer 0.24.4's real eigen-decomposition give a wrong eigenpair under AVX-512?
//!
//! organics-rs's test `eigenpairs_satisfy_jv_equals_lambda_v_on_circuit_jacobians`
//! (`crates/organics-lyapunov/tests/spectrum.rs`) failed once, in a full workspace test run built
//! with pulp's `x86-v4` feature (faer's AVX-512 kernels), on one 16 × 16 Jacobian `J`: the worst
//! eigenpair residual
//!
//! ```text
//! r = max_k ‖J v_k − λ_k v_k‖ / (‖J‖_F ‖v_k‖)
//! ```
//!
//! was 1.35e-3 where a backward-stable solver gives a few ε (≈ 1e-15); 14 reruns passed. The
//! inputs are deterministic, so the suspects are faer code paths that depend on buffer alignment,
//! on the (uninitialised) contents of its scratch memory, or on threads.
//!
//! This program takes the bit-exact matrix (`data/jacobian.hex`, `data/balanced.hex`,
//! `data/scale.hex`: `J`, its Parlett–Reinsch balancing `B = D⁻¹ J D` and the power-of-two
//! diagonal `D`, dumped by organics-lyapunov) and decomposes `B` through the same faer call as
//! `organics_lyapunov::spectrum::eigenpairs`: `faer::linalg::evd::evd_real` with right
//! eigenvectors only, the Schur `blocking_threshold` raised to `usize::MAX` (small-bulge QR),
//! `Par::Seq`. Every trial varies where the buffers live and what they hold:
//!
//! - the input `B`: column-major at an element offset, with padded column stride, or row-major;
//! - the scratch `MemStack`: its base at a byte offset, pre-filled with zeros, NaN bytes,
//!   pseudo-random bytes or huge finite values;
//! - the output eigenvector matrix: at an element offset, pre-filled with zeros or NaN;
//! - parallelism: `Par::Seq` or `Par::rayon(0)`;
//!
//! and the trials run on `--threads` OS threads at once (the test harness runs tests
//! concurrently). Separately it decomposes every one-ulp neighbour of `B` (one nonzero entry
//! moved one ulp either way) by the plain call, to tell a property of this matrix's rounding
//! from one of the code path. For each trial it rebuilds `v_k = D u_k` (unit 2-norm) exactly as
//! `eigenpairs` does and computes `r` with the test's own formula, so under `x86-v3` it prints
//! the same residual, bit for bit, as organics-lyapunov. It prints each eigenvalue of the plain
//! call with its residual, the neighbours' failure count, the worst residual, the trial count and
//! every configuration with `r > 1e-10`; it exits 1 if any configuration failed.
//!
//! Finding (README.md): `x86-v4` fails in every configuration with the same residual, and
//! `x86-v3` fails on 104 of the 224 neighbours, so the defect is faer's eigenvectors of nearly
//! coincident eigenvalues, not an AVX-512 or alignment effect.
//!
//! ```text
//! cargo run --release --features x86-v4 -- [--rounds N] [--threads T]
//! ```

#![forbid(unsafe_code)]

use faer::dyn_stack::MemStack;
use faer::linalg::evd::{self, ComputeEigenvectors, EvdParams};
use faer::{Mat, MatMut, MatRef, Par, Spec, c64};
use std::mem::MaybeUninit;

/// A residual above this is a failure (the test's bound is 1e-12; 1e-10 leaves no doubt).
const FAIL: f64 = 1e-10;

/// Read a matrix stored as f64 bit patterns in hex, one row per line.
fn read_hex(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .map(|t| f64::from_bits(u64::from_str_radix(t, 16).expect("hex f64 bits")))
                .collect()
        })
        .collect()
}

fn to_mat(rows: &[Vec<f64>]) -> Mat<f64> {
    Mat::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
}

/// What a buffer is filled with before faer sees it.
#[derive(Debug, Clone, Copy)]
enum Fill {
    Zero,
    /// All bytes 0xFF: every f64 is a NaN.
    Nan,
    /// splitmix64 bytes, seeded by the trial number.
    Random,
    /// Every f64 slot holds 1e300.
    Huge,
}

const FILLS: [Fill; 4] = [Fill::Zero, Fill::Nan, Fill::Random, Fill::Huge];

fn fill_bytes(buf: &mut [MaybeUninit<u8>], fill: Fill, seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let huge = 1e300f64.to_le_bytes();
    for (i, b) in buf.iter_mut().enumerate() {
        let v = match fill {
            Fill::Zero => 0,
            Fill::Nan => 0xFF,
            Fill::Huge => huge[i % 8],
            Fill::Random => {
                // splitmix64, one output per byte (speed is irrelevant here).
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) as u8
            }
        };
        *b = MaybeUninit::new(v);
    }
}

/// How the input matrix is laid out.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// faer's own `Mat` (aligned allocation), as organics-lyapunov passes it.
    Owned,
    /// Column-major in a `Vec<f64>` from element `offset`, column stride `m + pad`.
    ColMajor { offset: usize, pad: usize },
    /// Row-major in a `Vec<f64>` from element `offset`.
    RowMajor { offset: usize },
}

/// One trial's configuration.
#[derive(Debug, Clone, Copy)]
struct Config {
    layout: Layout,
    /// Byte offset of the scratch stack's base inside its allocation.
    stack_offset: usize,
    stack_fill: Fill,
    /// Element offset of the eigenvector output inside its `Vec<f64>` (`None`: faer's `Mat`).
    u_offset: Option<usize>,
    u_fill: Fill,
    par: Par,
}

fn configs() -> Vec<Config> {
    let mut layouts = vec![Layout::Owned];
    for offset in [0, 1, 3, 7] {
        for pad in [0, 1, 5] {
            layouts.push(Layout::ColMajor { offset, pad });
        }
    }
    layouts.extend([0, 1, 5].map(|offset| Layout::RowMajor { offset }));
    let mut out = Vec::new();
    for &layout in &layouts {
        for stack_offset in (0..128).step_by(8) {
            for stack_fill in FILLS {
                for u_offset in [None, Some(0), Some(1), Some(3)] {
                    for u_fill in [Fill::Zero, Fill::Nan] {
                        for par in [Par::Seq, Par::rayon(0)] {
                            out.push(Config {
                                layout,
                                stack_offset,
                                stack_fill,
                                u_offset,
                                u_fill,
                                par,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

fn schur_params() -> Spec<EvdParams, f64> {
    // As organics_lyapunov::spectrum::real_evd: the small-bulge QR at every size.
    let mut params: Spec<EvdParams, f64> = Spec::default();
    params.schur.blocking_threshold = usize::MAX;
    params
}

/// `evd_real` of `b` under `cfg`: eigenvalues and the real-stored right eigenvectors.
fn decompose(b: &Mat<f64>, cfg: &Config, seed: u64) -> Option<(Vec<c64>, Mat<f64>)> {
    let m = b.nrows();
    let params = schur_params();
    // The input.
    let stride = match cfg.layout {
        Layout::ColMajor { pad, .. } => m + pad,
        _ => m,
    };
    let mut store = vec![f64::NAN; 8 + stride * m];
    let input: MatRef<'_, f64> = match cfg.layout {
        Layout::Owned => b.as_ref(),
        Layout::ColMajor { offset, .. } => {
            for j in 0..m {
                for i in 0..m {
                    store[offset + i + j * stride] = b[(i, j)];
                }
            }
            MatRef::from_column_major_slice_with_stride(&store[offset..], m, m, stride)
        }
        Layout::RowMajor { offset } => {
            for i in 0..m {
                for j in 0..m {
                    store[offset + i * m + j] = b[(i, j)];
                }
            }
            MatRef::from_row_major_slice(&store[offset..offset + m * m], m, m)
        }
    };
    // The scratch stack.
    let req = evd::evd_scratch::<f64>(
        m,
        ComputeEigenvectors::No,
        ComputeEigenvectors::Yes,
        cfg.par,
        params,
    );
    let mut scratch = vec![MaybeUninit::<u8>::uninit(); req.unaligned_bytes_required() + 256];
    fill_bytes(&mut scratch, cfg.stack_fill, seed);
    let stack = MemStack::new(&mut scratch[cfg.stack_offset..]);
    // The outputs.
    let mut re = faer::diag::Diag::<f64>::zeros(m);
    let mut im = faer::diag::Diag::<f64>::zeros(m);
    let fill_value = match cfg.u_fill {
        Fill::Nan => f64::NAN,
        _ => 0.0,
    };
    let mut u_owned = Mat::<f64>::from_fn(m, m, |_, _| fill_value);
    let mut u_store = vec![fill_value; 8 + m * m];
    let u: MatMut<'_, f64> = match cfg.u_offset {
        None => u_owned.as_mut(),
        Some(o) => MatMut::from_column_major_slice_mut(&mut u_store[o..o + m * m], m, m),
    };
    let ok = evd::evd_real(
        input,
        re.as_mut(),
        im.as_mut(),
        None,
        Some(u),
        cfg.par,
        stack,
        params,
    );
    ok.ok()?;
    let u = match cfg.u_offset {
        None => u_owned,
        Some(o) => Mat::from_fn(m, m, |i, j| u_store[o + i + j * m]),
    };
    Some(((0..m).map(|k| c64::new(re[k], im[k])).collect(), u))
}

/// The complex eigenvectors of `J`, `v_k = D u_k / ‖D u_k‖`, built as `eigenpairs` builds them
/// (LAPACK's real storage: a pair `Im λ_k > 0` at columns `k, k + 1` is `u_k ± i u_{k+1}`).
fn vectors_of_j(values: &[c64], u: &Mat<f64>, scale: &[f64]) -> Mat<c64> {
    let m = u.nrows();
    let mut v = Mat::<c64>::zeros(m, m);
    let mut k = 0;
    while k < m {
        if values[k].im != 0.0 && k + 1 < m {
            for i in 0..m {
                let (x, y) = (u[(i, k)], u[(i, k + 1)]);
                v[(i, k)] = c64::new(x, y);
                v[(i, k + 1)] = c64::new(x, -y);
            }
            k += 2;
        } else {
            for i in 0..m {
                v[(i, k)] = c64::new(u[(i, k)], 0.0);
            }
            k += 1;
        }
    }
    for k in 0..m {
        for i in 0..m {
            v[(i, k)] *= scale[i];
        }
        let norm = (0..m).map(|i| v[(i, k)].norm_sqr()).sum::<f64>().sqrt();
        if norm > 0.0 {
            for i in 0..m {
                v[(i, k)] /= norm;
            }
        }
    }
    v
}

/// `max_k ‖J v_k − λ_k v_k‖ / ‖J‖_F` for unit `v_k`, in complex arithmetic, with the operation
/// order of organics-lyapunov's test (so the two agree bit for bit).
fn worst_residual(j: &Mat<f64>, values: &[c64], vectors: &Mat<c64>) -> f64 {
    let m = j.nrows();
    let norm_j = (0..m)
        .flat_map(|r| (0..m).map(move |c| (r, c)))
        .map(|(r, c)| j[(r, c)] * j[(r, c)])
        .sum::<f64>()
        .sqrt();
    let mut worst: f64 = 0.0;
    for k in 0..values.len() {
        let mut res = 0.0;
        for r in 0..m {
            let mut jv = c64::new(0.0, 0.0);
            for c in 0..m {
                jv += vectors[(c, k)] * j[(r, c)];
            }
            res += (jv - values[k] * vectors[(r, k)]).norm_sqr();
        }
        // NaN must count as a failure: f64::max would drop it.
        let r = res.sqrt() / norm_j;
        worst = if r.is_nan() { f64::NAN } else { worst.max(r) };
        if worst.is_nan() {
            break;
        }
    }
    worst
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = flag(&args, "--rounds", 1);
    let threads = flag(&args, "--threads", 1).max(1);
    let j = to_mat(&read_hex(include_str!("../data/jacobian.hex")));
    let b = to_mat(&read_hex(include_str!("../data/balanced.hex")));
    let scale = read_hex(include_str!("../data/scale.hex")).remove(0);
    let m = j.nrows();
    // The dump is consistent: B = D⁻¹ J D exactly (D holds powers of two).
    for r in 0..m {
        for c in 0..m {
            let back = j[(r, c)] / scale[r] * scale[c];
            assert_eq!(
                back.to_bits(),
                b[(r, c)].to_bits(),
                "B != D^-1 J D at ({r}, {c})"
            );
        }
    }
    let level = if cfg!(feature = "x86-v4") {
        "x86-v4"
    } else if cfg!(feature = "x86-v3") {
        "x86-v3"
    } else {
        "no pulp x86 feature"
    };
    println!(
        "faer 0.24.4, pulp 0.22.3 ({level}); {m} x {m} matrix; avx512f detected: {}",
        std::arch::is_x86_feature_detected!("avx512f")
    );
    // The plain call (faer-owned buffers, Par::Seq), eigenpair by eigenpair.
    let plain = Config {
        layout: Layout::Owned,
        stack_offset: 0,
        stack_fill: Fill::Zero,
        u_offset: None,
        u_fill: Fill::Zero,
        par: Par::Seq,
    };
    let (values, u) = decompose(&b, &plain, 0).expect("evd_real failed");
    let v = vectors_of_j(&values, &u, &scale);
    for (k, l) in values.iter().enumerate() {
        let one = Mat::from_fn(m, 1, |i, _| v[(i, k)]);
        let r = worst_residual(&j, &values[k..=k], &one);
        println!(
            "  lambda_{k:<2} = {:+.17e} {:+.17e}i   residual {r:.3e}",
            l.re, l.im
        );
    }
    // Nearby matrices: every nonzero entry of B moved by one ulp either way, decomposed by the
    // plain call (residual of B' itself, relative to its own norm). Tells a defect specific to
    // this matrix's rounding from one of the code path.
    let ones = vec![1.0; m];
    let (mut nearby, mut nearby_fail, mut nearby_worst) = (0usize, 0usize, 0.0f64);
    for r in 0..m {
        for c in 0..m {
            if b[(r, c)] == 0.0 {
                continue;
            }
            for up in [false, true] {
                let mut bp = b.clone();
                let bits = bp[(r, c)].to_bits();
                let towards_zero = up == (bp[(r, c)] < 0.0);
                bp[(r, c)] = f64::from_bits(if towards_zero { bits - 1 } else { bits + 1 });
                let (values, u) = decompose(&bp, &plain, 0).expect("evd_real failed");
                let res = worst_residual(&bp, &values, &vectors_of_j(&values, &u, &ones));
                nearby += 1;
                if res.is_nan() || res > FAIL {
                    nearby_fail += 1;
                }
                nearby_worst = if res.is_nan() {
                    f64::NAN
                } else {
                    nearby_worst.max(res)
                };
            }
        }
    }
    println!(
        "nearby matrices (one nonzero entry of B moved by 1 ulp): {nearby}, failing: \
         {nearby_fail}, worst residual: {nearby_worst:.3e}"
    );
    let cfgs = configs();
    let total = rounds * cfgs.len();
    // Trial t runs configuration t % cfgs.len(), seeded by t.
    let results: Vec<(f64, Vec<(usize, f64)>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let (j, b, scale, cfgs) = (&j, &b, &scale, &cfgs);
                s.spawn(move || {
                    let mut worst: f64 = 0.0;
                    let mut failures = Vec::new();
                    for t in (w..total).step_by(threads) {
                        let cfg = &cfgs[t % cfgs.len()];
                        let r = match decompose(b, cfg, t as u64) {
                            Some((values, u)) => {
                                worst_residual(j, &values, &vectors_of_j(&values, &u, scale))
                            }
                            None => f64::INFINITY,
                        };
                        if r.is_nan() || r > FAIL {
                            failures.push((t, r));
                        }
                        worst = if r.is_nan() { f64::NAN } else { worst.max(r) };
                    }
                    (worst, failures)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let worst = results
        .iter()
        .map(|r| r.0)
        .fold(0.0f64, |a, r| if r.is_nan() { f64::NAN } else { a.max(r) });
    let mut failures: Vec<(usize, f64)> = results.into_iter().flat_map(|r| r.1).collect();
    failures.sort_by_key(|f| f.0);
    for (t, r) in &failures {
        println!("FAIL trial {t}: residual {r:e}, {:?}", cfgs[t % cfgs.len()]);
    }
    println!(
        "trials: {total} ({rounds} rounds x {} configurations, {threads} threads); \
         failures (residual > {FAIL:e} or NaN): {}; worst residual: {worst:.17e}",
        cfgs.len(),
        failures.len()
    );
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
