//! Named tensors of a model: trainable parameters, frozen parameters and buffers, in a fixed
//! order, with the seeded initialisers the models use.
//!
//! A [`StateDict`] is a thin layer over two [`organics_grad::ParamSet<f32>`]s: the trainable
//! tensors (in registration order, the layout of gradients and of the optimiser's moments, so
//! [`organics_grad::optim::Optimizer`] updates them in place) and the other tensors (frozen
//! parameters and buffers); on top of them it keeps each tensor's [`Role`], its registration
//! order and the shape written to files.
//!
//! Names follow the reference PyTorch `state_dict` where a counterpart exists (for example
//! `autoencoder.encoder.0.weight`, `org1.log_Way`, `fc.bias`), so a checkpoint's
//! `model.safetensors` loads into PyTorch by name.
//!
//! The seeded initialisers the models use are [`organics_grad::init`]'s (re-exported here).

use organics_grad::params::{NORM_BLOCK, norm_of_block_sums, sum_of_squares};
use organics_grad::{Tape, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Elements per parallel block when gathering gradients from tapes: a multiple of the
/// norm's block, so that [`StateDict::sum_grads`] forms the norm's block sums from whole
/// blocks as it writes them.
const GATHER_BLOCK: usize = 1 << 15;
const _: () = assert!(GATHER_BLOCK.is_multiple_of(NORM_BLOCK));

/// What a tensor is to the optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Updated by the optimiser.
    Trainable,
    /// A parameter held fixed (e.g. σ, or the time constants of the fixed-τ RNN).
    Frozen,
    /// State that is not a parameter (spectral-norm vectors, initial RNN states).
    Buffer,
}

/// Where a registered tensor lives.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    role: Role,
    /// Position in the trainable set (role `Trainable`) or in the other set.
    slot: organics_grad::ParamId,
    /// Shape written to safetensors.
    shape: Vec<usize>,
}

/// The ordered tensors of a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateDict {
    trainable: organics_grad::ParamSet<f32>,
    other: organics_grad::ParamSet<f32>,
    entries: Vec<Entry>,
}

/// Handle of a tensor in a [`StateDict`] (its registration position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamId(pub usize);

impl StateDict {
    /// Adds a matrix-shaped tensor (`[rows, cols]` in files).
    ///
    /// # Panics
    /// If `data.len() != rows * cols` or the name is taken (a bug in the model's definition).
    pub fn add(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        data: Vec<f32>,
        role: Role,
    ) -> ParamId {
        self.add_shaped(name, rows, cols, data, role, vec![rows, cols])
    }

    /// Adds a vector, stored as `1 x n` on the tape and `[n]` in files.
    ///
    /// # Panics
    /// If the name is taken.
    pub fn add_vector(&mut self, name: &str, data: Vec<f32>, role: Role) -> ParamId {
        let n = data.len();
        self.add_shaped(name, 1, n, data, role, vec![n])
    }

    fn add_shaped(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        data: Vec<f32>,
        role: Role,
        shape: Vec<usize>,
    ) -> ParamId {
        assert!(self.find(name).is_none(), "tensor {name} registered twice");
        let set = match role {
            Role::Trainable => &mut self.trainable,
            Role::Frozen | Role::Buffer => &mut self.other,
        };
        let slot = set.push(name, rows, cols, data);
        self.entries.push(Entry { role, slot, shape });
        ParamId(self.entries.len() - 1)
    }

    fn set_of(&self, id: ParamId) -> (&organics_grad::ParamSet<f32>, organics_grad::ParamId) {
        let e = &self.entries[id.0];
        match e.role {
            Role::Trainable => (&self.trainable, e.slot),
            Role::Frozen | Role::Buffer => (&self.other, e.slot),
        }
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no tensor is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every handle, in registration order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + use<> {
        (0..self.entries.len()).map(ParamId)
    }

    /// The handles of the trainable tensors, in the order of [`Self::trainable`].
    pub fn trainable_ids(&self) -> impl Iterator<Item = ParamId> + '_ {
        self.ids()
            .filter(|id| self.entries[id.0].role == Role::Trainable)
    }

    /// The handle of the tensor called `name`, if any.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.ids().find(|&id| self.get(id).name == name)
    }

    /// The tensor behind `id` (name, `rows x cols`, row-major values).
    pub fn get(&self, id: ParamId) -> &Tensor<f32> {
        let (set, slot) = self.set_of(id);
        set.get(slot)
    }

    /// The values behind `id`.
    pub fn data(&self, id: ParamId) -> &[f32] {
        &self.get(id).data
    }

    /// Mutable access to the tensor behind `id` (its storage may be swapped, not resized:
    /// the shape written to files stays the registered one).
    pub fn tensor_mut(&mut self, id: ParamId) -> &mut Tensor<f32> {
        let e = &self.entries[id.0];
        match e.role {
            Role::Trainable => self.trainable.get_mut(e.slot),
            Role::Frozen | Role::Buffer => self.other.get_mut(e.slot),
        }
    }

    /// Mutable access to the values behind `id`.
    pub fn data_mut(&mut self, id: ParamId) -> &mut [f32] {
        let e = &self.entries[id.0];
        match e.role {
            Role::Trainable => self.trainable.data_mut(e.slot),
            Role::Frozen | Role::Buffer => self.other.data_mut(e.slot),
        }
    }

    /// The role of `id`.
    pub fn role(&self, id: ParamId) -> Role {
        self.entries[id.0].role
    }

    /// The shape of `id` in files (PyTorch's: `[n]` for vectors, `[out, in]` for weights).
    pub fn shape(&self, id: ParamId) -> &[usize] {
        &self.entries[id.0].shape
    }

    /// The trainable tensors, in registration order: the layout of gradients and optimiser
    /// state ([`organics_grad::ParamSet::zeros_like`]).
    pub fn trainable(&self) -> &organics_grad::ParamSet<f32> {
        &self.trainable
    }

    /// The trainable tensors, mutably (what the optimiser updates).
    pub fn trainable_mut(&mut self) -> &mut organics_grad::ParamSet<f32> {
        &mut self.trainable
    }

    /// Number of trainable scalars.
    pub fn trainable_count(&self) -> usize {
        self.count(Role::Trainable)
    }

    /// Number of scalars with `role`.
    pub fn count(&self, role: Role) -> usize {
        self.ids()
            .filter(|&id| self.role(id) == role)
            .map(|id| self.data(id).len())
            .sum()
    }

    /// Pushes every tensor on `tape` (trainable ones as differentiable leaves) and returns the
    /// handles in registration order.
    pub fn to_tape(&self, tape: &mut Tape<f32>) -> Vec<Var> {
        self.ids()
            .map(|id| {
                let t = self.get(id);
                match self.role(id) {
                    Role::Trainable => tape.param(t.rows, t.cols, &t.data),
                    Role::Frozen | Role::Buffer => tape.constant(t.rows, t.cols, &t.data),
                }
            })
            .collect()
    }

    /// Copies the gradients of the trainable leaves of `vars` (from [`Self::to_tape`], after
    /// [`Tape::backward`]) into `grads` (layout of [`Self::trainable`]); a leaf the loss does
    /// not reach gets zeros.
    ///
    /// # Errors
    /// [`TrainError::Grad`] if `grads` does not have the trainable layout.
    pub fn gather_grads(
        &self,
        tape: &Tape<f32>,
        vars: &[Var],
        grads: &mut organics_grad::ParamSet<f32>,
    ) -> Result<(), TrainError> {
        self.sum_grads(&[(tape, vars)], grads).map(|_| ())
    }

    /// The sum of the trainable leaves' gradients over several tapes (each with its `vars`
    /// from [`Self::to_tape`]), in the order given, into `grads`: entry by entry
    /// `((g₀ + g₁) + g₂) + …`, a leaf a tape's loss does not reach counting as zeros (and a
    /// leaf no tape reaches getting zeros). The trainer sums its per-thread tapes this way, in
    /// chunk order, in one pass over `grads`.
    ///
    /// Returns the sum's global norm, formed block by block as each block of the sum is
    /// written (while it is in cache): the same value, to the bit, as
    /// [`organics_grad::ParamSet::global_norm`] of `grads` afterwards, without a second pass
    /// over them.
    ///
    /// Element-wise, so the same results on any thread: in blocks across the pool when called
    /// on one of its workers (as the trainer does), else on this thread. Every tensor's blocks
    /// go to the pool together.
    ///
    /// # Errors
    /// [`TrainError::Grad`] if `grads` does not have the trainable layout.
    pub fn sum_grads(
        &self,
        tapes: &[(&Tape<f32>, &[Var])],
        grads: &mut organics_grad::ParamSet<f32>,
    ) -> Result<f64, TrainError> {
        self.trainable.check_same_layout(grads)?;
        // One slot per block of the norm, in `global_norm`'s order (tensor by tensor).
        let norm_blocks: usize = grads
            .tensors()
            .iter()
            .map(|t| t.data.len().div_ceil(NORM_BLOCK))
            .sum();
        let mut block_sums = vec![0.0f64; norm_blocks];
        let mut slots = block_sums.as_mut_slice();
        let mut blocks = Vec::new();
        for (id, dst) in self.trainable_ids().zip(grads.tensors_mut()) {
            let len = dst.data.len();
            // Each tape's gradient of this leaf, left out where its loss does not reach it.
            let parts: Vec<&[f32]> = tapes
                .iter()
                .map(|(tape, vars)| tape.grad(vars[id.0]))
                .filter(|g| g.len() == len)
                .collect();
            for (k, d) in dst.data.chunks_mut(GATHER_BLOCK).enumerate() {
                let range = k * GATHER_BLOCK..k * GATHER_BLOCK + d.len();
                let parts: Vec<&[f32]> = parts.iter().map(|g| &g[range.clone()]).collect();
                let (sums, rest) =
                    std::mem::take(&mut slots).split_at_mut(d.len().div_ceil(NORM_BLOCK));
                slots = rest;
                blocks.push((d, parts, sums));
            }
        }
        let sum = |(d, parts, sums): SumBlock<'_>| {
            match parts.split_first() {
                Some((first, rest)) => {
                    d.copy_from_slice(first);
                    for g in rest {
                        organics_grad::linalg::add_assign(d, g);
                    }
                }
                None => d.fill(0.0),
            }
            // A gather block holds whole blocks of the norm (see `GATHER_BLOCK`).
            for (s, b) in sums.iter_mut().zip(d.chunks(NORM_BLOCK)) {
                *s = sum_of_squares(b);
            }
        };
        if rayon::current_thread_index().is_some() {
            blocks.into_par_iter().for_each(sum);
        } else {
            blocks.into_iter().for_each(sum);
        }
        Ok(norm_of_block_sums(&block_sums))
    }
}

/// One block of [`StateDict::sum_grads`]: the sum's entries, each tape's gradient over them,
/// and the norm's block sums they hold.
type SumBlock<'a> = (&'a mut [f32], Vec<&'a [f32]>, &'a mut [f64]);

pub use organics_grad::init::{
    identity, kaiming_uniform, normal, orthogonal, uniform, unit_uniform,
};

#[cfg(test)]
mod tests {
    use super::*;
    use organics_grad::linalg::Trans;

    /// Each tape with its variables, as [`StateDict::sum_grads`] takes them.
    fn parts<'a>(tapes: &'a [Tape<f32>], vars: &'a [Vec<Var>]) -> Vec<(&'a Tape<f32>, &'a [Var])> {
        tapes
            .iter()
            .zip(vars)
            .map(|(t, v)| (t, v.as_slice()))
            .collect()
    }

    /// Two trainable leaves `w` (`3 x 4`) and `b` (`1 x 3`): a tape's loss `sum(sigmoid(x wᵀ))`
    /// reaches `w` only, or with `+ sum(b ⊙ b)` both.
    fn dict() -> StateDict {
        let mut d = StateDict::default();
        let w = (0..12).map(|k| (k as f32 - 5.5) * 0.3).collect();
        d.add("w", 3, 4, w, Role::Trainable);
        d.add_vector("b", vec![0.5, -1.25, 2.0], Role::Trainable);
        d
    }

    fn backward(d: &StateDict, tape: &mut Tape<f32>, x: &[f32], with_b: bool) -> Vec<Var> {
        let vars = d.to_tape(tape);
        let xv = tape.constant(5, 4, x);
        let h = tape.matmul(xv, Trans::No, vars[0], Trans::Yes);
        let s = tape.sigmoid(h);
        let mut loss = tape.sum(s);
        if with_b {
            let bb = tape.mul(vars[1], vars[1]);
            let sb = tape.sum(bb);
            loss = tape.add(loss, sb);
        }
        tape.backward(loss).unwrap();
        vars
    }

    #[test]
    fn the_sum_forms_the_global_norm_of_its_result_bit_for_bit() {
        // Leaves of several gather blocks with a partial last one, of one partial block, and
        // of one entry; the last tape does not reach `c`. The norm formed during the sum must
        // be `global_norm` of the summed gradient, to the bit, on and off pools.
        let mut d = StateDict::default();
        let shapes = [("a", 7, 10_001), ("b", 1, 5_000), ("c", 1, 1)];
        for (name, rows, cols) in shapes {
            let data = (0..rows * cols)
                .map(|k| ((k * 37 % 101) as f32 - 50.0) * 0.03)
                .collect();
            d.add(name, rows, cols, data, Role::Trainable);
        }
        let mut tapes: Vec<Tape<f32>> = (0..3).map(|_| Tape::new()).collect();
        let vars: Vec<Vec<Var>> = tapes
            .iter_mut()
            .enumerate()
            .map(|(k, tape)| {
                let vars = d.to_tape(tape);
                let mut loss = None;
                for (leaf, &(_, rows, cols)) in shapes.iter().enumerate() {
                    if k == 2 && leaf == 2 {
                        continue;
                    }
                    let scale: Vec<f32> = (0..rows * cols)
                        .map(|i| ((i + k) % 13) as f32 * 0.1 - 0.6)
                        .collect();
                    let sv = tape.constant(rows, cols, &scale);
                    let prod = tape.mul(vars[leaf], sv);
                    let act = tape.sigmoid(prod);
                    let part = tape.sum(act);
                    loss = Some(loss.map_or(part, |l| tape.add(l, part)));
                }
                tape.backward(loss.expect("a loss")).unwrap();
                vars
            })
            .collect();
        let parts = parts(&tapes, &vars);
        let run = |threads: Option<usize>| {
            let mut grads = d.trainable().zeros_like();
            let norm = match threads {
                None => d.sum_grads(&parts, &mut grads),
                Some(n) => rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap()
                    .install(|| d.sum_grads(&parts, &mut grads)),
            }
            .unwrap();
            (norm, grads)
        };
        let (norm, grads) = run(None);
        assert!(norm > 0.0);
        assert_eq!(norm.to_bits(), grads.global_norm().to_bits());
        // The largest leaf is summed as before: ((g₀ + g₁) + g₂), entry by entry.
        let g = |k: usize| tapes[k].grad(vars[k][0]);
        for i in [0, GATHER_BLOCK - 1, GATHER_BLOCK, 70_006] {
            assert_eq!(
                grads.tensors()[0].data[i].to_bits(),
                ((g(0)[i] + g(1)[i]) + g(2)[i]).to_bits()
            );
        }
        for threads in [1, 2, 3] {
            let (n, on_pool) = run(Some(threads));
            assert_eq!(n.to_bits(), norm.to_bits(), "{threads} threads");
            assert_eq!(on_pool, grads, "{threads} threads");
        }
    }

    #[test]
    fn the_gradients_of_several_tapes_are_summed_in_order_bit_for_bit() {
        let d = dict();
        let xs: Vec<Vec<f32>> = (0..3)
            .map(|s| {
                (0..20)
                    .map(|k| ((k * 7 + s * 3) % 11) as f32 * 0.37 - 1.9)
                    .collect()
            })
            .collect();
        let mut tapes: Vec<Tape<f32>> = (0..3).map(|_| Tape::new()).collect();
        // The middle tape's loss does not reach `b`.
        let vars: Vec<Vec<Var>> = tapes
            .iter_mut()
            .zip(&xs)
            .enumerate()
            .map(|(k, (t, x))| backward(&d, t, x, k != 1))
            .collect();
        let parts = parts(&tapes, &vars);
        let mut grads = d.trainable().zeros_like();
        grads.tensors_mut()[0].data.fill(f32::NAN); // stale contents are overwritten
        grads.tensors_mut()[1].data.fill(f32::NAN);
        d.sum_grads(&parts, &mut grads).unwrap();
        let g = |k: usize, leaf: usize| tapes[k].grad(vars[k][leaf]).to_vec();
        let w: Vec<f32> = (0..12)
            .map(|i| (g(0, 0)[i] + g(1, 0)[i]) + g(2, 0)[i])
            .collect();
        let b: Vec<f32> = (0..3).map(|i| g(0, 1)[i] + g(2, 1)[i]).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&grads.tensors()[0].data), bits(&w));
        assert_eq!(bits(&grads.tensors()[1].data), bits(&b));
        // The same on a pool, and one tape alone is a copy.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut on_pool = d.trainable().zeros_like();
        pool.install(|| d.sum_grads(&parts, &mut on_pool)).unwrap();
        assert_eq!(on_pool, grads);
        let mut one = d.trainable().zeros_like();
        d.gather_grads(&tapes[1], &vars[1], &mut one).unwrap();
        assert_eq!(one.tensors()[0].data, g(1, 0));
        assert_eq!(one.tensors()[1].data, vec![0.0; 3], "unreached: zeros");
    }
}
