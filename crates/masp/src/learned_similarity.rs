//! The similarity matrix `S`, `(A, A)`: symmetric, entries in `[0, 1]`, unit diagonal, kept
//! there by [`Similarity::project`] after every update (docs/method.md, section 2).
//!
//! `S` lives in a candle [`Var`] on the Q-network's device and in its dtype (f32 in
//! training; f64 in the gradient tests): every constructor takes the dtype and device, and
//! the penalty refuses Q-values of another dtype. [`SimilarityStats`] summarises `S` for
//! logging.
//!
//! ```
//! use candle_core::{DType, Device};
//! use masp::Similarity;
//! // 6 actions, uniform off-diagonal 1/(A-1) = 0.2: every action keeps half its own weight.
//! let s = Similarity::half_self_weight(6, DType::F32, &Device::Cpu)?;
//! let stats = s.stats()?;
//! assert!((stats.mean_self_weight - 0.5).abs() < 1e-6);
//! assert!((stats.mean_off_diagonal - 0.2).abs() < 1e-6);
//! assert_eq!(s.to_vec()?[0..2], [1.0, 0.2]);
//! # Ok::<(), masp::Error>(())
//! ```

use candle_core::{DType, Device, Tensor, Var};

use crate::config::SimilarityInit;
use crate::error::{Error, Result};

/// `S`, the `(A, A)` similarity matrix, as a candle variable.
///
/// Invariant (after every constructor and every [`project`](Self::project)): symmetric,
/// every entry in `[0, 1]`, diagonal exactly 1.
///
/// Not `Clone`: a cloned [`Var`] shares its storage, so a clone would silently move with
/// the original. Copy one with `Similarity::from_tensor(&s.tensor())`.
#[derive(Debug)]
pub struct Similarity {
    s: Var,
    /// `I` and `1 - I`, `(A, A)`, kept to set the diagonal without a gather.
    eye: Tensor,
    off_diagonal: Tensor,
}

/// A summary of `S` for logging (docs/method.md, section 2: watch the self-weight).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimilarityStats {
    /// Mean of the `A (A - 1)` off-diagonal entries (0 when `A = 1`).
    pub mean_off_diagonal: f64,
    /// Largest off-diagonal entry (0 when `A = 1`).
    pub max_off_diagonal: f64,
    /// Mean over rows of the entropy of `P(S)`'s row, in nats: 0 at `S = I`, `ln A` when
    /// `P` is uniform (every Q pulled to the global mean).
    pub mean_row_entropy: f64,
    /// Mean over rows of the self-weight `P_aa = 1 / sum_b S_ab`.
    pub mean_self_weight: f64,
    /// Smallest self-weight.
    pub min_self_weight: f64,
}

impl Similarity {
    /// `S = I`: no penalty. With the row-normalised form a fixed point of the meta-gradient.
    pub fn identity(num_actions: usize, dtype: DType, device: &Device) -> Result<Self> {
        Self::uniform(num_actions, 0.0, dtype, device)
    }

    /// Every off-diagonal entry `s`, in `[0, 1]`.
    pub fn uniform(num_actions: usize, s: f64, dtype: DType, device: &Device) -> Result<Self> {
        if !(0.0..=1.0).contains(&s) {
            return Err(Error::matrix(format!("uniform off-diagonal similarity {s} is outside [0, 1]")));
        }
        let values = Tensor::full(s, (num_actions, num_actions), device)?.to_dtype(dtype)?;
        Self::from_tensor(&values)
    }

    /// Uniform off-diagonal `s = (1/w - 1) / (A - 1)` (clipped to 1), so each row's
    /// self-weight in `P(S)` is `w`, in `(0, 1]`.
    pub fn with_self_weight(num_actions: usize, w: f64, dtype: DType, device: &Device) -> Result<Self> {
        if !(w > 0.0 && w <= 1.0) {
            return Err(Error::matrix(format!("self-weight {w} is outside (0, 1]")));
        }
        let s = if num_actions > 1 { ((1.0 / w - 1.0) / (num_actions - 1) as f64).min(1.0) } else { 0.0 };
        Self::uniform(num_actions, s, dtype, device)
    }

    /// The recommended start (docs/method.md, section 5): `s = 1 / (A - 1)`, self-weight one half.
    pub fn half_self_weight(num_actions: usize, dtype: DType, device: &Device) -> Result<Self> {
        Self::with_self_weight(num_actions, 0.5, dtype, device)
    }

    /// `S` from `(A, A)` row-major values, projected (so any square matrix of finite
    /// values is accepted and made valid).
    pub fn from_values(values: &[f32], num_actions: usize, dtype: DType, device: &Device) -> Result<Self> {
        if values.len() != num_actions * num_actions {
            return Err(Error::matrix(format!(
                "{} values for {num_actions} actions: expected {num_actions} x {num_actions} = {}",
                values.len(),
                num_actions * num_actions
            )));
        }
        let t = Tensor::from_slice(values, (num_actions, num_actions), device)?.to_dtype(dtype)?;
        Self::from_tensor(&t)
    }

    /// `S` from a square tensor of finite values, copied (not aliased) and projected. Dtype
    /// and device follow the tensor.
    pub fn from_tensor(values: &Tensor) -> Result<Self> {
        let dims = values.dims();
        if dims.len() != 2 || dims[0] != dims[1] {
            return Err(Error::Shape {
                what: "a similarity matrix".into(),
                expected: "(A, A)".into(),
                got: dims.to_vec(),
            });
        }
        check_finite(values)?;
        let (a, dtype, device) = (dims[0], values.dtype(), values.device());
        let eye = Tensor::eye(a, dtype, device)?;
        let off_diagonal = (Tensor::ones((a, a), dtype, device)? - &eye)?;
        let s = Var::from_tensor(&values.detach())?;
        let similarity = Self { s, eye, off_diagonal };
        similarity.project()?;
        Ok(similarity)
    }

    /// A structural prior (e.g. the macro-actions crate's edit-distance similarity), its
    /// off-diagonal part scaled by one factor `c` so that a row with the mean off-diagonal
    /// sum `r` has self-weight `w`: `c = (1/w - 1) / r`; then projected (entries scaled
    /// past 1 are clipped). `None` uses the prior as given. A prior with no off-diagonal
    /// mass stays the identity.
    pub fn from_prior(prior: &Tensor, self_weight: Option<f64>) -> Result<Self> {
        let raw = Self::from_tensor(prior)?;
        let Some(w) = self_weight else { return Ok(raw) };
        if !(w > 0.0 && w <= 1.0) {
            return Err(Error::matrix(format!("self-weight {w} is outside (0, 1]")));
        }
        let off = (raw.s.as_tensor() * &raw.off_diagonal)?;
        let mean_row_sum = scalar(&off.sum_all()?)? / raw.num_actions() as f64;
        if mean_row_sum == 0.0 {
            return Ok(raw);
        }
        let c = (1.0 / w - 1.0) / mean_row_sum;
        Self::from_tensor(&((off * c)? + &raw.eye)?)
    }

    /// `S` as `init` says, for `num_actions` actions. [`SimilarityInit::Prior`] needs the
    /// prior matrix, `(A, A)`, in `prior`; the other kinds ignore it.
    pub fn from_init(
        init: &SimilarityInit,
        num_actions: usize,
        prior: Option<&Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        init.validate()?;
        match init {
            SimilarityInit::Identity => Self::identity(num_actions, dtype, device),
            SimilarityInit::Uniform(s) => Self::uniform(num_actions, *s, dtype, device),
            SimilarityInit::SelfWeight(w) => Self::with_self_weight(num_actions, *w, dtype, device),
            SimilarityInit::Prior { measure, self_weight } => {
                let prior = prior.ok_or_else(|| {
                    Error::matrix(format!(
                        "init = prior ({measure}) needs the prior matrix: compute it with \
                         macro_actions::SimilarityMatrix::structural and pass its values"
                    ))
                })?;
                if prior.dims() != [num_actions, num_actions] {
                    return Err(Error::Shape {
                        what: format!("the {measure} prior"),
                        expected: format!("({num_actions}, {num_actions})"),
                        got: prior.dims().to_vec(),
                    });
                }
                let prior = prior.to_device(device)?.to_dtype(dtype)?;
                Self::from_prior(&prior, Some(*self_weight))
            }
        }
    }

    /// Puts `S` back on its constraint set: symmetrise `(S + S^T) / 2`, clip to `[0, 1]`,
    /// set the diagonal to 1. On a matrix already there it changes no bit.
    pub fn project(&self) -> Result<()> {
        let s = self.s.as_tensor();
        let symmetric = ((s + s.t()?)? * 0.5)?;
        let clipped = symmetric.clamp(0.0, 1.0)?;
        // s * 0 + 1 on the diagonal, s * 1 + 0 off it: exact.
        let projected = ((clipped * &self.off_diagonal)? + &self.eye)?;
        self.s.set(&projected)?;
        Ok(())
    }

    /// The part of a full-matrix gradient `dL/dS` (every entry a free parameter) that can
    /// move `S` within its constraint set: symmetrised, zero on the (fixed) diagonal. For a
    /// pair `a != b` the derivative along the symmetric parameter `S_ab = S_ba` is twice
    /// this entry.
    pub fn tangent(&self, grad: &Tensor) -> Result<Tensor> {
        Ok((((grad + grad.t()?)? * 0.5)? * &self.off_diagonal)?)
    }

    /// `A`.
    pub fn num_actions(&self) -> usize {
        self.eye.dims()[0]
    }

    pub fn dtype(&self) -> DType {
        self.s.dtype()
    }

    pub fn device(&self) -> &Device {
        self.s.device()
    }

    /// The variable that holds `S`, for an optimiser or a backward pass.
    pub fn var(&self) -> &Var {
        &self.s
    }

    /// `S` detached from the graph, `(A, A)`. It shares storage with the variable, so it
    /// changes when `S` is updated: use [`to_vec`](Self::to_vec) for a snapshot.
    pub fn tensor(&self) -> Tensor {
        self.s.as_detached_tensor()
    }

    /// `P(S)`, `(A, A)`: `S` with each row divided by its row sum (docs/method.md, section 2),
    /// detached; what the network's S-embedding is handed as its context.
    pub fn row_normalised(&self) -> Result<Tensor> {
        crate::penalty::row_normalised(&self.tensor())
    }

    /// A snapshot of `S`, `(A, A)` row-major, in f32 whatever its dtype.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        host_f32(self.s.as_tensor())
    }

    /// Entry `(i, j)` as f64 (one device read; for tests and logs, not loops).
    pub fn get(&self, i: usize, j: usize) -> Result<f64> {
        scalar(&self.s.as_tensor().get(i)?.get(j)?)
    }

    /// Mean and largest off-diagonal similarity, the row entropy of `P(S)` and the
    /// self-weights: one pass over `S` on its device, five scalars read back.
    pub fn stats(&self) -> Result<SimilarityStats> {
        let a = self.num_actions();
        let s = self.s.as_tensor();
        let row_sums = s.sum_keepdim(1)?; // (A, 1), >= 1 since the diagonal is 1
        let p = s.broadcast_div(&row_sums)?;
        // p ln p with 0 ln 0 = 0: ln of max(p, tiny) is finite and is multiplied by p = 0.
        let log_p = p.maximum(f32::MIN_POSITIVE as f64)?.log()?;
        let entropy = (p * log_p)?.sum(1)?.neg()?; // (A,)
        let self_weight = row_sums.recip()?;
        let off = (s * &self.off_diagonal)?;
        let pairs = (a * a.saturating_sub(1)) as f64;
        Ok(SimilarityStats {
            mean_off_diagonal: if pairs > 0.0 { scalar(&off.sum_all()?)? / pairs } else { 0.0 },
            max_off_diagonal: scalar(&off.max_all()?)?,
            mean_row_entropy: scalar(&entropy.mean_all()?)?,
            mean_self_weight: scalar(&self_weight.mean_all()?)?,
            min_self_weight: scalar(&self_weight.min_all()?)?,
        })
    }
}

/// Any tensor's values in f32, flattened in row-major order, on the host.
pub(crate) fn host_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// A scalar tensor read back as f64, whatever its dtype.
pub(crate) fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Fails naming the first non-finite entry of a matrix.
fn check_finite(values: &Tensor) -> Result<()> {
    let flat = values.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    if let Some(k) = flat.iter().position(|v| !v.is_finite()) {
        let a = values.dims()[1].max(1);
        return Err(Error::matrix(format!("entry ({}, {}) is {}", k / a, k % a, flat[k])));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::backprop::GradStore;
    use candle_nn::{AdamW, Optimizer, ParamsAdamW, SGD};
    use proptest::prelude::*;

    const CPU: Device = Device::Cpu;

    fn rows(s: &Similarity) -> Vec<Vec<f64>> {
        s.tensor().to_dtype(DType::F64).unwrap().to_vec2().unwrap()
    }

    /// The three invariants, checked bit for bit on the symmetry and the diagonal.
    fn assert_valid(s: &Similarity) {
        let m = rows(s);
        for (i, row) in m.iter().enumerate() {
            assert_eq!(row[i], 1.0, "diagonal ({i}, {i})");
            for (j, &v) in row.iter().enumerate() {
                assert!((0.0..=1.0).contains(&v), "entry ({i}, {j}) = {v}");
                assert_eq!(v.to_bits(), m[j][i].to_bits(), "asymmetric at ({i}, {j})");
            }
        }
    }

    #[test]
    fn initialisations() {
        let s = Similarity::identity(4, DType::F64, &CPU).unwrap();
        assert_eq!(rows(&s)[1], [0.0, 1.0, 0.0, 0.0]);
        let s = Similarity::half_self_weight(5, DType::F64, &CPU).unwrap();
        assert_eq!(rows(&s)[0], [1.0, 0.25, 0.25, 0.25, 0.25]);
        assert_eq!(s.stats().unwrap().mean_self_weight, 0.5);
        // A self-weight too small for the pool size clips s to 1 (P uniform).
        let s = Similarity::with_self_weight(3, 0.01, DType::F32, &CPU).unwrap();
        assert_eq!(s.to_vec().unwrap(), vec![1.0; 9]);
        assert!(Similarity::uniform(3, 1.5, DType::F32, &CPU).is_err());
        // One action: nothing off the diagonal.
        let s = Similarity::half_self_weight(1, DType::F32, &CPU).unwrap();
        assert_eq!(s.to_vec().unwrap(), [1.0]);
        assert_eq!(s.stats().unwrap().mean_off_diagonal, 0.0);
    }

    #[test]
    fn from_values_projects_and_refuses_bad_input() {
        let s = Similarity::from_values(&[0.3, 0.8, -0.4, 2.0], 2, DType::F32, &CPU).unwrap();
        assert_eq!(s.to_vec().unwrap(), [1.0, 0.2, 0.2, 1.0]); // (0.8 - 0.4) / 2
        assert!(matches!(
            Similarity::from_values(&[1.0; 3], 2, DType::F32, &CPU),
            Err(Error::InvalidMatrix { .. })
        ));
        let err = Similarity::from_values(&[1.0, f32::NAN, 0.0, 1.0], 2, DType::F32, &CPU).unwrap_err();
        assert!(err.to_string().contains("entry (0, 1) is NaN"), "{err}");
        let t = Tensor::zeros((2, 3), DType::F32, &CPU).unwrap();
        assert!(matches!(Similarity::from_tensor(&t), Err(Error::Shape { .. })));
    }

    #[test]
    fn from_tensor_copies_and_follows_the_dtype() {
        let t = Tensor::new(&[[1.0f64, 0.5], [0.5, 1.0]], &CPU).unwrap();
        let s = Similarity::from_tensor(&t).unwrap();
        assert_eq!(s.dtype(), DType::F64);
        s.var().set(&Tensor::eye(2, DType::F64, &CPU).unwrap()).unwrap();
        assert_eq!(t.to_vec2::<f64>().unwrap()[0][1], 0.5, "the caller's tensor is not aliased");
    }

    #[test]
    fn prior_is_scaled_to_the_requested_self_weight() {
        // Row sums off the diagonal: 0.6, 0.6, 0.4 (edit-distance-like values); mean 8/15.
        let prior = Tensor::new(&[[1.0f64, 0.4, 0.2], [0.4, 1.0, 0.2], [0.2, 0.2, 1.0]], &CPU).unwrap();
        let s = Similarity::from_prior(&prior, Some(0.5)).unwrap();
        let c = 1.0 / (1.6 / 3.0);
        let m = rows(&s);
        assert!((m[0][1] - 0.4 * c).abs() < 1e-12 && (m[0][2] - 0.2 * c).abs() < 1e-12);
        let raw = Similarity::from_prior(&prior, None).unwrap();
        assert_eq!(rows(&raw)[0], [1.0, 0.4, 0.2]);
        let init = SimilarityInit::Prior { measure: "edit_distance".into(), self_weight: 0.5 };
        let err = Similarity::from_init(&init, 3, None, DType::F64, &CPU).unwrap_err();
        assert!(err.to_string().contains("needs the prior matrix"), "{err}");
        let s2 = Similarity::from_init(&init, 3, Some(&prior), DType::F64, &CPU).unwrap();
        assert_eq!(rows(&s2), m);
        assert!(Similarity::from_init(&init, 4, Some(&prior), DType::F64, &CPU).is_err());
    }

    #[test]
    fn stats_of_identity_and_uniform() {
        let s = Similarity::identity(4, DType::F32, &CPU).unwrap().stats().unwrap();
        assert_eq!((s.mean_off_diagonal, s.mean_row_entropy, s.min_self_weight), (0.0, 0.0, 1.0));
        let s = Similarity::uniform(4, 1.0, DType::F32, &CPU).unwrap().stats().unwrap();
        assert!((s.mean_row_entropy - 4f64.ln()).abs() < 1e-6, "P uniform: entropy ln A");
        assert_eq!((s.mean_self_weight, s.max_off_diagonal), (0.25, 1.0));
    }

    #[test]
    fn tangent_is_symmetric_with_zero_diagonal() {
        let s = Similarity::identity(2, DType::F64, &CPU).unwrap();
        let g = Tensor::new(&[[5.0f64, 1.0], [3.0, 7.0]], &CPU).unwrap();
        assert_eq!(s.tangent(&g).unwrap().to_vec2::<f64>().unwrap(), [[0.0, 2.0], [2.0, 0.0]]);
    }

    /// A random square matrix with entries well outside [0, 1], to exercise every clip.
    fn matrix(max_a: usize) -> impl Strategy<Value = (usize, Vec<f32>)> {
        (1..=max_a).prop_flat_map(|a| (Just(a), proptest::collection::vec(-2.0f32..3.0, a * a)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn projection_holds_and_is_idempotent((a, values) in matrix(7), f64_dtype in any::<bool>()) {
            let dtype = if f64_dtype { DType::F64 } else { DType::F32 };
            let s = Similarity::from_values(&values, a, dtype, &CPU).unwrap();
            assert_valid(&s);
            let before = rows(&s);
            s.project().unwrap();
            prop_assert_eq!(rows(&s), before);
        }

        /// The projection invariants after every step of both meta-optimisers, fed random
        /// (not even symmetric) gradients, as a meta step would feed them tangents.
        #[test]
        fn invariants_hold_after_every_step(
            (a, values) in matrix(6),
            grads in proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, 36), 1..8),
            adam in any::<bool>(),
            raw in any::<bool>(),
        ) {
            let s = Similarity::from_values(&values, a, DType::F32, &CPU).unwrap();
            let vars = vec![s.var().clone()];
            let mut plain = SGD::new(vars.clone(), 0.3).unwrap();
            let params = ParamsAdamW { lr: 0.3, weight_decay: 0.0, ..Default::default() };
            let mut adamw = AdamW::new(vars, params).unwrap();
            for g in grads {
                let g = Tensor::from_slice(&g[..a * a], (a, a), &CPU).unwrap();
                let g = if raw { g } else { s.tangent(&g).unwrap() };
                let mut store = GradStore::default();
                store.insert(s.var().as_tensor(), g);
                if adam { adamw.step(&store).unwrap() } else { plain.step(&store).unwrap() }
                s.project().unwrap();
                assert_valid(&s);
            }
        }
    }
}
