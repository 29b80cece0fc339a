//! A small f64 MLP Q-network and the brute-force references of the meta-gradient tests:
//! shared by `tests/meta_gradient.rs` and the unit tests of `src/meta_gradient.rs`, which
//! include this file by path. The includer imports `Form`, `Lookahead`, `MaspConfig` and
//! `MetaModel` (from `masp` or from `crate`).

#![allow(dead_code)] // each includer uses a part

use candle_core::{Device, Tensor, Var};

use super::{Difference, Form, Lookahead, MaspConfig, MetaModel};

pub const CPU: Device = Device::Cpu;
pub const A: usize = 6;
pub const INPUTS: usize = 3;
pub const HIDDEN: usize = 8;

/// A fixed LCG, so every number in these tests is reproducible.
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        lo + (hi - lo) * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn tensor(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| self.next(lo, hi)).collect();
        Tensor::from_vec(v, shape, &CPU).unwrap()
    }
}

/// `Q(x) = tanh(x W1^T + b1) W2^T + b2`, `(n, A)`, in f64.
pub struct Mlp {
    pub w1: Var,
    pub b1: Var,
    pub w2: Var,
    pub b2: Var,
    /// Adam's `1 / (sqrt(v_hat) + eps)` stand-in, per variable, when the test wants one.
    pub preconditioner: Option<Vec<Tensor>>,
}

/// States, the actions taken (one-hot), and TD targets `r + gamma max_a Q_frozen(s', a)`
/// computed once from a frozen copy, so the loss is a squared TD error of the online Q.
pub struct Batch {
    pub x: Tensor,
    pub taken: Tensor,
    pub target: Tensor,
}

impl Mlp {
    pub fn new(rng: &mut Lcg) -> Self {
        Self {
            w1: Var::from_tensor(&rng.tensor(&[HIDDEN, INPUTS], -1.0, 1.0)).unwrap(),
            b1: Var::from_tensor(&rng.tensor(&[HIDDEN], -0.5, 0.5)).unwrap(),
            w2: Var::from_tensor(&rng.tensor(&[A, HIDDEN], -1.0, 1.0)).unwrap(),
            b2: Var::from_tensor(&rng.tensor(&[A], -0.5, 0.5)).unwrap(),
            preconditioner: None,
        }
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = x.matmul(&self.w1.t()?)?.broadcast_add(&self.b1)?.tanh()?;
        h.matmul(&self.w2.t()?)?.broadcast_add(&self.b2)
    }

    pub fn batch(&self, rng: &mut Lcg, n: usize) -> Batch {
        let x = rng.tensor(&[n, INPUTS], -1.0, 1.0);
        let next = rng.tensor(&[n, INPUTS], -1.0, 1.0);
        let actions: Vec<u32> = (0..n).map(|_| rng.next(0.0, A as f64) as u32).collect();
        let taken = candle_nn::encoding::one_hot(Tensor::new(actions, &CPU).unwrap(), A, 1f64, 0f64).unwrap();
        let reward = rng.tensor(&[n], -1.0, 1.0);
        let bootstrap = self.forward(&next).unwrap().max(1).unwrap().detach();
        let target = (reward + (bootstrap * 0.9).unwrap()).unwrap();
        Batch { x, taken, target }
    }

    pub fn params(&self) -> Vec<Vec<u64>> {
        self.vars()
            .iter()
            .map(|v| v.flatten_all().unwrap().to_vec1::<f64>().unwrap().iter().map(|x| x.to_bits()).collect())
            .collect()
    }
}

impl MetaModel for Mlp {
    type Batch = Batch;

    fn vars(&self) -> Vec<Var> {
        vec![self.w1.clone(), self.b1.clone(), self.w2.clone(), self.b2.clone()]
    }

    fn td_loss(&mut self, b: &Batch) -> candle_core::Result<Tensor> {
        let q_taken = (self.forward(&b.x)? * &b.taken)?.sum(1)?;
        (q_taken - &b.target)?.sqr()?.mean_all()
    }

    fn q_values(&mut self, b: &Batch) -> candle_core::Result<Tensor> {
        self.forward(&b.x)
    }

    fn preconditioner(&self) -> Option<Vec<Tensor>> {
        self.preconditioner.clone()
    }
}

/// `L_MASP` by brute force from docs/method.md, section 2, for any square `s`.
pub fn brute_penalty(q: &Tensor, s: &Tensor, form: Form, eta: f64) -> Tensor {
    let n = q.dims()[0] as f64;
    let sum = match form {
        Form::RowNormalised => {
            let p = s.broadcast_div(&s.sum_keepdim(1).unwrap()).unwrap();
            // (M Q_s)_a = Q_sa - sum_b P_ab Q_sb
            let mq = (q - q.matmul(&p.t().unwrap()).unwrap()).unwrap();
            mq.sqr().unwrap().sum_all().unwrap()
        }
        Form::Pairwise => {
            // (n, A, A): Q_sa - Q_sb, weighted by S_ab.
            let diff = q.unsqueeze(2).unwrap().broadcast_sub(&q.unsqueeze(1).unwrap()).unwrap();
            diff.sqr().unwrap().broadcast_mul(s).unwrap().sum_all().unwrap()
        }
    };
    (sum * (eta / n)).unwrap()
}

pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    (num / den).sqrt()
}

/// A valid S well off the identity: symmetric, off-diagonal in [0.05, 0.6], unit diagonal.
pub fn random_s(rng: &mut Lcg) -> Vec<Vec<f64>> {
    let upper: Vec<f64> = (0..A * A).map(|_| rng.next(0.05, 0.6)).collect();
    (0..A)
        .map(|i| (0..A).map(|j| if i == j { 1.0 } else { upper[i.min(j) * A + i.max(j)] }).collect())
        .collect()
}

pub fn config(form: Form, lookahead: Lookahead) -> MaspConfig {
    // alpha large enough that theta' is far from theta (so g at theta' differs from g at
    // theta and the test sees the whole chain), eps small for f64 central differences
    // (MASP.md's JVP: the closed form is checked exactly; tests that want the default
    // one-sided difference set it).
    MaspConfig {
        eta: 0.7,
        form,
        alpha: 0.3,
        lookahead,
        eps: 1e-6,
        difference: Difference::Central,
        ..Default::default()
    }
}
