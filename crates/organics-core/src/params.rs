//! Circuit parameters, validated once at construction.
//!
//! | symbol | field | shape | constraint |
//! |---|---|---|---|
//! | τ_y, τ_a | `tau_y`, `tau_a` | n | > 0 (any time unit; the paper's figures use ms) |
//! | b, b0 | `b`, `b0` | n | > 0 |
//! | σ | `sigma` | n | > 0 |
//! | W_r | `w_r` | n × n | identity, scalar × identity, or dense real |
//! | W | `w` | n × n | ≥ 0 |
//! | z | `z` | n | finite, any sign |
//!
//! A [`CircuitSpec`] is the JSON description of the command-line contract (scalars broadcast to
//! length-n vectors); [`CircuitSpec::build`] validates it into a [`Circuit`]. Every rule that a
//! [`Circuit`] relies on is checked there, so the numerical code never re-checks.

use crate::error::CoreError;
use faer::Mat;
use serde_json::Value;

/// Which vector field the circuit follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// Paper Eq. 16: `W_r y` and `y²` use the raw potential `y`.
    Main,
    /// Paper Eq. 102: `W_r ⌊y⌋` and `⌊y⌋²` use the rectified potential.
    Rectified,
}

impl Model {
    /// The name used in circuit files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Model::Main => "main",
            Model::Rectified => "rectified",
        }
    }
}

/// The recurrent weight matrix W_r.
#[derive(Debug, Clone)]
pub enum Recurrence {
    /// W_r = I: the case covered by the stability theorem and the closed-form steady state.
    Identity,
    /// W_r = w_r I.
    Scaled(f64),
    /// A dense n × n matrix.
    Dense(Mat<f64>),
}

impl Recurrence {
    /// `out = W_r v`.
    pub fn apply(&self, v: &[f64], out: &mut [f64]) {
        match self {
            Recurrence::Identity => out.copy_from_slice(v),
            Recurrence::Scaled(s) => {
                for (o, &vi) in out.iter_mut().zip(v) {
                    *o = s * vi;
                }
            }
            Recurrence::Dense(m) => mat_vec(m, v, out),
        }
    }

    /// Entry (i, j) of W_r.
    pub fn entry(&self, i: usize, j: usize) -> f64 {
        match self {
            Recurrence::Identity => f64::from(u8::from(i == j)),
            Recurrence::Scaled(s) => {
                if i == j {
                    *s
                } else {
                    0.0
                }
            }
            Recurrence::Dense(m) => m[(i, j)],
        }
    }

    /// W_r as a dense n × n matrix.
    pub fn to_dense(&self, n: usize) -> Mat<f64> {
        Mat::from_fn(n, n, |i, j| self.entry(i, j))
    }

    /// Whether W_r is exactly the identity (as declared, or as a matrix).
    pub fn is_identity(&self) -> bool {
        match self {
            Recurrence::Identity => true,
            Recurrence::Scaled(s) => (*s - 1.0).abs() == 0.0,
            Recurrence::Dense(m) => (0..m.nrows()).all(|i| {
                (0..m.ncols()).all(|j| (m[(i, j)] - f64::from(u8::from(i == j))).abs() == 0.0)
            }),
        }
    }
}

/// `out = M v` for a column-major faer matrix, allocation-free (column axpy order).
pub(crate) fn mat_vec(m: &Mat<f64>, v: &[f64], out: &mut [f64]) {
    out.fill(0.0);
    for (j, &vj) in v.iter().enumerate() {
        if vj == 0.0 {
            continue;
        }
        let col = m.col(j);
        for (i, o) in out.iter_mut().enumerate() {
            *o += col[i] * vj;
        }
    }
}

/// The parts of a circuit, before validation. Vectors have length n; matrices are n × n.
#[derive(Debug, Clone)]
pub struct CircuitParts {
    /// Vector field.
    pub model: Model,
    /// Time constants of the principal neurons.
    pub tau_y: Vec<f64>,
    /// Time constants of the modulatory neurons.
    pub tau_a: Vec<f64>,
    /// Input gain b (also written b1).
    pub b: Vec<f64>,
    /// Gain b0 on the semi-saturation constant.
    pub b0: Vec<f64>,
    /// Semi-saturation constant σ.
    pub sigma: Vec<f64>,
    /// Recurrent weights W_r.
    pub w_r: Recurrence,
    /// Normalisation weights W (non-negative).
    pub w: Mat<f64>,
    /// Input drive z.
    pub z: Vec<f64>,
}

/// A validated ORGaNICs circuit. Build it with [`Circuit::new`] or [`CircuitSpec::build`].
#[derive(Debug, Clone)]
pub struct Circuit {
    parts: CircuitParts,
    /// b0² σ², the constant drive of the a-equation.
    b0_sigma_sq: Vec<f64>,
}

fn check_finite(field: &str, values: impl IntoIterator<Item = f64>) -> Result<(), CoreError> {
    for (index, value) in values.into_iter().enumerate() {
        if !value.is_finite() {
            return Err(CoreError::NonFinite {
                field: field.into(),
                index,
                value,
            });
        }
    }
    Ok(())
}

fn check_positive(field: &str, v: &[f64], n: usize) -> Result<(), CoreError> {
    if v.len() != n {
        return Err(CoreError::DimensionMismatch {
            field: field.into(),
            expected: format!("length {n}"),
            found: format!("length {}", v.len()),
        });
    }
    check_finite(field, v.iter().copied())?;
    if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| **x <= 0.0) {
        return Err(CoreError::NonPositive {
            field: field.into(),
            index,
            value,
        });
    }
    Ok(())
}

fn check_square(field: &str, m: &Mat<f64>, n: usize) -> Result<(), CoreError> {
    if m.nrows() != n || m.ncols() != n {
        return Err(CoreError::DimensionMismatch {
            field: field.into(),
            expected: format!("{n} x {n}"),
            found: format!("{} x {}", m.nrows(), m.ncols()),
        });
    }
    check_finite(field, (0..n).flat_map(|i| (0..n).map(move |j| m[(i, j)])))
}

impl Circuit {
    /// Validate `parts` into a circuit. n is the length of `z`.
    ///
    /// # Errors
    /// [`CoreError::Empty`] for an empty `z`, [`CoreError::DimensionMismatch`],
    /// [`CoreError::NonFinite`], [`CoreError::NonPositive`] (time constants, b, b0, σ) and
    /// [`CoreError::Negative`] (entries of W), each naming the field.
    pub fn new(parts: CircuitParts) -> Result<Self, CoreError> {
        let n = parts.z.len();
        if n == 0 {
            return Err(CoreError::Empty);
        }
        check_finite("z", parts.z.iter().copied())?;
        check_positive("tau_y", &parts.tau_y, n)?;
        check_positive("tau_a", &parts.tau_a, n)?;
        check_positive("b", &parts.b, n)?;
        check_positive("b0", &parts.b0, n)?;
        check_positive("sigma", &parts.sigma, n)?;
        match &parts.w_r {
            Recurrence::Identity => {}
            Recurrence::Scaled(s) => check_finite("w_r", [*s])?,
            Recurrence::Dense(m) => check_square("w_r", m, n)?,
        }
        check_square("w", &parts.w, n)?;
        for j in 0..n {
            for i in 0..n {
                let value = parts.w[(i, j)];
                if value < 0.0 {
                    return Err(CoreError::Negative {
                        field: "w".into(),
                        row: i,
                        col: j,
                        value,
                    });
                }
            }
        }
        let b0_sigma_sq = (0..n)
            .map(|i| {
                let s = parts.b0[i] * parts.sigma[i];
                s * s
            })
            .collect();
        Ok(Self { parts, b0_sigma_sq })
    }

    /// Number of principal neurons n (the state has dimension 2n).
    pub fn n(&self) -> usize {
        self.parts.z.len()
    }
    /// The vector field this circuit follows.
    pub fn model(&self) -> Model {
        self.parts.model
    }
    /// τ_y.
    pub fn tau_y(&self) -> &[f64] {
        &self.parts.tau_y
    }
    /// τ_a.
    pub fn tau_a(&self) -> &[f64] {
        &self.parts.tau_a
    }
    /// b.
    pub fn b(&self) -> &[f64] {
        &self.parts.b
    }
    /// b0.
    pub fn b0(&self) -> &[f64] {
        &self.parts.b0
    }
    /// σ.
    pub fn sigma(&self) -> &[f64] {
        &self.parts.sigma
    }
    /// b0² σ².
    pub fn b0_sigma_sq(&self) -> &[f64] {
        &self.b0_sigma_sq
    }
    /// W_r.
    pub fn w_r(&self) -> &Recurrence {
        &self.parts.w_r
    }
    /// W.
    pub fn w(&self) -> &Mat<f64> {
        &self.parts.w
    }
    /// z.
    pub fn z(&self) -> &[f64] {
        &self.parts.z
    }
    /// The validated parts (for building a modified circuit).
    pub fn parts(&self) -> &CircuitParts {
        &self.parts
    }
    /// The same circuit with another input drive, validated.
    ///
    /// # Errors
    /// As [`Circuit::new`].
    pub fn with_z(&self, z: Vec<f64>) -> Result<Self, CoreError> {
        Self::new(CircuitParts {
            z,
            ..self.parts.clone()
        })
    }
    /// The same circuit following another model.
    pub fn with_model(&self, model: Model) -> Self {
        let mut c = self.clone();
        c.parts.model = model;
        c
    }
    /// The circuit file that describes this circuit.
    pub fn to_spec(&self) -> CircuitSpec {
        let dense = |m: &Mat<f64>| {
            (0..m.nrows())
                .map(|i| (0..m.ncols()).map(|j| m[(i, j)]).collect())
                .collect()
        };
        CircuitSpec {
            model: self.model(),
            tau_y: PerNeuron::Vector(self.parts.tau_y.clone()),
            tau_a: PerNeuron::Vector(self.parts.tau_a.clone()),
            b: PerNeuron::Vector(self.parts.b.clone()),
            b0: PerNeuron::Vector(self.parts.b0.clone()),
            sigma: PerNeuron::Vector(self.parts.sigma.clone()),
            w_r: match &self.parts.w_r {
                Recurrence::Identity => RecurrenceSpec::Identity,
                Recurrence::Scaled(s) => RecurrenceSpec::Scaled(*s),
                Recurrence::Dense(m) => RecurrenceSpec::Dense(dense(m)),
            },
            w: WeightSpec::Dense(dense(&self.parts.w)),
            z: self.parts.z.clone(),
            initial: None,
        }
    }
}

/// A per-neuron quantity in a circuit file: a scalar broadcasts to every neuron.
#[derive(Debug, Clone, PartialEq)]
pub enum PerNeuron {
    /// The same value for every neuron.
    Scalar(f64),
    /// One value per neuron.
    Vector(Vec<f64>),
}

impl PerNeuron {
    fn expand(&self, n: usize) -> Vec<f64> {
        match self {
            PerNeuron::Scalar(s) => vec![*s; n],
            PerNeuron::Vector(v) => v.clone(),
        }
    }
}

/// W_r in a circuit file.
///
/// | file | meaning |
/// |---|---|
/// | `"identity"` | `I` |
/// | `{"identity": s}` | `s · I` (the explicit form) |
/// | `s` (a bare number, kept for old files) | `s · I`, **not** a matrix of `s` (contrast `w`) |
/// | `[[..], ..]` | the n × n matrix, row by row |
#[derive(Debug, Clone, PartialEq)]
pub enum RecurrenceSpec {
    /// `"identity"`.
    Identity,
    /// `{"identity": s}` (or the old bare number `s`): `s` times the identity.
    Scaled(f64),
    /// An n × n array of rows.
    Dense(Vec<Vec<f64>>),
}

/// W in a circuit file.
///
/// | file | meaning |
/// |---|---|
/// | `{"all": s}` | every entry `s` (the explicit form) |
/// | `s` (a bare number, kept for old files) | every entry `s`, **not** `s · I` (contrast `w_r`) |
/// | `[[..], ..]` | the n × n matrix, row by row |
#[derive(Debug, Clone, PartialEq)]
pub enum WeightSpec {
    /// `{"all": s}` (or the old bare number `s`): every entry `s`.
    Uniform(f64),
    /// An n × n array of rows.
    Dense(Vec<Vec<f64>>),
}

/// A circuit file (design.md's JSON schema), parsed but not yet validated.
///
/// ```json
/// { "model": "main" | "rectified",
///   "tau_y": number | [n], "tau_a": number | [n], "b": number | [n], "b0": number | [n],
///   "sigma": number | [n],
///   "w_r": "identity" | {"identity": s} | [[n x n]]   (old form: a number s, meaning s·I),
///   "w": {"all": s} | [[n x n]]                       (old form: a number s, every entry s),
///   "z": [n] }
/// ```
///
/// A per-neuron number broadcasts to every neuron. The two matrix shorthands differ — a number
/// for `w_r` is a multiple of the identity, a number for `w` fills every entry — so the explicit
/// object forms name which one is meant; the bare numbers are still read with those meanings.
/// A field may appear once; a file starting with a UTF-8 byte-order mark is rejected by name.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitSpec {
    /// Vector field.
    pub model: Model,
    /// τ_y.
    pub tau_y: PerNeuron,
    /// τ_a.
    pub tau_a: PerNeuron,
    /// b.
    pub b: PerNeuron,
    /// b0.
    pub b0: PerNeuron,
    /// σ.
    pub sigma: PerNeuron,
    /// W_r.
    pub w_r: RecurrenceSpec,
    /// W.
    pub w: WeightSpec,
    /// z.
    pub z: Vec<f64>,
    /// Optional `"initial": {"y": .., "a": ..}`: where simulations start (see
    /// [`CircuitSpec::initial_state`]).
    pub initial: Option<InitialSpec>,
}

/// The optional initial state of a circuit file, `"initial": {"y": number | [n], "a": number |
/// [n]}`; either part may be left out (it then starts at the default, 0.01 in every variable).
#[derive(Debug, Clone, PartialEq)]
pub struct InitialSpec {
    /// Initial membrane potentials y.
    pub y: Option<PerNeuron>,
    /// Initial modulator potentials a (≥ 0).
    pub a: Option<PerNeuron>,
}

impl InitialSpec {
    /// The state `[y; a]` for n neurons, each missing part at `default`: per-neuron values
    /// broadcast, `a` must be ≥ 0 (the circuit's modulators are non-negative at rest and `√⌊a⌋`
    /// has no derivative below 0), every error naming `initial.y` or `initial.a`.
    ///
    /// # Errors
    /// [`CoreError::DimensionMismatch`], [`CoreError::NonFinite`] and [`CoreError::Negative`]
    /// naming the field.
    pub fn state(&self, n: usize, default: f64) -> Result<Vec<f64>, CoreError> {
        let part = |p: &Option<PerNeuron>, field: &str| -> Result<Vec<f64>, CoreError> {
            let v = p.as_ref().map_or_else(|| vec![default; n], |p| p.expand(n));
            if v.len() != n {
                return Err(CoreError::DimensionMismatch {
                    field: field.into(),
                    expected: format!("a number or length {n}"),
                    found: format!("length {}", v.len()),
                });
            }
            check_finite(field, v.iter().copied())?;
            Ok(v)
        };
        let y = part(&self.y, "initial.y")?;
        let a = part(&self.a, "initial.a")?;
        if let Some((index, &value)) = a.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(CoreError::NonPositive {
                field: "initial.a (must be >= 0)".into(),
                index,
                value,
            });
        }
        Ok([y, a].concat())
    }
}

/// Why a circuit file could not be read. Every variant names the field.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum SpecError {
    /// The text is not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// The top level is not an object.
    #[error("circuit file: expected a JSON object at the top level")]
    NotAnObject,
    /// A required field is absent.
    #[error("{field}: missing field")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong JSON type or an unknown value.
    #[error("{field}: expected {expected}")]
    WrongType {
        /// The field, with an index where it helps (`w_r[2]`).
        field: String,
        /// What the schema allows.
        expected: &'static str,
    },
    /// A value is written as NaN or ±Infinity.
    #[error("{field}: NaN and infinite values are not allowed")]
    NonFinite {
        /// The field, with its index (`tau_y[2]`).
        field: String,
    },
    /// The file starts with a UTF-8 byte-order mark, which JSON parsers do not skip.
    #[error(
        "the file starts with a UTF-8 byte-order mark (bytes EF BB BF, added by some Windows editors); JSON does not allow it: save the file as UTF-8 without BOM"
    )]
    ByteOrderMark,
    /// A field name the schema does not know (catches typos such as `tauy`).
    #[error(
        "{field}: unknown field (expected model, tau_y, tau_a, b, b0, sigma, w_r, w, z, initial)"
    )]
    Unknown {
        /// The unknown field.
        field: String,
    },
    /// The parsed values break a rule of the circuit.
    #[error(transparent)]
    Invalid(#[from] CoreError),
}

const FIELDS: [&str; 10] = [
    "model", "tau_y", "tau_a", "b", "b0", "sigma", "w_r", "w", "z", "initial",
];

/// `"initial": {"y": .., "a": ..}`, each part optional, no other key.
fn initial(v: &Value) -> Result<InitialSpec, SpecError> {
    let map = v.as_object().ok_or_else(|| SpecError::WrongType {
        field: "initial".into(),
        expected: "an object {\"y\": number or [n], \"a\": number or [n]}",
    })?;
    if let Some(k) = map.keys().find(|k| !matches!(k.as_str(), "y" | "a")) {
        return Err(SpecError::Unknown {
            field: format!("initial.{k}"),
        });
    }
    let part = |key: &str| {
        map.get(key)
            .map(|x| per_neuron(x, &format!("initial.{key}")))
            .transpose()
    };
    Ok(InitialSpec {
        y: part("y")?,
        a: part("a")?,
    })
}

fn number(v: &Value, field: &str) -> Result<f64, SpecError> {
    v.as_f64().ok_or_else(|| SpecError::WrongType {
        field: field.into(),
        expected: "a number",
    })
}

fn numbers(v: &Value, field: &str) -> Result<Vec<f64>, SpecError> {
    let arr = v.as_array().ok_or_else(|| SpecError::WrongType {
        field: field.into(),
        expected: "an array of numbers",
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| number(x, &format!("{field}[{i}]")))
        .collect()
}

fn rows(v: &Value, field: &str) -> Result<Vec<Vec<f64>>, SpecError> {
    let arr = v.as_array().ok_or_else(|| SpecError::WrongType {
        field: field.into(),
        expected: "a number or an n x n array of rows",
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, r)| numbers(r, &format!("{field}[{i}]")))
        .collect()
}

/// The number of a one-key shorthand object such as `{"all": 1.0}` or `{"identity": 2.0}`.
fn shorthand(v: &Value, field: &str, key: &'static str) -> Result<f64, SpecError> {
    let expected = match key {
        "all" => "{\"all\": s} (every entry s), or an n x n array of rows",
        _ => "{\"identity\": s} (s times the identity), \"identity\", or an n x n array of rows",
    };
    match v.as_object() {
        Some(m) if m.len() == 1 && m.contains_key(key) => {
            number(&m[key], &format!("{field}.{key}"))
        }
        _ => Err(SpecError::WrongType {
            field: field.into(),
            expected,
        }),
    }
}

fn per_neuron(v: &Value, field: &str) -> Result<PerNeuron, SpecError> {
    if v.is_number() {
        Ok(PerNeuron::Scalar(number(v, field)?))
    } else if v.is_array() {
        Ok(PerNeuron::Vector(numbers(v, field)?))
    } else {
        Err(SpecError::WrongType {
            field: field.into(),
            expected: "a number or an array of numbers",
        })
    }
}

fn dense(rows: &[Vec<f64>], field: &str, n: usize) -> Result<Mat<f64>, CoreError> {
    let bad = |found: String| CoreError::DimensionMismatch {
        field: field.into(),
        expected: format!("{n} x {n}"),
        found,
    };
    if rows.len() != n {
        return Err(bad(format!("{} rows", rows.len())));
    }
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(bad(format!("row {i} of length {}", r.len())));
    }
    Ok(Mat::from_fn(n, n, |i, j| rows[i][j]))
}

/// JSON has no NaN or infinity. Circuit files that contain the bare words `NaN`, `Infinity` or
/// `-Infinity` are still read, so that the error can name the field instead of a column number:
/// this pass quotes those words outside strings, and [`find_nonfinite`] reports them.
fn quote_nonfinite_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        let word = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|w| rest.starts_with(w));
        if let Some(w) = word {
            out.push('"');
            out.push_str(w);
            out.push('"');
            rest = &rest[w.len()..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The path of the first quoted non-finite word (see [`quote_nonfinite_words`]).
fn find_nonfinite(v: &Value, path: String) -> Option<String> {
    match v {
        Value::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => Some(path),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_nonfinite(x, format!("{path}[{i}]"))),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, x)| find_nonfinite(x, format!("{path}.{k}"))),
        _ => None,
    }
}

/// JSON decoding that refuses a repeated key in any object (serde_json's `Value` keeps the last
/// one silently, so `{"w": 1, "w": 2}` would be a circuit with `w = 2` and no word said).
mod strict_json {
    use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};
    use std::fmt;

    struct Strict(Value);

    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor).map(Strict)
        }
    }

    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E: Error>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_unit<E: Error>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Strict(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(A::Error::custom(format!(
                        "duplicate field \"{key}\" (a field may appear once)"
                    )));
                }
                let Strict(v) = map.next_value()?;
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
    }

    /// Parse `text`, failing on a repeated key with the line and column of the repeat.
    pub(super) fn parse(text: &str) -> Result<Value, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let Strict(v) = Strict::deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }
}

impl CircuitSpec {
    /// Parse a circuit file. Errors name the field; numeric rules are checked by
    /// [`CircuitSpec::build`].
    ///
    /// # Errors
    /// [`SpecError`] naming the offending field.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        if text.starts_with('\u{feff}') {
            return Err(SpecError::ByteOrderMark);
        }
        let v = strict_json::parse(&quote_nonfinite_words(text)).map_err(|e| {
            // serde_json appends the position, which the error already states.
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = e.to_string();
            SpecError::Json {
                line: e.line(),
                column: e.column(),
                message: message
                    .strip_suffix(&suffix)
                    .unwrap_or(&message)
                    .to_string(),
            }
        })?;
        Self::from_value(&v)
    }

    /// Parse an already-decoded JSON value. See [`CircuitSpec::from_json`].
    ///
    /// # Errors
    /// [`SpecError`] naming the offending field.
    pub fn from_value(v: &Value) -> Result<Self, SpecError> {
        let map = v.as_object().ok_or(SpecError::NotAnObject)?;
        if let Some(field) = map
            .iter()
            .filter(|(k, _)| *k != "model")
            .find_map(|(k, x)| find_nonfinite(x, k.clone()))
        {
            return Err(SpecError::NonFinite { field });
        }
        if let Some(k) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(SpecError::Unknown { field: k.clone() });
        }
        let get = |field: &'static str| map.get(field).ok_or(SpecError::Missing { field });
        let model = match get("model")?.as_str() {
            Some("main") => Model::Main,
            Some("rectified") => Model::Rectified,
            _ => {
                return Err(SpecError::WrongType {
                    field: "model".into(),
                    expected: "\"main\" or \"rectified\"",
                });
            }
        };
        let w_r = match get("w_r")? {
            Value::String(s) if s == "identity" => RecurrenceSpec::Identity,
            x if x.is_object() => RecurrenceSpec::Scaled(shorthand(x, "w_r", "identity")?),
            x if x.is_number() => RecurrenceSpec::Scaled(number(x, "w_r")?),
            x if x.is_array() => RecurrenceSpec::Dense(rows(x, "w_r")?),
            _ => {
                return Err(SpecError::WrongType {
                    field: "w_r".into(),
                    expected: "\"identity\", {\"identity\": s} (s times I), or an n x n array of rows",
                });
            }
        };
        let w = match get("w")? {
            x if x.is_object() => WeightSpec::Uniform(shorthand(x, "w", "all")?),
            x if x.is_number() => WeightSpec::Uniform(number(x, "w")?),
            x => WeightSpec::Dense(rows(x, "w")?),
        };
        Ok(Self {
            model,
            tau_y: per_neuron(get("tau_y")?, "tau_y")?,
            tau_a: per_neuron(get("tau_a")?, "tau_a")?,
            b: per_neuron(get("b")?, "b")?,
            b0: per_neuron(get("b0")?, "b0")?,
            sigma: per_neuron(get("sigma")?, "sigma")?,
            w_r,
            w,
            z: numbers(get("z")?, "z")?,
            initial: map.get("initial").map(initial).transpose()?,
        })
    }

    /// The file's initial state `[y; a]` (length 2n), validated, or `None` when the file has no
    /// `"initial"`; a missing part starts at `default`.
    ///
    /// # Errors
    /// As [`InitialSpec::state`].
    pub fn initial_state(&self, default: f64) -> Result<Option<Vec<f64>>, CoreError> {
        self.initial
            .as_ref()
            .map(|i| i.state(self.z.len(), default))
            .transpose()
    }

    /// Validate into a [`Circuit`] (scalars broadcast to length n = `z.len()`).
    ///
    /// # Errors
    /// As [`Circuit::new`].
    pub fn build(&self) -> Result<Circuit, CoreError> {
        let n = self.z.len();
        if n == 0 {
            return Err(CoreError::Empty);
        }
        let w_r = match &self.w_r {
            RecurrenceSpec::Identity => Recurrence::Identity,
            RecurrenceSpec::Scaled(s) => Recurrence::Scaled(*s),
            RecurrenceSpec::Dense(r) => Recurrence::Dense(dense(r, "w_r", n)?),
        };
        let w = match &self.w {
            WeightSpec::Uniform(s) => Mat::from_fn(n, n, |_, _| *s),
            WeightSpec::Dense(r) => dense(r, "w", n)?,
        };
        Circuit::new(CircuitParts {
            model: self.model,
            tau_y: self.tau_y.expand(n),
            tau_a: self.tau_a.expand(n),
            b: self.b.expand(n),
            b0: self.b0.expand(n),
            sigma: self.sigma.expand(n),
            w_r,
            w,
            z: self.z.clone(),
        })
    }

    /// The circuit file as JSON.
    pub fn to_json(&self) -> Value {
        use serde_json::json;
        let pn = |p: &PerNeuron| match p {
            PerNeuron::Scalar(s) => json!(s),
            PerNeuron::Vector(v) => json!(v),
        };
        let mut v = json!({
            "model": self.model.name(),
            "tau_y": pn(&self.tau_y),
            "tau_a": pn(&self.tau_a),
            "b": pn(&self.b),
            "b0": pn(&self.b0),
            "sigma": pn(&self.sigma),
            "w_r": match &self.w_r {
                RecurrenceSpec::Identity => json!("identity"),
                RecurrenceSpec::Scaled(s) => json!({ "identity": s }),
                RecurrenceSpec::Dense(r) => json!(r),
            },
            "w": match &self.w {
                WeightSpec::Uniform(s) => json!({ "all": s }),
                WeightSpec::Dense(r) => json!(r),
            },
            "z": self.z,
        });
        if let Some(init) = &self.initial {
            let mut o = serde_json::Map::new();
            if let Some(y) = &init.y {
                o.insert("y".into(), pn(y));
            }
            if let Some(a) = &init.a {
                o.insert("a".into(), pn(a));
            }
            v["initial"] = Value::Object(o);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"model":"main","tau_y":2,"tau_a":[2,3],"b":0.5,"b0":0.5,"sigma":0.1,
        "w_r":"identity","w":[[1,0.5],[0.5,1]],"z":[1,-1]}"#;

    fn with(field: &str, value: &str) -> String {
        let mut v: Value = serde_json::from_str(GOOD).unwrap();
        v[field] = serde_json::from_str(value).unwrap_or(Value::String(value.into()));
        v.to_string()
    }

    fn err(text: &str) -> String {
        match CircuitSpec::from_json(text).map(|s| s.build()) {
            Err(e) => e.to_string(),
            Ok(Err(e)) => e.to_string(),
            Ok(Ok(_)) => panic!("accepted: {text}"),
        }
    }

    #[test]
    fn good_file_round_trips() {
        let spec = CircuitSpec::from_json(GOOD).unwrap();
        let c = spec.build().unwrap();
        assert_eq!(c.n(), 2);
        assert_eq!(c.tau_y(), &[2.0, 2.0]);
        let again = CircuitSpec::from_value(&c.to_spec().to_json())
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(again.tau_a(), c.tau_a());
        assert!(again.w_r().is_identity());
    }

    #[test]
    fn every_rule_names_its_field() {
        assert!(err("{").starts_with("malformed JSON"));
        assert!(err("[1]").contains("JSON object"));
        assert!(err(&GOOD.replace(r#""sigma":0.1,"#, "")).starts_with("sigma: missing"));
        assert!(err(&with("tauy", "1")).starts_with("tauy: unknown field"));
        assert!(err(&with("model", "\"other\"")).starts_with("model:"));
        assert!(err(&with("w", "[[1,2]]")).starts_with("w: expected 2 x 2"));
        assert!(err(&with("w", "[[1,2],[3]]")).contains("row 1"));
        assert!(err(&with("w_r", "[[1,2,3],[1,2,3]]")).starts_with("w_r: expected 2 x 2"));
        assert!(err(&with("tau_y", "0")).starts_with("tau_y[0] = 0"));
        assert!(err(&with("tau_a", "[1,-2]")).starts_with("tau_a[1] = -2"));
        assert!(err(&with("b", "[1]")).starts_with("b: expected length 2"));
        assert!(err(&with("b0", "0")).starts_with("b0[0]"));
        assert!(err(&with("sigma", "-1")).starts_with("sigma[0]"));
        assert!(err(&with("w", "[[1,-0.5],[0,1]]")).starts_with("w[0][1] = -0.5"));
        assert!(err(&with("z", "[]")).starts_with("z: the input drive is empty"));
        assert!(err(&with("z", "\"x\"")).starts_with("z: expected"));
        assert!(err(&with("w_r", "true")).starts_with("w_r: expected"));
        assert!(err(&GOOD.replace(r#""b":0.5"#, r#""b":NaN"#)).starts_with("b: NaN"));
        assert!(
            err(&GOOD.replace(r#""z":[1,-1]"#, r#""z":[1,-Infinity]"#)).starts_with("z[1]: NaN")
        );
    }

    #[test]
    fn duplicate_fields_and_byte_order_marks_are_named() {
        let dup = GOOD.replace(r#""b":0.5,"#, r#""b":0.5,"b":0.7,"#);
        let e = err(&dup);
        assert!(e.contains("duplicate field \"b\""), "{e}");
        // A repeat inside a shorthand object is refused as well.
        let dup_all = GOOD.replace("[[1,0.5],[0.5,1]]", r#"{"all":1,"all":2}"#);
        assert!(err(&dup_all).contains("duplicate field \"all\""));
        let e = err(&format!("\u{feff}{GOOD}"));
        assert!(e.contains("byte-order mark"), "{e}");
    }

    #[test]
    fn explicit_shorthands_mean_what_the_bare_numbers_meant() {
        let explicit_text = with("w_r", r#"{"identity":2.5}"#)
            .replace(r#""w":[[1,0.5],[0.5,1]]"#, r#""w":{"all":0.3}"#);
        let bare_text = with("w_r", "2.5").replace(r#""w":[[1,0.5],[0.5,1]]"#, r#""w":0.3"#);
        let spec = CircuitSpec::from_json(&explicit_text).unwrap();
        let bare = CircuitSpec::from_json(&bare_text).unwrap();
        assert_eq!(spec, bare);
        // w_r = 2.5 I: 2.5 on the diagonal, 0 off it; w: 0.3 everywhere (exact values).
        let c = spec.build().unwrap();
        let bits = |v: f64| v.to_bits();
        assert_eq!(bits(c.w_r().entry(0, 0)), bits(2.5));
        assert_eq!(bits(c.w_r().entry(0, 1)), bits(0.0));
        assert_eq!(bits(c.w()[(0, 1)]), bits(0.3));
        assert_eq!(bits(c.w()[(1, 1)]), bits(0.3));
        // The explicit forms are what a spec writes back.
        let v = spec.to_json();
        assert_eq!(v["w_r"]["identity"], 2.5);
        assert_eq!(v["w"]["all"], 0.3);
        assert!(err(&with("w", r#"{"identity":1}"#)).starts_with("w: expected {\"all\""));
        assert!(err(&with("w_r", r#"{"all":1}"#)).starts_with("w_r: expected {\"identity\""));
        assert!(err(&with("w", r#"{"all":"x"}"#)).starts_with("w.all: expected a number"));
        let nan = GOOD.replace("[[1,0.5],[0.5,1]]", r#"{"all":NaN}"#);
        assert!(err(&nan).starts_with("w.all: NaN"));
    }

    #[test]
    fn initial_state_broadcasts_validates_and_names_its_field() {
        let spec = CircuitSpec::from_json(&with("initial", r#"{"y":[0.5,-0.5],"a":0.2}"#)).unwrap();
        assert_eq!(
            spec.initial_state(0.01).unwrap().unwrap(),
            vec![0.5, -0.5, 0.2, 0.2]
        );
        // A missing part starts at the default; no "initial" at all is None.
        let only_a = CircuitSpec::from_json(&with("initial", r#"{"a":[1,2]}"#)).unwrap();
        assert_eq!(
            only_a.initial_state(0.01).unwrap().unwrap(),
            vec![0.01, 0.01, 1.0, 2.0]
        );
        assert_eq!(
            CircuitSpec::from_json(GOOD)
                .unwrap()
                .initial_state(0.01)
                .unwrap(),
            None
        );
        // Round trip through to_json.
        assert_eq!(CircuitSpec::from_value(&spec.to_json()).unwrap(), spec);
        let bad = |v: &str| -> String {
            let spec = match CircuitSpec::from_json(&with("initial", v)) {
                Err(e) => return e.to_string(),
                Ok(s) => s,
            };
            spec.initial_state(0.01).unwrap_err().to_string()
        };
        assert!(bad(r#"{"y":[1,2,3]}"#).starts_with("initial.y: expected"));
        assert!(bad(r#"{"a":[1,-2]}"#).starts_with("initial.a (must be >= 0)[1] = -2"));
        assert!(bad(r#"{"a":"x"}"#).starts_with("initial.a: expected"));
        assert!(bad(r#"{"z":1}"#).starts_with("initial.z: unknown field"));
        assert!(bad("[1]").starts_with("initial: expected an object"));
        let nan = GOOD.replace(r#""z":[1,-1]"#, r#""z":[1,-1],"initial":{"y":[1,NaN]}"#);
        assert!(err(&nan).starts_with("initial.y[1]: NaN"), "{}", err(&nan));
    }

    #[test]
    fn nonfinite_words_inside_strings_are_left_alone() {
        assert_eq!(
            quote_nonfinite_words(r#"{"a":"NaN x","b":NaN}"#),
            r#"{"a":"NaN x","b":"NaN"}"#
        );
    }

    #[test]
    fn programmatic_construction_rejects_nonfinite() {
        let mut parts = CircuitSpec::from_json(GOOD)
            .unwrap()
            .build()
            .unwrap()
            .parts()
            .clone();
        parts.z[1] = f64::NAN;
        assert!(matches!(
            Circuit::new(parts),
            Err(CoreError::NonFinite { index: 1, .. })
        ));
    }
}
