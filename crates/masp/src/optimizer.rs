//! The optimiser that moves `S` along the meta-gradient: plain gradient descent or Adam,
//! with Adam's state (moments and step count) in the open so that a checkpoint can save it.
//!
//! ```text
//! plain: S <- S - beta g
//! adam:  m <- beta1 m + (1 - beta1) g      v <- beta2 v + (1 - beta2) g^2      (t <- t + 1)
//!        S <- S - beta m_hat / (sqrt(v_hat) + eps),   m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)
//! ```
//!
//! Shapes: `S`, `g`, `m` and `v` are all `(A, A)` in `S`'s dtype and on its device.
//!
//! Why not `candle_nn::AdamW` (used before): its moments and step count are private
//! (candle-nn 0.11), so a resumed run would restart them, and with them Adam's bias
//! correction: its first steps after a resume move every entry of `S` by about `beta`
//! again. The step here is candle's `AdamW` with `weight_decay = 0` in the same order of
//! tensor operations, so runs move `S` exactly as before (a test checks it bit for bit).
//! Plain descent is candle's `SGD` step written out, for the same reason of one code path.
//! The rainbow crate has its own Adam with open state; masp's core depends on candle only,
//! and `S` is one small variable that needs none of its fused CPU passes.

use candle_core::{Result, Tensor, Var};

use crate::config::{MaspConfig, MetaOptimizer};

/// The step on the one variable `S`.
#[derive(Debug)]
pub(crate) enum SimilarityOptimizer {
    Plain { lr: f64 },
    Adam(Adam),
}

/// Adam over `S`, betas 0.9 and 0.999, eps 1e-8 (candle's `ParamsAdamW` defaults).
#[derive(Debug)]
pub(crate) struct Adam {
    lr: f64,
    state: AdamState,
}

/// Adam's state: first and second moments, `(A, A)`, and `t`, the steps taken.
#[derive(Clone, Debug)]
pub(crate) struct AdamState {
    pub m: Tensor,
    pub v: Tensor,
    pub step: u64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl SimilarityOptimizer {
    /// The optimiser `config.meta_optimizer` names, with learning rate `config.beta` and, for
    /// Adam, zero moments shaped like `s`.
    pub(crate) fn new(config: &MaspConfig, s: &Var) -> Result<Self> {
        Ok(match config.meta_optimizer {
            MetaOptimizer::Plain => SimilarityOptimizer::Plain { lr: config.beta },
            MetaOptimizer::Adam => {
                let zeros = || Tensor::zeros(s.shape(), s.dtype(), s.device());
                let state = AdamState { m: zeros()?, v: zeros()?, step: 0 };
                SimilarityOptimizer::Adam(Adam { lr: config.beta, state })
            }
        })
    }

    /// One step of `s` against `grad`, `(A, A)`.
    pub(crate) fn step(&mut self, s: &Var, grad: &Tensor) -> Result<()> {
        match self {
            SimilarityOptimizer::Plain { lr } => s.set(&s.as_tensor().sub(&(grad * *lr)?)?),
            SimilarityOptimizer::Adam(adam) => adam.step(s, grad),
        }
    }

    /// Adam's state; `None` for plain descent, which has none.
    pub(crate) fn adam_state(&self) -> Option<&AdamState> {
        match self {
            SimilarityOptimizer::Plain { .. } => None,
            SimilarityOptimizer::Adam(adam) => Some(&adam.state),
        }
    }

    /// Mutable access to Adam's state, to restore a saved one; `None` for plain descent.
    pub(crate) fn adam_state_mut(&mut self) -> Option<&mut AdamState> {
        match self {
            SimilarityOptimizer::Plain { .. } => None,
            SimilarityOptimizer::Adam(adam) => Some(&mut adam.state),
        }
    }
}

impl Adam {
    /// candle's `AdamW::step` with `weight_decay = 0`, operation for operation (its
    /// `theta * (1 - lr * 0)` is a multiplication by 1 and left out).
    fn step(&mut self, s: &Var, g: &Tensor) -> Result<()> {
        let state = &mut self.state;
        state.step += 1;
        // candle takes `powi(step as i32)`; past i32::MAX steps both powers are 0 anyway.
        let t = i32::try_from(state.step).unwrap_or(i32::MAX);
        let scale_m = 1f64 / (1f64 - BETA1.powi(t));
        let scale_v = 1f64 / (1f64 - BETA2.powi(t));
        let next_m = ((&state.m * BETA1)? + (g * (1.0 - BETA1))?)?;
        let next_v = ((&state.v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
        let m_hat = (&next_m * scale_m)?;
        let v_hat = (&next_v * scale_v)?;
        let adjusted = (m_hat / (v_hat.sqrt()? + EPS)?)?;
        s.set(&(s.as_tensor() - (adjusted * self.lr)?)?)?;
        state.m = next_m;
        state.v = next_v;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::backprop::GradStore;
    use candle_core::{DType, Device};
    use candle_nn::{AdamW, Optimizer, ParamsAdamW, SGD};

    use super::*;

    fn bits(t: &Tensor) -> Vec<u64> {
        t.flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// The reference is candle's own optimisers, as `Masp` used them before: 50 steps on
    /// random gradients of varying scale give bit-identical variables, in f32 and f64.
    #[test]
    fn matches_candles_adamw_and_sgd_bit_for_bit() {
        let dev = Device::Cpu;
        for dtype in [DType::F32, DType::F64] {
            for kind in [MetaOptimizer::Adam, MetaOptimizer::Plain] {
                let config = MaspConfig { meta_optimizer: kind, beta: 3e-3, ..Default::default() };
                let init = Tensor::rand(0f32, 1., (7, 7), &dev).unwrap().to_dtype(dtype).unwrap();
                let ours = Var::from_tensor(&init).unwrap();
                let theirs = Var::from_tensor(&init.copy().unwrap()).unwrap();
                let mut opt = SimilarityOptimizer::new(&config, &ours).unwrap();
                let params = ParamsAdamW { lr: config.beta, weight_decay: 0.0, ..Default::default() };
                let mut adamw = AdamW::new(vec![theirs.clone()], params).unwrap();
                let mut sgd = SGD::new(vec![theirs.clone()], config.beta).unwrap();
                for k in 0..50 {
                    let scale = 10f64.powi(k % 5 - 3);
                    let g = (Tensor::randn(0f32, 1., (7, 7), &dev).unwrap().to_dtype(dtype).unwrap() * scale)
                        .unwrap();
                    opt.step(&ours, &g).unwrap();
                    let mut grads = GradStore::default();
                    grads.insert(theirs.as_tensor(), g);
                    match kind {
                        MetaOptimizer::Adam => adamw.step(&grads).unwrap(),
                        MetaOptimizer::Plain => sgd.step(&grads).unwrap(),
                    }
                    assert_eq!(
                        bits(ours.as_tensor()),
                        bits(theirs.as_tensor()),
                        "{dtype:?} {kind:?} step {k}"
                    );
                }
                assert_eq!(opt.adam_state().map(|s| s.step), (kind == MetaOptimizer::Adam).then_some(50));
            }
        }
    }
}
