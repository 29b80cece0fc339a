//! The distributional (C51) pieces of the learner: the fixed [`Support`], the projection of
//! the n-step target distribution onto it, and the cross-entropy loss (Bellemare et al. 2017,
//! "A Distributional Perspective on Reinforcement Learning", algorithm 1 and eq. 7).
//!
//! * support: `z_i = v_min + i * delta_z`, `delta_z = (v_max - v_min) / (atoms - 1)`;
//! * target: for a transition with n-step return `G` and bootstrap discount `D` (each
//!   sample its own: n-step returns, macro-actions `gamma^L`, 0 past a terminal), the atoms
//!   `T z_j = clamp(G + D z_j, v_min, v_max)` carry the probabilities `p_j` of the bootstrap
//!   distribution;
//! * projection (eq. 7): `(Phi T Z)_i = sum_j clamp(1 - |T z_j - z_i| / delta_z, 0, 1) p_j`:
//!   each target atom splits its mass between its two neighbouring support atoms, linearly;
//! * loss: the cross-entropy `-sum_i (Phi T Z)_i log p_i(s, a)`, per sample.
//!
//! Shapes: returns and discounts `(batch,)`, probabilities `(batch, atoms)`, log-probs
//! `(batch, actions, atoms)`, expected Q `(batch, actions)`.
//!
//! The projection is computed in the dense form of eq. 7, `(batch, atoms, atoms)` weights
//! times `(batch, atoms)` probabilities, rather than with floor/ceil indices and a scatter:
//! it is the same number (the weights are the floor/ceil split), needs no integer ops or
//! special case for a target atom that lands exactly on a support atom (where `floor ==
//! ceil` loses the mass in the scatter form unless patched), and costs `32 * 51 * 51`
//! multiply-adds a batch.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use rainbow::Support;
//! let support = Support::new(5, -2.0, 2.0, candle_core::DType::F32, &Device::Cpu)?; // z = -2..=2
//! let returns = Tensor::new(&[0.5f32], &Device::Cpu)?;
//! let discounts = Tensor::new(&[0.0f32], &Device::Cpu)?; // terminal: the target is G alone
//! let probs = Tensor::new(&[[0.2f32; 5]], &Device::Cpu)?;
//! let m = support.project(&returns, &discounts, &probs)?.to_vec2::<f32>()?;
//! assert_eq!(m[0], [0.0, 0.0, 0.5, 0.5, 0.0]); // 0.5 lies halfway between z = 0 and z = 1
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{DType, Device, Result, Tensor, D};
use cpu_kernels::ExpectedValue;

/// The fixed C51 support `z_0 < ... < z_{atoms-1}`; see the module docs.
#[derive(Clone, Debug)]
pub struct Support {
    atoms: usize,
    v_min: f64,
    v_max: f64,
    delta_z: f64,
    /// `(atoms,)` the atom values `z_i`.
    z: Tensor,
    /// `(1, atoms, 1)` the atom indices `0..atoms`, for the projection weights.
    index: Tensor,
    /// [`Support::expected_q`]'s fused CPU path (f32 supports on the CPU only).
    fused_q: Option<ExpectedValue>,
}

impl Support {
    /// `atoms >= 2` evenly spaced values from `v_min` to `v_max` (`v_min < v_max`).
    pub fn new(atoms: usize, v_min: f64, v_max: f64, dtype: DType, device: &Device) -> Result<Self> {
        if atoms < 2 || v_min.is_nan() || v_max.is_nan() || v_min >= v_max {
            candle_core::bail!(
                "a C51 support needs atoms >= 2 and v_min < v_max, got {atoms}, [{v_min}, {v_max}]"
            );
        }
        let delta_z = (v_max - v_min) / (atoms - 1) as f64;
        let values: Vec<f64> = (0..atoms).map(|i| v_min + i as f64 * delta_z).collect();
        let z = Tensor::from_vec(values, atoms, device)?.to_dtype(dtype)?;
        let index: Vec<f64> = (0..atoms).map(|i| i as f64).collect();
        let index = Tensor::from_vec(index, (1, atoms, 1), device)?.to_dtype(dtype)?;
        let fused_q = (device.is_cpu() && dtype == DType::F32)
            .then(|| z.to_vec1::<f32>().map(|z| ExpectedValue::new(&z)))
            .transpose()?;
        Ok(Self { atoms, v_min, v_max, delta_z, z, index, fused_q })
    }

    pub fn atoms(&self) -> usize {
        self.atoms
    }

    pub fn v_min(&self) -> f64 {
        self.v_min
    }

    pub fn v_max(&self) -> f64 {
        self.v_max
    }

    pub fn delta_z(&self) -> f64 {
        self.delta_z
    }

    /// `(atoms,)` the atom values.
    pub fn values(&self) -> &Tensor {
        &self.z
    }

    /// Expected values `Q(s, a) = sum_i z_i p_i(s, a)`: log-probs `(batch, actions, atoms)`
    /// -> `(batch, actions)`. In f32 on the CPU one fused pass each way
    /// ([`cpu_kernels::ExpectedValue`]), the same numbers to rounding.
    pub fn expected_q(&self, log_probs: &Tensor) -> Result<Tensor> {
        match &self.fused_q {
            Some(op) if log_probs.device().is_cpu() && log_probs.dtype() == DType::F32 => op.apply(log_probs),
            _ => log_probs.exp()?.broadcast_mul(&self.z)?.sum(D::Minus1),
        }
    }

    /// The C51 target `Phi T Z` (eq. 7): returns `G` `(batch,)`, bootstrap discounts `D`
    /// `(batch,)` and bootstrap probabilities `p` `(batch, atoms)` -> `(batch, atoms)`.
    /// Each row sums to the row sum of `p`: mass beyond the support lands on its ends.
    pub fn project(&self, returns: &Tensor, discounts: &Tensor, probs: &Tensor) -> Result<Tensor> {
        let batch = probs.dim(0)?;
        let n = self.atoms;
        // T z_j = G + D z_j, (batch, atoms), then its position on the support in units of
        // delta_z: b_j = (T z_j - v_min) / delta_z, clamped to [0, atoms - 1] (the clamp of
        // T z_j to [v_min, v_max]).
        let tz = returns
            .reshape((batch, 1))?
            .broadcast_add(&discounts.reshape((batch, 1))?.broadcast_mul(&self.z)?)?;
        let b = tz.affine(1.0 / self.delta_z, -self.v_min / self.delta_z)?.clamp(0.0, (n - 1) as f64)?;
        // Weights w[., i, j] = max(0, 1 - |b_j - i|): (batch, 1, atoms) - (1, atoms, 1).
        let weights = (1.0 - b.reshape((batch, 1, n))?.broadcast_sub(&self.index)?.abs()?)?.relu()?;
        // (batch, atoms_i, atoms_j) x (batch, atoms_j, 1) -> (batch, atoms_i)
        weights.matmul(&probs.reshape((batch, n, 1))?.contiguous()?)?.reshape((batch, n))
    }
}

/// Per-sample cross-entropy `-sum_i m_i log p_i`: target `m` and log-probs `log p`, both
/// `(batch, atoms)` -> `(batch,)`.
pub fn cross_entropy(target: &Tensor, log_probs: &Tensor) -> Result<Tensor> {
    target.mul(log_probs)?.sum(D::Minus1)?.neg()
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The C51 projection as Bellemare et al.'s algorithm 1 writes it, in f64: for each
    /// target atom, split its mass between `l = floor(b)` and `u = ceil(b)`; an atom that lands
    /// exactly on the support (`l == u`) keeps all its mass there.
    pub(crate) fn brute_force_projection(
        v_min: f64,
        v_max: f64,
        atoms: usize,
        ret: f64,
        discount: f64,
        probs: &[f64],
    ) -> Vec<f64> {
        let dz = (v_max - v_min) / (atoms - 1) as f64;
        let mut m = vec![0.0; atoms];
        for (j, &p) in probs.iter().enumerate() {
            let z = v_min + j as f64 * dz;
            let tz = (ret + discount * z).clamp(v_min, v_max);
            let b = (tz - v_min) / dz;
            let (l, u) = (b.floor(), b.ceil());
            if l == u {
                m[l as usize] += p;
            } else {
                m[l as usize] += p * (u - b);
                m[u as usize] += p * (b - l);
            }
        }
        m
    }

    fn check(support: &Support, returns: &[f64], discounts: &[f64], probs: &[Vec<f64>]) {
        let dev = Device::Cpu;
        let batch = returns.len();
        let n = support.atoms();
        let flat: Vec<f64> = probs.iter().flatten().copied().collect();
        let m = support
            .project(
                &Tensor::from_slice(returns, batch, &dev).unwrap(),
                &Tensor::from_slice(discounts, batch, &dev).unwrap(),
                &Tensor::from_vec(flat, (batch, n), &dev).unwrap(),
            )
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        for k in 0..batch {
            let reference = brute_force_projection(
                support.v_min(),
                support.v_max(),
                n,
                returns[k],
                discounts[k],
                &probs[k],
            );
            for i in 0..n {
                assert!(
                    (m[k][i] - reference[i]).abs() < 1e-9,
                    "sample {k} (G {}, D {}) atom {i}: {} vs {}",
                    returns[k],
                    discounts[k],
                    m[k][i],
                    reference[i]
                );
            }
            let total: f64 = probs[k].iter().sum();
            assert!((m[k].iter().sum::<f64>() - total).abs() < 1e-9, "mass is conserved");
        }
    }

    #[test]
    fn projection_equals_the_brute_force_f64_projection() {
        let support = Support::new(51, -10.0, 10.0, DType::F64, &Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut probs = || -> Vec<f64> {
            let raw: Vec<f64> = (0..51).map(|_| rng.random::<f64>()).collect();
            let s: f64 = raw.iter().sum();
            raw.iter().map(|x| x / s).collect()
        };
        // Per-sample discounts: gamma^3 (3-step), gamma^7 (a macro inside the return), 0
        // (terminal), 1 (undiscounted); returns that push mass past both ends of the support
        // (G = 25, G = -30), land exactly on atoms (G = 0.4 = one delta_z, D = 0), and fall
        // between them.
        let returns = [0.3, 25.0, -30.0, 0.4, 1.234, -9.99, 0.0, 7.5];
        let discounts = [0.970299, 0.99, 0.5, 0.0, 0.0, 0.99f64.powi(7), 1.0, 0.2];
        let p: Vec<Vec<f64>> = (0..returns.len()).map(|_| probs()).collect();
        check(&support, &returns, &discounts, &p);
    }

    #[test]
    fn terminal_targets_are_the_return_alone_and_beyond_the_support_is_clipped() {
        let support = Support::new(11, -1.0, 1.0, DType::F64, &Device::Cpu).unwrap();
        let uniform = vec![vec![1.0 / 11.0; 11]; 3];
        // D = 0: every atom maps to G, so the target is the two-hot of G whatever p is.
        check(&support, &[0.55, 5.0, -5.0], &[0.0, 0.0, 0.0], &uniform);
        let m = support
            .project(
                &Tensor::new(&[0.55f64, 5.0, -5.0], &Device::Cpu).unwrap(),
                &Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap(),
                &Tensor::from_vec(uniform.concat(), (3, 11), &Device::Cpu).unwrap(),
            )
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        // b = (0.55 + 1) / 0.2 = 7.75: a quarter on z_7, three quarters on z_8.
        assert!((m[0][7] - 0.25).abs() < 1e-12 && (m[0][8] - 0.75).abs() < 1e-12, "{:?}", m[0]);
        assert!((m[1][10] - 1.0).abs() < 1e-12, "all mass at v_max");
        assert!((m[2][0] - 1.0).abs() < 1e-12, "all mass at v_min");
    }

    #[test]
    fn f32_projection_is_close_to_f64() {
        let s32 = Support::new(51, -10.0, 10.0, DType::F32, &Device::Cpu).unwrap();
        let returns = [0.7f32, -3.3, 11.0];
        let discounts = [0.970299f32, 0.0, 0.9];
        let p = vec![1.0f32 / 51.0; 3 * 51];
        let m = s32
            .project(
                &Tensor::new(&returns, &Device::Cpu).unwrap(),
                &Tensor::new(&discounts, &Device::Cpu).unwrap(),
                &Tensor::from_vec(p, (3, 51), &Device::Cpu).unwrap(),
            )
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for k in 0..3 {
            let r = brute_force_projection(
                -10.0,
                10.0,
                51,
                returns[k] as f64,
                discounts[k] as f64,
                &[1.0 / 51.0; 51],
            );
            for i in 0..51 {
                assert!((m[k][i] as f64 - r[i]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn expected_q_and_cross_entropy() {
        let s = Support::new(3, -1.0, 1.0, DType::F64, &Device::Cpu).unwrap();
        let p = Tensor::new(&[[[0.2f64, 0.3, 0.5], [1.0, 0.0, 0.0]]], &Device::Cpu).unwrap();
        let q = s.expected_q(&p.log().unwrap()).unwrap().to_vec2::<f64>().unwrap();
        assert!((q[0][0] - 0.3).abs() < 1e-12 && (q[0][1] + 1.0).abs() < 1e-12);
        // f32 on the CPU takes the fused op: the same values.
        let s32 = Support::new(3, -1.0, 1.0, DType::F32, &Device::Cpu).unwrap();
        let q32 = s32.expected_q(&p.to_dtype(DType::F32).unwrap().log().unwrap()).unwrap();
        let q32 = q32.to_vec2::<f32>().unwrap();
        assert!((q32[0][0] - 0.3).abs() < 1e-6 && (q32[0][1] + 1.0).abs() < 1e-6);
        let m = Tensor::new(&[[0.5f64, 0.5, 0.0]], &Device::Cpu).unwrap();
        let logp = Tensor::new(&[[0.2f64, 0.3, 0.5]], &Device::Cpu).unwrap().log().unwrap();
        let ce = cross_entropy(&m, &logp).unwrap().to_vec1::<f64>().unwrap();
        assert!((ce[0] + 0.5 * 0.2f64.ln() + 0.5 * 0.3f64.ln()).abs() < 1e-12);
        assert!(Support::new(1, 0.0, 1.0, DType::F32, &Device::Cpu).is_err());
        assert!(Support::new(51, 1.0, 1.0, DType::F32, &Device::Cpu).is_err());
    }
}
