"""The paper's equations typed out in numpy, independently of the Rust crates.

docs/model.md is the written home of these equations; nothing here calls `organics`.
"""

import numpy as np


def relu(v):
    return np.maximum(v, 0.0)


def rhs(p, y, a):
    """Main model (paper Eq. 16) or rectified model (Eq. 102): (dy/dt, da/dt).

    tau_y dy/dt = -y + b z + (1 - sqrt(relu(a))) (W_r y)      [y -> relu(y) in W_r y, rectified]
    tau_a da/dt = -a + b0^2 sigma^2 + W (y^2 relu(a))          [y -> relu(y), rectified]
    """
    yy = relu(y) if p["model"] == "rectified" else y
    dy = (-y + p["b"] * p["z"] + (1.0 - np.sqrt(relu(a))) * (p["w_r"] @ yy)) / p["tau_y"]
    da = (-a + p["b0"] ** 2 * p["sigma"] ** 2 + p["w"] @ (yy**2 * relu(a))) / p["tau_a"]
    return dy, da


def rhs_flat(p, x):
    n = len(p["z"])
    dy, da = rhs(p, x[:n], x[n:])
    return np.concatenate([dy, da])


def fd_jacobian(p, x, h=1e-6):
    """Central finite differences of the vector field, step h max(1, |x_j|)."""
    m = len(x)
    jac = np.empty((m, m))
    for j in range(m):
        step = h * max(1.0, abs(x[j]))
        e = np.zeros(m)
        e[j] = step
        jac[:, j] = (rhs_flat(p, x + e) - rhs_flat(p, x - e)) / (2 * step)
    return jac


def closed_form(p):
    """Steady state for W_r = I, main model (docs/model.md § Closed-form steady state)."""
    c = p["b"] * p["z"]
    a = p["b0"] ** 2 * p["sigma"] ** 2 + p["w"] @ c**2
    return c / np.sqrt(a), a


def random_circuit(rng, n, model, recurrence="random", norm=0.5):
    """Parameters of a random circuit in the paper's admissible range (positive gains and time
    constants, W >= 0) with ||W_r||_2 = norm (or W_r = I) and ||z|| <= 1 (the paper's § 5
    hypotheses, under which its random circuits were all stable)."""
    if recurrence == "identity":
        w_r = np.eye(n)
    else:
        w_r = rng.normal(size=(n, n))
        w_r *= norm / np.linalg.norm(w_r, 2)
    z = rng.normal(size=n)
    z *= rng.uniform(0.3, 1.0) / np.linalg.norm(z)
    return {
        "model": model,
        "tau_y": rng.uniform(1.0, 10.0, n),
        "tau_a": rng.uniform(1.0, 10.0, n),
        "b": rng.uniform(0.2, 1.0, n),
        "b0": rng.uniform(0.2, 1.0, n),
        "sigma": rng.uniform(0.05, 0.5, n),
        "w_r": w_r,
        "w": rng.uniform(0.0, 1.0, (n, n)) / n,
        "z": z,
    }


def match_spectra(u, v):
    """Largest distance between two multisets of complex numbers, pairing greedily by nearest."""
    v = list(v)
    worst = 0.0
    for x in u:
        k = int(np.argmin([abs(x - w) for w in v]))
        worst = max(worst, abs(x - v.pop(k)))
    return worst
