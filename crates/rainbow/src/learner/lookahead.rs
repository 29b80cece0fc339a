//! [`MetaAccess::lookahead_jvp`](crate::MetaAccess::lookahead_jvp) for the [`Learner`]: a
//! one-step meta-gradient's network work (docs/method.md, section 3) without writing a parameter,
//! with each head layer's gradient kept as its batch factors.
//!
//! For the update's gradient `grad` on `B` at `theta`:
//!
//! ```text
//! theta' = theta - alpha grad
//! g      = grad_theta' L_TD(theta'; B')                     one forward and backward pass
//! u      = (Q(theta + s g; B) - Q(theta - s g; B)) / 2s     s = eps / |g|
//! ```
//!
//! Done through the variables, each of `theta'`, `theta + s g` and `theta - s g` is written
//! into the network and `g` is materialised: at 1042 actions the advantage layer holds 27M
//! weights and as many noise scales, so every write moves hundreds of MB, and the backward
//! pass at `theta'` computes weight gradients that only ever serve as a direction.
//!
//! Over a batch of `n` rows a linear layer's weight gradient is a sum of `n` outer products:
//! with `x (n, in)` the layer's inputs and `delta (n, out)` the loss's gradient at its
//! outputs, `d mu_w = delta^T x` and `d mu_b = 1^T delta`, and for a factorised noisy layer
//! `d sigma_w = d mu_w * eps_w`, `d sigma_b = d mu_b * eps_b` ([`LayerGradient`]). A step
//! `c` along such a gradient moves the effective weight `w = mu_w + sigma_w * eps_w` by
//! `c d mu_w * (1 + eps_w^2)` and the bias by `c d mu_b * (1 + eps_b^2)`; with
//! `eps_w^2 = f_out^2 f_in^2^T` and `eps_b = f_out`, the layer's outputs on inputs `y (m, in)`
//! change by
//!
//! ```text
//! c [ (y x^T) delta + ((y * f_in^2) x^T delta) * f_out^2 + (1^T delta) * (1 + f_out^2) ]
//! ```
//!
//! products through the `n`-wide middle (a layer without noise keeps the first term and
//! `1^T delta`). So the head at moved parameters is the update's own built layers (their
//! effective weights, formed once per update) plus that change ([`Moved`]); the gradients
//! at `theta'` come back as factors too, the `delta`s through a zero variable added to each
//! layer's output ([`Taps`]), and `|g|^2` from `n x n` Gram matrices:
//! `|delta^T x|^2 = <delta delta^T, x x^T>` and
//! `|(delta^T x) * eps_w|^2 = <delta diag(f_out^2) delta^T, x diag(f_in^2) x^T>`. The
//! torso's parameters (under a million for the Nature CNN) are moved as new tensors.
//!
//! Equal to the computation through the variables up to float rounding; the tests compare
//! the two in f64 and the CPU fast path in f32.

use std::sync::OnceLock;

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

use super::{side_by_side, Learner, StageClock};
use crate::device_batch::DeviceBatch;
use crate::head::HeadLayers;
use crate::network::NetLayers;
use crate::regularizer::{Difference, LookaheadJvp, LookaheadRequest, LookaheadTimings};
use crate::torso::TorsoLayers;

/// `f_in^2 (1, in)` and `f_out^2 (1, out)` of a noisy layer's current sample; `None` for a
/// layer that is `mu` alone.
type NoiseSquares = Option<(Tensor, Tensor)>;

/// A linear (or noisy linear) layer's gradient over a batch, as its factors: its inputs
/// `x (n, in)` and the loss's gradient at its outputs `delta (n, out)`; see the module docs.
#[derive(Clone, Debug)]
pub(super) struct LayerGradient {
    x: Tensor,
    delta: Tensor,
}

impl LayerGradient {
    /// The change of the layer's outputs on `y (m, in)` when its parameters move by `c`
    /// times this gradient, `(m, out)`.
    fn output_change(&self, y: &Tensor, c: f64, noise: &NoiseSquares) -> Result<Tensor> {
        let through = |y: &Tensor| y.matmul(&self.x.t()?)?.matmul(&self.delta); // (m, out)
        let bias = self.delta.sum_keepdim(0)?; // (1, out)
        let change = match noise {
            None => through(y)?.broadcast_add(&bias)?,
            Some((f_in_sq, f_out_sq)) => {
                let sigma = through(&y.broadcast_mul(f_in_sq)?)?.broadcast_mul(f_out_sq)?;
                let bias = bias.broadcast_mul(&(f_out_sq + 1.0)?)?;
                (through(y)? + sigma)?.broadcast_add(&bias)?
            }
        };
        change.affine(c, 0.0)
    }

    /// The squared norm of the gradient over all the layer's parameters (`mu` and, with
    /// noise, `sigma`; weights and biases).
    fn norm_sq(&self, noise: &NoiseSquares) -> Result<f64> {
        // <a diag(p) a^T, b diag(q) b^T>: the squared norm of diag(..) a^T b diag(..).
        let gram = |a: &Tensor, scale: Option<&Tensor>| match scale {
            Some(s) => a.broadcast_mul(s)?.matmul(&a.t()?),
            None => a.matmul(&a.t()?),
        };
        let inner = |a: Tensor, b: Tensor| to_f64((a * b)?.sum_all()?);
        let bias = self.delta.sum_keepdim(0)?; // (1, out)
        let mut sq = inner(gram(&self.delta, None)?, gram(&self.x, None)?)? + to_f64(bias.sqr()?.sum_all()?)?;
        if let Some((f_in_sq, f_out_sq)) = noise {
            sq += inner(gram(&self.delta, Some(f_out_sq))?, gram(&self.x, Some(f_in_sq))?)?;
            sq += to_f64((bias.sqr()? * f_out_sq)?.sum_all()?)?;
        }
        Ok(sq)
    }
}

fn to_f64(t: Tensor) -> Result<f64> {
    t.to_dtype(DType::F64)?.to_scalar::<f64>()
}

/// What a forward pass records of each head layer: its input, and a zero variable added to
/// its output, whose gradient after a backward pass is the loss's gradient at that output.
/// The outputs are unchanged (`y + 0`), and so is every other gradient.
pub(super) struct Taps {
    layers: Vec<OnceLock<(Tensor, Var)>>,
}

impl Taps {
    pub(super) fn new(layers: usize) -> Self {
        Self { layers: (0..layers).map(|_| OnceLock::new()).collect() }
    }

    /// Layer `i`'s output `y` on `x`, recorded.
    pub(super) fn record(&self, i: usize, x: &Tensor, y: Tensor) -> Result<Tensor> {
        let probe = Var::zeros(y.shape(), y.dtype(), y.device())?;
        let out = (y + probe.as_tensor())?;
        if self.layers[i].set((x.detach(), probe)).is_err() {
            candle_core::bail!("head layer {i} ran twice in one recorded pass");
        }
        Ok(out)
    }

    /// Each layer's gradient from the backward pass that filled `grads`.
    pub(super) fn gradients(self, grads: &GradStore) -> Result<Vec<LayerGradient>> {
        self.layers
            .into_iter()
            .enumerate()
            .map(|(i, cell)| {
                let Some((x, probe)) = cell.into_inner() else {
                    candle_core::bail!("head layer {i} did not run in the recorded pass")
                };
                let delta = match grads.get(probe.as_tensor()) {
                    Some(d) => d.clone(),
                    None => probe.zeros_like()?,
                };
                Ok(LayerGradient { x, delta })
            })
            .collect()
    }
}

/// The network part of the update in progress that a lookahead starts from: its built
/// head layers (detached: gradients reach their inputs only), its gradient of the torso's
/// parameters and its head layers' gradients, and what its passes found that a lookahead
/// can reuse: the target network's log-probabilities on the next states (for `B' = B`) and
/// the expected Q-values at `theta` (for the one-sided difference).
pub(super) struct UpdateGradients {
    pub(super) layers: HeadLayers,
    pub(super) torso: Vec<Tensor>,
    pub(super) head: Vec<LayerGradient>,
    pub(super) target_next: Tensor,
    pub(super) q: Tensor,
}

/// The online network at `theta + c grad`: the torso built from moved tensors, the update's
/// head layers (detached: gradients reach their inputs only) plus each layer's output
/// change along `grad`'s head part.
struct Moved<'a> {
    torso: TorsoLayers,
    head: &'a HeadLayers,
    c: f64,
    grads: &'a [LayerGradient],
    noise: &'a [NoiseSquares],
}

impl Moved<'_> {
    /// Log-probabilities `(batch, actions, atoms)`; with `taps`, the head layers recorded.
    fn forward(&self, obs: &Tensor, taps: Option<&Taps>) -> Result<Tensor> {
        self.head.forward_with(&self.torso.forward(obs)?, |i, layer, x| {
            let y = (layer.forward(x)? + self.grads[i].output_change(x, self.c, &self.noise[i])?)?;
            match taps {
                Some(taps) => taps.record(i, x, y),
                None => Ok(y),
            }
        })
    }
}

/// `t + c g` per tensor.
fn moved(theta: &[Tensor], grads: &[Tensor], c: f64) -> Result<Vec<Tensor>> {
    theta.iter().zip(grads).map(|(t, g)| t + g.affine(c, 0.0)?).collect()
}

impl Learner {
    /// [`MetaAccess::lookahead_jvp`](crate::MetaAccess::lookahead_jvp); see the module docs.
    pub(super) fn lookahead_jvp_from(
        &self,
        update: &UpdateGradients,
        (target, update_target): (&NetLayers, &Tensor),
        batch: &DeviceBatch,
        request: &LookaheadRequest<'_>,
    ) -> Result<LookaheadJvp> {
        let (alpha, eps) = (request.alpha, request.eps);
        if request.update_target && request.meta_batch.is_some() {
            candle_core::bail!(
                "LookaheadRequest: update_target with a fresh meta batch, which has no update target"
            );
        }
        let meta_batch = request.meta_batch.unwrap_or(batch);
        let device = self.device();
        let mut clock = StageClock::start(device, self.profile)?;
        let mut timings = LookaheadTimings::default();
        let torso = self.online().torso();
        let theta: Vec<Tensor> = torso.named_vars().iter().map(|(_, v)| v.as_tensor().detach()).collect();
        let noise = self.online().head().layers().map(|l| l.noise_squares()).collect::<Result<Vec<_>>>()?;
        let head = &update.layers;

        // theta' = theta - alpha grad, its torso as fresh variables for g's backward pass.
        let prime: Vec<Var> =
            moved(&theta, &update.torso, -alpha)?.iter().map(Var::from_tensor).collect::<Result<_>>()?;
        let at_prime = |torso| Moved { torso, head, c: -alpha, grads: &update.head, noise: &noise };
        let params: Vec<Tensor> = prime.iter().map(|v| v.as_tensor().clone()).collect();
        let online = at_prime(torso.build_from(&params));
        let detached = at_prime(online.torso.detach());
        clock.lap(&mut timings.setup)?;

        // g = grad L_TD(theta'; B'): the bootstrap passes and the recorded online pass. On
        // the update's own batch the target network's pass is the update's, or the whole
        // target distribution.
        let taps = Taps::new(noise.len());
        let next = |obs: &Tensor| detached.forward(obs, None);
        let bootstrap = || match (request.meta_batch, request.update_target) {
            (Some(fresh), _) => self.target_distribution(&next, target, fresh).map(|(m, _)| m),
            (None, true) => Ok(update_target.clone()),
            (None, false) => self.reused_target_distribution(&next, &update.target_next, batch),
        };
        let (target_m, log_probs) =
            side_by_side(device, bootstrap, || online.forward(meta_batch.obs(), Some(&taps)));
        let (_, loss) = self.weighted_loss(&log_probs?, &target_m?, meta_batch)?;
        clock.lap(&mut timings.forward)?;
        let store = loss.backward()?;
        let g_torso: Vec<Tensor> = prime
            .iter()
            .map(|v| store.get(v.as_tensor()).cloned().map_or_else(|| v.zeros_like(), Ok))
            .collect::<Result<_>>()?;
        let g_head = taps.gradients(&store)?;
        let mut norm_sq = 0.0;
        for g in &g_torso {
            norm_sq += to_f64(g.to_dtype(DType::F64)?.sqr()?.sum_all()?)?;
        }
        for (g, noise) in g_head.iter().zip(&noise) {
            norm_sq += g.norm_sq(noise)?;
        }
        let direction_norm = norm_sq.sqrt();
        clock.lap(&mut timings.backward)?;

        // u = J g by a difference along g / |g|, with the update's noise.
        let q_at = |c: f64| -> Result<Tensor> {
            let torso = torso.build_from(&moved(&theta, &g_torso, c)?);
            let at = Moved { torso, head, c, grads: &g_head, noise: &noise };
            self.support().expected_q(&at.forward(batch.obs(), None)?)
        };
        let u = if direction_norm > 0.0 && direction_norm.is_finite() {
            let s = eps / direction_norm;
            match request.difference {
                Difference::Central => {
                    let (plus, minus) = side_by_side(device, || q_at(s), || q_at(-s));
                    ((plus? - minus?)? * (0.5 / s))?
                }
                Difference::OneSided => ((q_at(s)? - &update.q)? * (1.0 / s))?,
            }
        } else {
            Tensor::zeros((batch.len(), self.online().actions()), self.dtype(), device)?
        };
        clock.lap(&mut timings.jvp)?;
        Ok(LookaheadJvp { meta_loss: to_f64(loss)?, direction_norm, u, timings })
    }

    /// The projected target distribution of `batch` at the online parameters of `next`,
    /// from the target network's log-probabilities on its next states as the update found
    /// them (the target network does not move within an update).
    fn reused_target_distribution(
        &self,
        next: &super::OnlinePass,
        target_next: &Tensor,
        batch: &DeviceBatch,
    ) -> Result<Tensor> {
        let online_logp = self.config().double_q.then(|| next(batch.next_obs())).transpose()?;
        let bootstrap = self.bootstrap_from(target_next.clone(), online_logp)?;
        self.support().project(batch.returns(), batch.discounts(), &bootstrap.probs)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rl_env::{Obs, ObsSpec};

    use super::*;
    use crate::config::{NStepConfig, ReplayConfig};
    use crate::learner::LearnerConfig;
    use crate::network::NetworkConfig;
    use crate::regularizer::{MetaAccess, Regularizer, UpdateGradient};
    use crate::replay::prioritized::PrioritizedReplay;
    use crate::torso::TorsoConfig;
    use crate::transition::Transition;

    const ACTIONS: usize = 5;
    /// The smallest stack the Nature CNN takes: 36x36 gives 64 features.
    const PIXELS: ObsSpec = ObsSpec::Pixels { channels: 2, height: 36, width: 36 };
    const VECTOR: ObsSpec = ObsSpec::Vector { len: 3 };

    fn network(spec: &ObsSpec, noisy: bool, dueling: bool) -> NetworkConfig {
        let torso = match spec {
            ObsSpec::Pixels { .. } => TorsoConfig::NatureCnn,
            ObsSpec::Vector { .. } => TorsoConfig::Mlp { hidden: vec![16] },
        };
        NetworkConfig { torso, hidden: 12, atoms: 7, noisy, dueling, ..NetworkConfig::rainbow() }
    }

    /// A learner whose replay holds 6 episodes of 12 random steps.
    fn learner(spec: &ObsSpec, network: &NetworkConfig, dtype: DType) -> Learner {
        learner_with(spec, network, dtype, true)
    }

    /// [`learner`], with or without double-Q.
    fn learner_with(spec: &ObsSpec, network: &NetworkConfig, dtype: DType, double_q: bool) -> Learner {
        let replay = PrioritizedReplay::new(
            &ReplayConfig { capacity: 256, ..ReplayConfig::rainbow() },
            &NStepConfig { n: 3, gamma: 0.9 },
            spec,
            1,
        )
        .unwrap();
        let config =
            LearnerConfig { batch_size: 6, v_min: -3.0, v_max: 3.0, double_q, ..LearnerConfig::rainbow() };
        let mut learner = Learner::new(&config, network, replay, ACTIONS, dtype, &Device::Cpu, 5).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (mut pixels, mut vector) = (vec![0u8; spec.len()], vec![0f32; spec.len()]);
        let replay = learner.replay_mut();
        for episode in 0..6 {
            for t in 0..=12 {
                rng.fill(&mut pixels[..]);
                vector.iter_mut().for_each(|x| *x = rng.random_range(-1.0..1.0));
                let obs = if matches!(spec, ObsSpec::Pixels { .. }) {
                    Obs::Pixels(&pixels)
                } else {
                    Obs::Vector(&vector)
                };
                if t == 0 {
                    replay.start_episode(0, obs).unwrap();
                } else {
                    let (terminal, truncated) = (t == 12 && episode % 2 == 0, t == 12 && episode % 2 == 1);
                    let reward = rng.random_range(-1.0..1.0);
                    let step = Transition::primitive(t % ACTIONS, reward, 0.9, terminal, truncated);
                    replay.add(0, &step, obs).unwrap();
                }
            }
        }
        learner
    }

    /// `lookahead_jvp`'s meta loss, `|g|` and `u`, computed another way.
    type Plain = (f64, f64, Tensor);

    /// `lookahead_jvp`'s three numbers computed the plain way: the variables set to
    /// `theta'`, the TD loss on `fresh` (or on the update's batch against its own target)
    /// and its backward pass, the variables set to `theta +- s g`, the Q-values; then the
    /// variables restored.
    fn through_variables(
        access: &dyn MetaAccess,
        grads: &[Tensor],
        fresh: &DeviceBatch,
        check: &Check,
    ) -> Plain {
        let ((alpha, eps), difference) = (check.alpha_eps, check.difference);
        let vars = access.vars();
        let theta: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy().unwrap()).collect();
        let set = |c: f64, dir: &[Tensor]| {
            for ((v, t), d) in vars.iter().zip(&theta).zip(dir) {
                v.set(&(t + d.affine(c, 0.0).unwrap()).unwrap()).unwrap();
            }
        };
        set(-alpha, grads);
        let loss = match check.update_target {
            true => access.td_loss_on_update_target().unwrap().expect("an update in progress"),
            false => access.td_loss(fresh).unwrap(),
        };
        let store = loss.backward().unwrap();
        let g: Vec<Tensor> = vars.iter().map(|v| store.get(v).unwrap().clone()).collect();
        let norm_sq: f64 = g
            .iter()
            .map(|g| to_f64(g.to_dtype(DType::F64).unwrap().sqr().unwrap().sum_all().unwrap()).unwrap())
            .sum();
        let s = eps / norm_sq.sqrt();
        let q = |c: f64| {
            set(c, &g);
            access.q_values(access.last_batch()).unwrap()
        };
        let u = match difference {
            Difference::Central => ((q(s) - q(-s)).unwrap() * (0.5 / s)).unwrap(),
            Difference::OneSided => ((q(s) - q(0.0)).unwrap() * (1.0 / s)).unwrap(),
        };
        set(0.0, &g);
        (to_f64(loss).unwrap(), norm_sq.sqrt(), u)
    }

    /// The factored lookahead covers the head's four layers only: with the S-embedding it
    /// refuses, rather than leaving the embedding's parameters at `theta`.
    #[test]
    fn the_s_embedding_is_refused_by_the_factored_lookahead() {
        let network = NetworkConfig { s_embedding: Some(Default::default()), ..network(&VECTOR, true, true) };
        let mut learner = learner(&VECTOR, &network, DType::F64);
        let err = learner.update(0, &mut Check::new((0.1, 1e-3), false)).unwrap_err().to_string();
        assert!(err.contains("S-embedding"), "{err}");
    }

    /// A regulariser with a penalty on `Q` (so the update's gradient has one, as MASP's
    /// does) that, in its `before_step`, runs `lookahead_jvp` and checks that the
    /// variables did not move, then (`reference`) does the same through the variables.
    struct Check {
        alpha_eps: (f64, f64),
        reference: bool,
        /// Meta loss on the update's own batch (`B' = B`) instead of a fresh one.
        same_batch: bool,
        /// ... and against the update's own target ([`LookaheadRequest::update_target`]).
        update_target: bool,
        difference: Difference,
        out: Option<(LookaheadJvp, Option<Plain>)>,
    }

    impl Check {
        fn new(alpha_eps: (f64, f64), reference: bool) -> Self {
            let difference = Difference::Central;
            Self { alpha_eps, reference, same_batch: false, update_target: false, difference, out: None }
        }
    }

    impl Regularizer for Check {
        fn penalty(&mut self, q: &Tensor) -> Result<Option<Tensor>> {
            penalty(q)
        }

        fn wants_lookahead_jvp(&self) -> bool {
            true
        }

        fn before_step(&mut self, access: &mut dyn MetaAccess, gradient: &UpdateGradient) -> Result<()> {
            let fresh = if self.same_batch { access.last_batch().clone() } else { access.sample_batch()? };
            let before = bits(&access.vars());
            let (alpha, eps) = self.alpha_eps;
            let meta_batch = (!self.same_batch).then_some(&fresh);
            let (update_target, difference) = (self.update_target, self.difference);
            let request = LookaheadRequest { alpha, meta_batch, eps, update_target, difference };
            let jvp = access.lookahead_jvp(&request)?.expect("the learner recorded the update");
            assert_eq!(bits(&access.vars()), before, "lookahead_jvp wrote a variable");
            let reference = self.reference.then(|| through_variables(access, gradient.grads, &fresh, self));
            self.out = Some((jvp, reference));
            Ok(())
        }
    }

    fn bits(vars: &[Var]) -> Vec<Vec<u64>> {
        let f64s = |v: &Var| {
            v.as_tensor().to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
        };
        vars.iter().map(|v| f64s(v).into_iter().map(f64::to_bits).collect()).collect()
    }

    /// `max |a - b| / max |b|`.
    fn rel(a: &Tensor, b: &Tensor) -> f64 {
        let (a, b) = (a.to_dtype(DType::F64).unwrap(), b.to_dtype(DType::F64).unwrap());
        let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        (a - &b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap() / scale
    }

    /// The second update's lookahead (Adam has moved the parameters off their
    /// initialisation once).
    fn second_update(learner: &mut Learner, check: &mut Check) -> (LookaheadJvp, Option<Plain>) {
        learner.update(0, &mut ()).unwrap();
        learner.update(1, check).unwrap();
        check.out.take().unwrap()
    }

    #[test]
    fn equals_the_computation_through_the_variables_in_f64() {
        // A large alpha, so that theta' is far from theta and a lookahead that got the
        // update's gradient wrong (a missing noise or bias term) shows in every number.
        let alpha_eps = (0.5, 1e-4);
        for (spec, noisy, dueling) in
            [(&VECTOR, true, true), (&VECTOR, false, true), (&VECTOR, true, false), (&PIXELS, true, true)]
        {
            let mut learner = learner(spec, &network(spec, noisy, dueling), DType::F64);
            let mut check = Check::new(alpha_eps, true);
            let (fast, reference) = second_update(&mut learner, &mut check);
            let (meta_loss, norm, u) = reference.unwrap();
            let case = format!("{spec:?} noisy {noisy} dueling {dueling}");
            assert!(
                (fast.meta_loss - meta_loss).abs() <= 1e-12 * meta_loss.abs(),
                "{case}: loss {} vs {meta_loss}",
                fast.meta_loss
            );
            assert!(
                (fast.direction_norm - norm).abs() <= 1e-12 * norm,
                "{case}: |g| {} vs {norm}",
                fast.direction_norm
            );
            assert_eq!(fast.u.dims(), [6, ACTIONS]);
            assert!(rel(&fast.u, &u) <= 1e-9, "{case}: u off by {}", rel(&fast.u, &u));
            assert!(
                u.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap() > 1e-6,
                "{case}: u is not trivially zero"
            );
        }
    }

    /// The meta-step options (issue 14): the meta loss on the update's own batch, whose
    /// target pass (or whole target) is then reused, and the one-sided difference, whose
    /// `Q(theta)` is the update's; each against the same computation through the
    /// variables, in f64.
    #[test]
    fn the_options_equal_their_computation_through_the_variables() {
        let alpha_eps = (0.5, 1e-4);
        for (same_batch, update_target, difference) in [
            (true, false, Difference::Central),
            (false, false, Difference::OneSided),
            (true, false, Difference::OneSided),
            (true, true, Difference::OneSided),
            (true, true, Difference::Central),
        ] {
            for spec in [&VECTOR, &PIXELS] {
                let mut learner = learner(spec, &network(spec, true, true), DType::F64);
                let mut check =
                    Check { same_batch, update_target, difference, ..Check::new(alpha_eps, true) };
                let (fast, reference) = second_update(&mut learner, &mut check);
                let (meta_loss, norm, u) = reference.unwrap();
                let case =
                    format!("{spec:?} same batch {same_batch} update target {update_target} {difference:?}");
                assert!((fast.meta_loss - meta_loss).abs() <= 1e-12 * meta_loss.abs(), "{case}: loss");
                assert!((fast.direction_norm - norm).abs() <= 1e-12 * norm, "{case}: |g|");
                assert!(rel(&fast.u, &u) <= 1e-9, "{case}: u off by {}", rel(&fast.u, &u));
            }
        }
    }

    /// Without double-Q the target distribution does not depend on the online network, so
    /// the update's target is the lookahead's, bit for bit; with double-Q they differ only
    /// through `a*`, which a small lookahead step leaves where it was and a large one moves.
    #[test]
    fn the_update_target_is_the_lookaheads_where_a_star_does_not_move() {
        let jvp = |double_q: bool, alpha: f64, update_target: bool| {
            let spec = &VECTOR;
            let mut learner = learner_with(spec, &network(spec, true, true), DType::F64, double_q);
            let mut check = Check { same_batch: true, update_target, ..Check::new((alpha, 1e-4), false) };
            second_update(&mut learner, &mut check).0
        };
        for (double_q, alpha) in [(false, 0.5), (true, 1e-6)] {
            let (a, b) = (jvp(double_q, alpha, true), jvp(double_q, alpha, false));
            let case = format!("double-Q {double_q}, alpha {alpha}");
            assert_eq!(a.meta_loss.to_bits(), b.meta_loss.to_bits(), "{case}: loss");
            assert_eq!(a.direction_norm.to_bits(), b.direction_norm.to_bits(), "{case}: |g|");
            assert_eq!(rel(&a.u, &b.u), 0.0, "{case}: u");
        }
        // A lookahead step large enough to move some a*: the two targets differ, so a
        // lookahead that ignored the request would fail here (1.683 against 1.650 in f64).
        let (a, b) = (jvp(true, 2.0, true), jvp(true, 2.0, false));
        assert!((a.meta_loss - b.meta_loss).abs() > 1e-3, "loss {} vs {}", a.meta_loss, b.meta_loss);
    }

    /// A fresh batch has no update target to reuse.
    #[test]
    fn the_update_target_with_a_fresh_batch_is_an_error() {
        let mut learner = learner(&VECTOR, &network(&VECTOR, true, true), DType::F64);
        let mut check = Check { update_target: true, ..Check::new((0.1, 1e-3), false) };
        learner.update(0, &mut ()).unwrap();
        let err = learner.update(1, &mut check).unwrap_err().to_string();
        assert!(err.contains("update_target with a fresh meta batch"), "{err}");
    }

    /// The CPU fast path (custom ops, f32) against the same learner in f64 (its parameters
    /// are the f64 ones rounded).
    #[test]
    fn the_f32_fast_path_agrees_with_f64() {
        let alpha_eps = (0.5, 1e-2);
        for spec in [&PIXELS, &VECTOR] {
            let config = network(spec, true, true);
            let mut exact = Check::new(alpha_eps, false);
            let mut fast = Check::new(alpha_eps, false);
            let (exact, _) = second_update(&mut learner(spec, &config, DType::F64), &mut exact);
            let (fast, _) = second_update(&mut learner(spec, &config, DType::F32), &mut fast);
            assert!((fast.meta_loss / exact.meta_loss - 1.0).abs() < 1e-6, "{spec:?}: loss");
            assert!((fast.direction_norm / exact.direction_norm - 1.0).abs() < 1e-6, "{spec:?}: |g|");
            assert!(rel(&fast.u, &exact.u) < 2e-4, "{spec:?}: u off by {}", rel(&fast.u, &exact.u));
        }
    }

    /// Recording the head layers for the lookahead changes nothing in the update.
    #[test]
    fn recording_leaves_the_update_bit_identical() {
        for (spec, dtype) in [(&PIXELS, DType::F32), (&VECTOR, DType::F64)] {
            let config = network(spec, true, true);
            let run = |wants_lookahead_jvp: bool| {
                let mut learner = learner(spec, &config, dtype);
                let mut penalty = Penalty { wants_lookahead_jvp };
                let stats: Vec<_> = (0..3).map(|step| learner.update(step, &mut penalty).unwrap()).collect();
                (stats, bits(&learner.online().vars()), bits(learner.adam().moments().1))
            };
            assert!(run(true) == run(false), "{spec:?}");
        }
    }

    fn penalty(q: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some((q.sqr()?.mean_all()? * 0.3)?))
    }

    /// [`Check`]'s penalty alone, recording or not.
    struct Penalty {
        wants_lookahead_jvp: bool,
    }

    impl Regularizer for Penalty {
        fn penalty(&mut self, q: &Tensor) -> Result<Option<Tensor>> {
            penalty(q)
        }

        fn wants_lookahead_jvp(&self) -> bool {
            self.wants_lookahead_jvp
        }

        fn before_step(&mut self, _: &mut dyn MetaAccess, _: &UpdateGradient) -> Result<()> {
            Ok(())
        }
    }
}
