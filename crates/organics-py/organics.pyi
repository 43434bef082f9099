"""ORGaNICs circuits (Rawat, Heeger & Martiniani, NeurIPS 2024) computed in Rust.

Main model (paper Eq. 16), element-wise, with relu(v) = max(v, 0)::

    tau_y dy/dt = -y + b z + (1 - sqrt(relu(a))) (W_r y)
    tau_a da/dt = -a + b0^2 sigma^2 + W (y^2 relu(a))

The rectified model (Eq. 102) uses relu(y) for y in W_r y and y^2. Time is in the unit of
tau_y and tau_a (ms in the paper's figures); y and a are dimensionless potentials; firing rates
are relu(y)^2. Invalid input raises ValueError naming the field; a computation that ran and
failed raises ComputationError with its report.
"""

from os import PathLike
from typing import Any, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = npt.ArrayLike
F64 = npt.NDArray[np.float64]
C128 = npt.NDArray[np.complex128]
Path = Union[str, PathLike]
Window = Tuple[float, float, float, float]

class ComputationError(RuntimeError):
    """A computation that ran and failed; `report` holds its report (or None)."""

    report: Any

class SteadyState:
    """A steady state and its stability verdict (None fields when no fixed point was found)."""

    y: F64  # (n,)
    a: F64  # (n,)
    converged: bool
    residual: float  # max_i |f_i| tau_i
    iterations: int
    method: str  # closed-form, iterative, iterative+newton, simulate+newton, ...
    reason: str  # converged, max-iterations, non-finite, stalled, not-settled
    stable: Optional[bool]
    verdict: Optional[str]  # stable, marginal, unstable
    max_real: Optional[float]  # max Re lambda (1 / time unit)
    tolerance: Optional[float]
    eigenvalues: Optional[C128]  # (2n,), largest real part first
    range: Optional[F64]  # (2n, 2) [min, max] over the last tenth, for not-settled

class Stability:
    """Eigenvalues of the Jacobian at a fixed point and the verdict."""

    y: F64
    a: F64
    eigenvalues: C128  # (2n,), largest real part first (1 / time unit)
    max_real: float
    tolerance: float  # 2 m eps ||B||_F of the balanced Jacobian, m = 2n
    verdict: str  # stable if max_real < -tolerance, unstable if > tolerance, else marginal
    stable: bool
    kind: Optional[str]  # n = 1: node, focus, saddle, center, degenerate
    residual: float
    method: str

class FixedPoint:
    """A fixed point of a one-neuron circuit."""

    y: float
    a: float
    eigenvalues: C128  # (2,)
    max_real: float
    stable: bool
    verdict: str
    kind: str
    residual: float

class Trajectory:
    """A simulated run: t (T,), y and a (T, n)."""

    t: F64
    y: F64
    a: F64
    steps: int

class PhasePlane:
    """Vector field, nullclines and fixed points of a one-neuron circuit, for matplotlib."""

    y: F64  # (ny,)
    a: F64  # (na,)
    dy_dt: F64  # (na, ny): plt.streamplot(y, a, dy_dt, da_dt)
    da_dt: F64  # (na, ny)
    y_nullcline: list[F64]  # branches of (k, 2) points (y, a) where dy/dt = 0
    a_nullcline: list[F64]  # branches where da/dt = 0
    fixed_points: list[FixedPoint]
    window: Window  # (y_min, y_max, a_min, a_max)

class Checkpoint:
    """A trained model's tensors (float32, PyTorch state_dict names) and config."""

    path: str
    epoch: int
    tensors: dict[str, npt.NDArray[np.float32]]
    config: dict[str, Any]

class Circuit:
    """An ORGaNICs circuit of n principal neurons y and n modulators a.

    tau_y, tau_a: time constants (> 0), number or (n,). b: input gains (> 0), b0: gains on
    sigma (> 0), sigma: semi-saturation (> 0), each number or (n,). w_r: "identity", a number s
    (s I) or (n, n). w: normalisation weights (>= 0), a number (every entry) or (n, n).
    z: input drive (n,).
    """

    def __init__(
        self,
        model: Literal["main", "rectified"] = "main",
        *,
        tau_y: ArrayLike,
        tau_a: ArrayLike,
        b: ArrayLike,
        b0: ArrayLike,
        sigma: ArrayLike,
        w_r: Union[Literal["identity"], ArrayLike],
        w: ArrayLike,
        z: ArrayLike,
    ) -> None: ...
    @staticmethod
    def from_file(path: Path) -> Circuit: ...
    @staticmethod
    def from_json(text: str) -> Circuit: ...
    @property
    def n(self) -> int: ...
    @property
    def model(self) -> str: ...
    @property
    def tau_y(self) -> F64: ...
    @property
    def tau_a(self) -> F64: ...
    @property
    def b(self) -> F64: ...
    @property
    def b0(self) -> F64: ...
    @property
    def sigma(self) -> F64: ...
    @property
    def w_r(self) -> F64: ...
    @property
    def w(self) -> F64: ...
    @property
    def z(self) -> F64: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def rhs(self, y: ArrayLike, a: ArrayLike) -> Tuple[F64, F64]:
        """(dy/dt, da/dt) at (y, a), each (n,), in 1 / time unit."""
    def jacobian(self, y: ArrayLike, a: ArrayLike) -> F64:
        """The analytic Jacobian, (2n, 2n), variables ordered [y; a]."""
    def steady_state(
        self,
        method: Literal["auto", "closed-form", "iterative", "simulate"] = "auto",
        iterations: int = 15,
    ) -> SteadyState: ...
    def stability(self, y: Optional[ArrayLike] = None, a: Optional[ArrayLike] = None) -> Stability: ...
    def simulate(
        self,
        t_end: float,
        dt: Optional[float] = None,
        integrator: Literal["euler", "rk4", "dopri5", "radau5"] = "rk4",
        every: int = 1,
        rtol: float = 1e-8,
        atol: float = 1e-10,
        y0: Optional[ArrayLike] = None,
        a0: Optional[ArrayLike] = None,
    ) -> Trajectory: ...
    def fixed_points(
        self, starts: int = 64, seed: int = 0
    ) -> Union[list[FixedPoint], dict[str, Any]]:
        """n = 1: every fixed point, exactly (list of FixedPoint). n > 1: a deflated-Newton
        search from seeded starts, as `organics fixed-points`' JSON (an enumeration, not a
        proof: "complete" is False)."""
    def continuation(
        self,
        param: Literal["w_r", "w", "b", "b0", "sigma", "z", "tau_y", "tau_a"],
        start: float,
        stop: float,
        max_step: Optional[float] = None,
        out: Optional[Path] = None,
    ) -> dict[str, Any]:
        """Fixed-point branches and their folds / Hopf points, as `organics continuation`'s
        JSON: {"param", "branches", "bifurcations"}."""
    def limit_cycle(
        self,
        integrator: Literal["dopri5", "radau5"] = "dopri5",
        transient: Optional[float] = None,
        window: Optional[float] = None,
        y0: Optional[ArrayLike] = None,
        a0: Optional[ArrayLike] = None,
    ) -> dict[str, Any]:
        """A periodic orbit refined by shooting, as `organics limit-cycle`'s JSON: {"period",
        "amplitude", "floquet_multipliers", "stable", "point", ...}. Raises ComputationError
        (report {"settled": True, "y", "a", "residual", "t"}) when the circuit settles."""
    def phase_plane(
        self, window: Optional[Window] = None, ny: int = 30, na: int = 30, samples: int = 400
    ) -> PhasePlane: ...
    def phase_portrait(
        self,
        path: Path,
        title: Optional[str] = None,
        window: Optional[Window] = None,
        trajectories: Optional[Sequence[Tuple[float, float]]] = None,
        trajectory_time: float = 50.0,
        width: int = 900,
        height: int = 820,
        density: float = 1.5,
    ) -> dict[str, Any]: ...

def load_checkpoint(path: Path) -> Checkpoint: ...
def certify(
    path: Path, samples: Optional[int] = None, data_dir: Optional[Path] = None
) -> dict[str, Any]: ...
