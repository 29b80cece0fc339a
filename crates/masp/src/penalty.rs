//! The MASP penalty on a batch's expected Q-values `Q`, `(n, A)`, given `S`, `(A, A)`;
//! returns a scalar (docs/method.md, section 2):
//!
//! * row-normalised: `L = eta/n sum_s ||M Q_s||^2` with `M = I - P(S)` and `P(S)` the
//!   row-normalised `S`; `dL/dQ_s = (2 eta/n) M^T M Q_s`;
//! * pairwise: `L = eta/n sum_s sum_{a,b} S_ab (Q_sa - Q_sb)^2 = eta/n sum_s Q_s^T K Q_s`
//!   with `K = D_r + D_c - S - S^T` (`D_r`, `D_c` the row and column sums of `S` on a
//!   diagonal; `K = 2 L_S`, twice the graph Laplacian, for a symmetric `S`); so
//!   `dL/dQ_s = (2 eta/n) K Q_s`.
//!
//! Both are differentiable in `Q` and in `S` (pass `S`'s variable to get `dL/dS`).
//! Neither depends on a per-state shift of `Q_s` (`M 1 = 0`, `K 1 = 0`), so the pairwise
//! form centres each `Q_s` first: its expanded sum of squares would otherwise cancel
//! catastrophically in f32 when the Q-values share a large offset (a dueling head's `V`).
//!
//! [`PenaltyOperator`] holds the `S`-dependent part, so the agent pays one
//! `(n, A) x (A, A)` product a batch, `O(n A^2)`, and recomputes the operator only when `S`
//! changes (every meta step).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use masp::{penalty, Form, Similarity};
//! let q = Tensor::new(&[[1.0f32, 3.0]], &Device::Cpu)?; // (n, A) = (1, 2)
//! let s = Similarity::uniform(2, 1.0, DType::F32, &Device::Cpu)?;
//! // P averages both actions: M Q = (1 - 2, 3 - 2), squared and summed.
//! assert_eq!(penalty(&q, &s.tensor(), Form::RowNormalised, 1.0)?.to_scalar::<f32>()?, 2.0);
//! // Both ordered pairs (a, b) count: 2 * (1 - 3)^2.
//! assert_eq!(penalty(&q, &s.tensor(), Form::Pairwise, 1.0)?.to_scalar::<f32>()?, 8.0);
//! let zero = Similarity::identity(2, DType::F32, &Device::Cpu)?;
//! assert_eq!(penalty(&q, &zero.tensor(), Form::RowNormalised, 1.0)?.to_scalar::<f32>()?, 0.0);
//! # Ok::<(), masp::Error>(())
//! ```

use candle_core::{DType, Tensor};

use crate::config::Form;
use crate::error::{Error, Result};

/// The penalty with `S` folded in: built once per `S`, applied to every batch.
#[derive(Clone, Debug)]
pub struct PenaltyOperator {
    eta: f64,
    kind: Operator,
    num_actions: usize,
    dtype: DType,
}

#[derive(Clone, Debug)]
enum Operator {
    /// `M^T = (I - P)^T`, `(A, A)`, so that `Q M^T` holds the rows `M Q_s`.
    RowNormalised { m_t: Tensor },
    /// `S^T` and the degrees `r + c`, `(1, A)`, of `sum_ab S_ab (q_a - q_b)^2 =
    /// sum_a (r_a + c_a) q_a^2 - 2 q^T S q`.
    Pairwise { s_t: Tensor, degree: Tensor },
}

impl PenaltyOperator {
    /// Folds `s`, `(A, A)`, into the penalty. Differentiable in `s` when `s` is tracked.
    pub fn new(s: &Tensor, form: Form, eta: f64) -> Result<Self> {
        let dims = s.dims();
        check_square(s)?;
        let kind = match form {
            Form::RowNormalised => {
                let m = (Tensor::eye(dims[0], s.dtype(), s.device())? - row_normalised(s)?)?;
                Operator::RowNormalised { m_t: m.t()?.contiguous()? }
            }
            Form::Pairwise => {
                let degree = (s.sum_keepdim(1)?.t()? + s.sum_keepdim(0)?)?;
                Operator::Pairwise { s_t: s.t()?.contiguous()?, degree }
            }
        };
        Ok(Self { eta, kind, num_actions: dims[0], dtype: s.dtype() })
    }

    /// The penalty on `q`, `(n, A)`: a scalar, differentiable in `q`.
    pub fn penalty(&self, q: &Tensor) -> Result<Tensor> {
        let n = self.check_q(q, "Q-values")?;
        let scale = self.eta / n as f64;
        let sum = match &self.kind {
            Operator::RowNormalised { m_t } => q.matmul(m_t)?.sqr()?.sum_all()?,
            Operator::Pairwise { s_t, degree } => {
                let qc = centre(q)?;
                let squares = qc.sqr()?.broadcast_mul(degree)?.sum_all()?;
                let cross = (qc.matmul(s_t)? * &qc)?.sum_all()?; // sum_s q_s^T S q_s
                (squares - (cross * 2.0)?)?
            }
        };
        Ok((sum * scale)?)
    }

    /// `dL/dQ` in closed form, `(n, A)`: `(2 eta/n) Q M^T M` or `(2 eta/n) Q K^T`.
    pub fn grad_q(&self, q: &Tensor) -> Result<Tensor> {
        let n = self.check_q(q, "Q-values")?;
        let scale = 2.0 * self.eta / n as f64;
        let g = match &self.kind {
            Operator::RowNormalised { m_t } => q.matmul(m_t)?.matmul(&m_t.t()?)?,
            Operator::Pairwise { s_t, degree } => {
                // Q K^T = Q (D_r + D_c) - Q S - Q S^T; the rows of K sum to 0, so Q needs
                // no centring here.
                let s = s_t.t()?;
                ((q.broadcast_mul(degree)? - q.matmul(&s)?)? - q.matmul(s_t)?)?
            }
        };
        Ok((g * scale)?)
    }

    /// The number of rows of `q` after checking its shape and dtype.
    pub(crate) fn check_q(&self, q: &Tensor, what: &str) -> Result<usize> {
        check_q(q, self.num_actions, self.dtype, what)
    }
}

/// `P(S)`: `s`, `(A, A)`, with each row divided by its row sum.
pub(crate) fn row_normalised(s: &Tensor) -> Result<Tensor> {
    Ok(s.broadcast_div(&s.sum_keepdim(1)?)?)
}

/// `eta/n sum_s ||(I - P(S)) Q_s||^2` or the pairwise form, on `q`, `(n, A)`, with `s`,
/// `(A, A)`. Builds the operator each call; [`PenaltyOperator`] keeps it.
pub fn penalty(q: &Tensor, s: &Tensor, form: Form, eta: f64) -> Result<Tensor> {
    PenaltyOperator::new(s, form, eta)?.penalty(q)
}

/// The derivative of the penalty along `u`, `(n, A)`: `sum_s <dL/dQ_s, u_s>`, a scalar, as
/// a function of `s`, `(A, A)`, and differentiable in it. MASP's meta-gradient is `d/dS` of
/// `-alpha` times this, with `Q` and `u = J g` held constant (see [`crate::meta_gradient`]).
///
/// * row-normalised: `(2 eta/n) sum_s (M u_s) . (M Q_s)`, with `M x = x - (S x) / r` (`r`
///   the row sums of `S`);
/// * pairwise: `(2 eta/n) sum_s u_s^T K Q_s = (2 eta/n) sum_s sum_ab S_ab (u_sa - u_sb)
///   (Q_sa - Q_sb)`, computed on centred `Q_s` and `u_s` (exact, since `K 1 = 0`).
///
/// Both are written so that one product, `[Q; u] S^T`, is all that touches `S` besides its
/// row (and column) sums: its backward pass in `S` is one more product and a transpose.
/// Through `P(S)`, `M` and `M^T` instead, at `A = 1042` the backward pass went over `A^2`
/// entries a dozen times.
pub fn directional(s: &Tensor, form: Form, eta: f64, q: &Tensor, u: &Tensor) -> Result<Tensor> {
    check_square(s)?;
    let n = check_q(q, s.dim(0)?, s.dtype(), "Q-values")?;
    check_q(u, s.dim(0)?, s.dtype(), "the JVP u")?;
    if u.dims() != q.dims() {
        return Err(Error::Shape {
            what: "the JVP u".into(),
            expected: format!("{:?}, the Q-values' shape", q.dims()),
            got: u.dims().to_vec(),
        });
    }
    let row_sums = s.sum_keepdim(1)?.t()?; // (1, A)
    let sum = match form {
        Form::RowNormalised => {
            let x = Tensor::cat(&[q, u], 0)?; // (2n, A): the rows Q_s, then u_s
            let m_x = (&x - x.matmul(&s.t()?)?.broadcast_div(&row_sums)?)?; // the rows M x
            (m_x.narrow(0, 0, n)? * m_x.narrow(0, n, n)?)?.sum_all()?
        }
        Form::Pairwise => {
            let x = Tensor::cat(&[centre(q)?, centre(u)?], 0)?;
            let (qc, uc) = (x.narrow(0, 0, n)?, x.narrow(0, n, n)?);
            let x_s = x.matmul(&s.t()?)?; // the rows (S x)^T
                                          // u^T K q = sum_a deg_a u_a q_a - q^T S u - u^T S q, per state.
            let degree = (row_sums + s.sum_keepdim(0)?)?;
            let diagonal = (&qc * &uc)?.broadcast_mul(&degree)?.sum_all()?;
            let q_s_u = (&qc * x_s.narrow(0, n, n)?)?.sum_all()?;
            let u_s_q = (&uc * x_s.narrow(0, 0, n)?)?.sum_all()?;
            ((diagonal - q_s_u)? - u_s_q)?
        }
    };
    Ok((sum * (2.0 * eta / n as f64))?)
}

/// The number of rows of `q` after checking that it is `(n, A)`, `n >= 1`, in `dtype`.
fn check_q(q: &Tensor, num_actions: usize, dtype: DType, what: &str) -> Result<usize> {
    match q.dims() {
        [n, a] if *a == num_actions && *n > 0 => {}
        dims => {
            return Err(Error::Shape {
                what: what.into(),
                expected: format!("(n, {}) with n >= 1", num_actions),
                got: dims.to_vec(),
            })
        }
    }
    if q.dtype() != dtype {
        return Err(Error::DType { what: what.into(), expected: dtype, got: q.dtype() });
    }
    Ok(q.dims()[0])
}

fn check_square(s: &Tensor) -> Result<()> {
    match s.dims() {
        [a, b] if a == b => Ok(()),
        dims => Err(Error::Shape { what: "S".into(), expected: "(A, A)".into(), got: dims.to_vec() }),
    }
}

/// Each row of `q`, `(n, A)`, minus its mean.
pub(crate) fn centre(q: &Tensor) -> Result<Tensor> {
    Ok(q.broadcast_sub(&q.mean_keepdim(1)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    const CPU: Device = Device::Cpu;

    fn random(shape: (usize, usize), lo: f64, hi: f64, seed: u64) -> Vec<Vec<f64>> {
        // A fixed LCG, so the reference values below are reproducible without a rand dep.
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..shape.0)
            .map(|_| {
                (0..shape.1)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        lo + (hi - lo) * ((state >> 11) as f64 / (1u64 << 53) as f64)
                    })
                    .collect()
            })
            .collect()
    }

    fn tensor(m: &[Vec<f64>]) -> Tensor {
        Tensor::new(m.to_vec(), &CPU).unwrap()
    }

    fn rel_err(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for (ra, rb) in a.iter().zip(b) {
            for (x, y) in ra.iter().zip(rb) {
                num += (x - y) * (x - y);
                den += y * y;
            }
        }
        (num / den).sqrt()
    }

    /// Brute-force f64 references, straight from docs/method.md, section 2, with a non-symmetric
    /// S so the general formulas (not just the symmetric special case) are checked.
    fn brute(q: &[Vec<f64>], s: &[Vec<f64>], eta: f64) -> (f64, Vec<Vec<f64>>, f64, Vec<Vec<f64>>) {
        let (n, a) = (q.len(), s.len());
        let p: Vec<Vec<f64>> =
            s.iter().map(|row| row.iter().map(|v| v / row.iter().sum::<f64>()).collect()).collect();
        let m: Vec<Vec<f64>> =
            (0..a).map(|i| (0..a).map(|j| f64::from(u8::from(i == j)) - p[i][j]).collect()).collect();
        let (mut row_l, mut row_g) = (0.0, vec![vec![0.0; a]; n]);
        let (mut pair_l, mut pair_g) = (0.0, vec![vec![0.0; a]; n]);
        for s_idx in 0..n {
            let mq: Vec<f64> = (0..a).map(|i| (0..a).map(|j| m[i][j] * q[s_idx][j]).sum()).collect();
            row_l += mq.iter().map(|v| v * v).sum::<f64>();
            // (2 eta/n) M^T M Q_s
            for j in 0..a {
                row_g[s_idx][j] = 2.0 * eta / n as f64 * (0..a).map(|i| m[i][j] * mq[i]).sum::<f64>();
            }
            for i in 0..a {
                for j in 0..a {
                    let d = q[s_idx][i] - q[s_idx][j];
                    pair_l += s[i][j] * d * d;
                    // d/dq_i of S_ij d^2 is 2 S_ij d; d/dq_j is -2 S_ij d.
                    pair_g[s_idx][i] += eta / n as f64 * 2.0 * s[i][j] * d;
                    pair_g[s_idx][j] -= eta / n as f64 * 2.0 * s[i][j] * d;
                }
            }
        }
        (eta / n as f64 * row_l, row_g, eta / n as f64 * pair_l, pair_g)
    }

    #[test]
    fn zero_at_identity_for_both_forms() {
        let q = tensor(&random((5, 4), -3.0, 3.0, 1));
        let eye = Tensor::eye(4, DType::F64, &CPU).unwrap();
        for form in [Form::RowNormalised, Form::Pairwise] {
            let l = penalty(&q, &eye, form, 2.0).unwrap().to_scalar::<f64>().unwrap();
            assert_eq!(l, 0.0, "{form:?}");
        }
    }

    #[test]
    fn value_and_q_gradient_match_brute_force() {
        let (eta, q_rows, s_rows) = (0.7, random((5, 6), -4.0, 4.0, 2), random((6, 6), 0.0, 1.0, 3));
        let (row_l, row_g, pair_l, pair_g) = brute(&q_rows, &s_rows, eta);
        let s = tensor(&s_rows);
        for (form, want_l, want_g) in [(Form::RowNormalised, row_l, row_g), (Form::Pairwise, pair_l, pair_g)]
        {
            let q = Var::from_tensor(&tensor(&q_rows)).unwrap();
            let op = PenaltyOperator::new(&s, form, eta).unwrap();
            let l = op.penalty(&q).unwrap();
            let got_l = l.to_scalar::<f64>().unwrap();
            assert!((got_l - want_l).abs() <= 1e-12 * want_l.abs(), "{form:?}: {got_l} vs {want_l}");
            // candle's backward and the closed form both agree with the loops.
            let autodiff = l.backward().unwrap().get(&q).unwrap().to_vec2::<f64>().unwrap();
            let closed = op.grad_q(&q).unwrap().to_vec2::<f64>().unwrap();
            assert!(
                rel_err(&autodiff, &want_g) < 1e-12,
                "{form:?} autodiff: {}",
                rel_err(&autodiff, &want_g)
            );
            assert!(rel_err(&closed, &want_g) < 1e-12, "{form:?} closed: {}", rel_err(&closed, &want_g));
        }
    }

    #[test]
    fn s_gradient_matches_finite_differences() {
        let (eta, q_rows, s_rows) = (1.3, random((4, 5), -2.0, 2.0, 4), random((5, 5), 0.1, 1.0, 5));
        let q = tensor(&q_rows);
        for form in [Form::RowNormalised, Form::Pairwise] {
            let s = Var::from_tensor(&tensor(&s_rows)).unwrap();
            let grad = penalty(&q, &s, form, eta).unwrap().backward().unwrap();
            let grad = grad.get(&s).unwrap().to_vec2::<f64>().unwrap();
            let h = 1e-6;
            let mut fd = vec![vec![0.0; 5]; 5];
            for i in 0..5 {
                for j in 0..5 {
                    let at = |delta: f64| {
                        let mut m = s_rows.clone();
                        m[i][j] += delta;
                        penalty(&q, &tensor(&m), form, eta).unwrap().to_scalar::<f64>().unwrap()
                    };
                    fd[i][j] = (at(h) - at(-h)) / (2.0 * h);
                }
            }
            assert!(rel_err(&grad, &fd) < 1e-8, "{form:?}: {}", rel_err(&grad, &fd));
        }
    }

    /// `directional` is `sum_s <dL/dQ_s, u_s>` (the closed-form `dL/dQ`), and its gradient in
    /// `S` matches central finite differences of its value: the meta-gradient's surrogate,
    /// both forms, on a non-symmetric `S` (every entry a free parameter).
    #[test]
    fn directional_is_the_derivative_along_u_and_differentiates_in_s() {
        let (eta, q_rows, u_rows) = (0.7, random((3, 6), -2.0, 2.0, 11), random((3, 6), -1.0, 1.0, 12));
        let s_rows = random((6, 6), 0.05, 1.0, 13);
        let (q, u) = (tensor(&q_rows), tensor(&u_rows));
        for form in [Form::RowNormalised, Form::Pairwise] {
            let s = Var::from_tensor(&tensor(&s_rows)).unwrap();
            let value = directional(&s, form, eta, &q, &u).unwrap();
            let grad_q = PenaltyOperator::new(&s, form, eta).unwrap().grad_q(&q).unwrap();
            let expected = (grad_q * &u).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
            let got = value.to_scalar::<f64>().unwrap();
            assert!((got - expected).abs() <= 1e-12 * expected.abs(), "{form:?}: {got} vs {expected}");
            let grad = value.backward().unwrap().get(&s).unwrap().to_vec2::<f64>().unwrap();
            let h = 1e-6;
            let fd: Vec<Vec<f64>> = (0..6)
                .map(|i| {
                    (0..6)
                        .map(|j| {
                            let at = |delta: f64| {
                                let mut m = s_rows.clone();
                                m[i][j] += delta;
                                let v = directional(&tensor(&m), form, eta, &q, &u).unwrap();
                                v.to_scalar::<f64>().unwrap()
                            };
                            (at(h) - at(-h)) / (2.0 * h)
                        })
                        .collect()
                })
                .collect();
            assert!(rel_err(&grad, &fd) < 1e-8, "{form:?}: {}", rel_err(&grad, &fd));
        }
        let wrong = tensor(&random((3, 5), -1.0, 1.0, 14));
        assert!(matches!(
            directional(&tensor(&s_rows), Form::Pairwise, eta, &q, &wrong),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn pairwise_centring_survives_a_large_offset_in_f32() {
        // Q-values 1000 apart from their spread: without centring, f32 loses the answer.
        let q_rows = random((4, 8), -1.0, 1.0, 6);
        let s_rows = random((8, 8), 0.0, 1.0, 7);
        let want = brute(&q_rows, &s_rows, 1.0).2;
        let shifted: Vec<Vec<f32>> =
            q_rows.iter().map(|r| r.iter().map(|v| (v + 1000.0) as f32).collect()).collect();
        let s32 = tensor(&s_rows).to_dtype(DType::F32).unwrap();
        let got = penalty(&Tensor::new(shifted, &CPU).unwrap(), &s32, Form::Pairwise, 1.0).unwrap();
        let got = got.to_scalar::<f32>().unwrap() as f64;
        assert!((got - want).abs() < 1e-3 * want, "{got} vs {want}");
    }

    #[test]
    fn refuses_mismatched_shapes_and_dtypes() {
        let s = Tensor::eye(3, DType::F32, &CPU).unwrap();
        let q = Tensor::zeros((2, 4), DType::F32, &CPU).unwrap();
        assert!(matches!(penalty(&q, &s, Form::RowNormalised, 1.0), Err(Error::Shape { .. })));
        let q = Tensor::zeros((2, 3), DType::F64, &CPU).unwrap();
        assert!(matches!(penalty(&q, &s, Form::Pairwise, 1.0), Err(Error::DType { .. })));
    }
}
