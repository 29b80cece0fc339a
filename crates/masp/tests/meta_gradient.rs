//! The closed-form meta-gradient against finite differences of `L_meta(S)` itself, in f64,
//! on a small MLP Q-network (docs/method.md, section 6: no second-order autodiff, the closed
//! form checked against finite differences of `L_meta` itself, in f64).
//!
//! The reference `L_meta(S)` below is written from docs/method.md's definition (section 3),
//! independently of the crate (the network and the brute-force penalty are in
//! `common/mlp.rs`): the penalty by brute force (the pairwise form over all `(a, b)` pairs), the
//! lookahead `theta' = theta - alpha D grad(L_TD + L_MASP)` by candle's ordinary backward,
//! then `L_TD(theta'; B')`. Each entry of `S` is perturbed on its own (the full-matrix
//! gradient that `meta_gradient` returns), and each off-diagonal pair together (the
//! symmetric parameter that the step on `S` moves, whose derivative is `G_ab + G_ba`).

use candle_core::{DType, Tensor};
use masp::{
    meta_gradient, Difference, Form, Lookahead, Masp, MaspConfig, MetaModel, MetaOptimizer, Similarity,
};

#[path = "common/mlp.rs"]
mod mlp;

use mlp::*;

/// `L_meta(S) = L_TD(theta'; B')` with `theta' = theta - alpha D grad[L_TD(B) + L_MASP(S; B)]`,
/// restoring theta afterwards.
fn l_meta(model: &mut Mlp, s: &Tensor, config: &MaspConfig, b: &Batch, b2: &Batch) -> f64 {
    let vars = model.vars();
    let theta: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy().unwrap().detach()).collect();
    let q = model.q_values(b).unwrap();
    let loss = (model.td_loss(b).unwrap() + brute_penalty(&q, s, config.form, config.eta)).unwrap();
    let grads = loss.backward().unwrap();
    for (i, v) in vars.iter().enumerate() {
        let mut step = grads.get(v).unwrap().clone();
        if config.lookahead == Lookahead::AdamPreconditioned {
            step = (step * &model.preconditioner.as_ref().unwrap()[i]).unwrap();
        }
        v.set(&(&theta[i] - (step * config.alpha).unwrap()).unwrap()).unwrap();
    }
    let value = model.td_loss(b2).unwrap().to_scalar::<f64>().unwrap();
    for (v, t) in vars.iter().zip(&theta) {
        v.set(t).unwrap();
    }
    value
}

/// Central differences of `L_meta` in each entry of `s` (full matrix), step `h`.
fn fd_full(
    model: &mut Mlp,
    s: &[Vec<f64>],
    config: &MaspConfig,
    b: &Batch,
    b2: &Batch,
    h: f64,
) -> Vec<Vec<f64>> {
    let mut g = vec![vec![0.0; A]; A];
    for i in 0..A {
        for j in 0..A {
            let mut at = |delta: f64| {
                let mut m = s.to_vec();
                m[i][j] += delta;
                l_meta(model, &Tensor::new(m, &CPU).unwrap(), config, b, b2)
            };
            g[i][j] = (at(h) - at(-h)) / (2.0 * h);
        }
    }
    g
}

/// Central differences of `L_meta` along each symmetric pair `S_ab = S_ba`, `a < b`.
fn fd_pairs(model: &mut Mlp, s: &[Vec<f64>], config: &MaspConfig, b: &Batch, b2: &Batch, h: f64) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..A {
        for j in i + 1..A {
            let mut at = |delta: f64| {
                let mut m = s.to_vec();
                m[i][j] += delta;
                m[j][i] += delta;
                l_meta(model, &Tensor::new(m, &CPU).unwrap(), config, b, b2)
            };
            out.push((at(h) - at(-h)) / (2.0 * h));
        }
    }
    out
}

/// Compares the closed form with finite differences at `s`, with MASP.md's central JVP and
/// the default one-sided one (its error, of order `eps` = 1e-6, is inside the same bound);
/// returns the central one's two relative errors (full matrix, symmetric pairs).
fn check(form: Form, lookahead: Lookahead, s_rows: Vec<Vec<f64>>, seed: u64, same_batch: bool) -> (f64, f64) {
    let one_sided = check_with(Difference::OneSided, form, lookahead, s_rows.clone(), seed, same_batch);
    let central = check_with(Difference::Central, form, lookahead, s_rows, seed, same_batch);
    assert_ne!(one_sided, central, "the difference option reaches the meta-gradient");
    central
}

fn check_with(
    difference: Difference,
    form: Form,
    lookahead: Lookahead,
    s_rows: Vec<Vec<f64>>,
    seed: u64,
    same_batch: bool,
) -> (f64, f64) {
    let mut rng = Lcg(seed);
    let mut model = Mlp::new(&mut rng);
    if lookahead == Lookahead::AdamPreconditioned {
        let d = model.vars().iter().map(|v| rng.tensor(v.dims(), 0.5, 2.0)).collect();
        model.preconditioner = Some(d);
    }
    let b = model.batch(&mut rng, 10);
    let other = model.batch(&mut rng, 12);
    let b2 = if same_batch { &b } else { &other };
    let config = MaspConfig { difference, ..config(form, lookahead) };
    let s = Similarity::from_tensor(&Tensor::new(s_rows.clone(), &CPU).unwrap()).unwrap();

    let meta = meta_gradient(&mut model, &s, &config, &b, b2).unwrap();
    let closed: Vec<Vec<f64>> = meta.grad.to_vec2().unwrap();
    let fd = fd_full(&mut model, &s_rows, &config, &b, b2, 1e-4);
    let full = rel_err(&closed.concat(), &fd.concat());

    let pairs_closed: Vec<f64> = (0..A)
        .flat_map(|i| (i + 1..A).map(move |j| (i, j)))
        .map(|(i, j)| closed[i][j] + closed[j][i])
        .collect();
    let pairs_fd = fd_pairs(&mut model, &s_rows, &config, &b, b2, 1e-4);
    let pairs = rel_err(&pairs_closed, &pairs_fd);
    // The step's tangent is half the pair derivative.
    let tangent: Vec<Vec<f64>> = s.tangent(&meta.grad).unwrap().to_vec2().unwrap();
    let halves: Vec<f64> =
        (0..A).flat_map(|i| (i + 1..A).map(move |j| (i, j))).map(|(i, j)| 2.0 * tangent[i][j]).collect();
    assert!(rel_err(&halves, &pairs_closed) < 1e-14);

    let scale = fd.concat().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    eprintln!(
        "{form:?} {lookahead:?} {difference:?} B'=B:{same_batch}: rel err full {full:.2e}, pairs {pairs:.2e}, max |dL_meta/dS| {scale:.2e}"
    );
    assert!(scale > 1e-6, "the meta-gradient must not be trivially zero here ({scale:e})");
    assert!(full < 1e-5, "{form:?} {lookahead:?}: full-matrix relative error {full:e}");
    assert!(pairs < 1e-5, "{form:?} {lookahead:?}: symmetric-pair relative error {pairs:e}");
    (full, pairs)
}

#[test]
fn row_normalised_closed_form_matches_finite_differences() {
    check(Form::RowNormalised, Lookahead::Sgd, random_s(&mut Lcg(10)), 1, false);
    check(Form::RowNormalised, Lookahead::AdamPreconditioned, random_s(&mut Lcg(11)), 2, false);
    check(Form::RowNormalised, Lookahead::Sgd, random_s(&mut Lcg(12)), 3, true);
}

#[test]
fn pairwise_closed_form_matches_finite_differences() {
    check(Form::Pairwise, Lookahead::Sgd, random_s(&mut Lcg(20)), 4, false);
    check(Form::Pairwise, Lookahead::AdamPreconditioned, random_s(&mut Lcg(21)), 5, false);
    // At S = I too, where the pairwise form must move (below).
    let eye: Vec<Vec<f64>> = (0..A).map(|i| (0..A).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    check(Form::Pairwise, Lookahead::Sgd, eye, 6, true);
}

#[test]
fn identity_is_a_fixed_point_of_the_row_normalised_form_only() {
    let mut rng = Lcg(7);
    let mut model = Mlp::new(&mut rng);
    let (b, b2) = (model.batch(&mut rng, 10), model.batch(&mut rng, 10));
    let eye: Vec<Vec<f64>> = (0..A).map(|i| (0..A).map(|j| f64::from(u8::from(i == j))).collect()).collect();

    // Row-normalised: exactly zero in closed form, flat under finite differences too.
    let cfg = config(Form::RowNormalised, Lookahead::Sgd);
    let s = Similarity::identity(A, DType::F64, &CPU).unwrap();
    let meta = meta_gradient(&mut model, &s, &cfg, &b, &b2).unwrap();
    assert!(meta.grad.flatten_all().unwrap().to_vec1::<f64>().unwrap().iter().all(|&g| g == 0.0));
    let fd = fd_full(&mut model, &eye, &cfg, &b, &b2, 1e-4);
    let fd_max = fd.concat().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // Central differences at a stationary point leave only their O(h^2) term (~1e-8 here),
    // against entries of order 0.1 to 1 away from the identity (see the tests above).
    assert!(fd_max < 1e-6, "L_meta is flat at S = I: {fd_max:e}");
    let mut masp = Masp::new(cfg, Similarity::identity(A, DType::F64, &CPU).unwrap()).unwrap();
    for _ in 0..3 {
        masp.meta_step(&mut model, &b, &b2).unwrap();
    }
    assert_eq!(masp.similarity().tensor().to_vec2::<f64>().unwrap(), eye, "S never leaves I");

    // Pairwise: a non-zero gradient, and a plain step moves some pair off zero.
    let cfg = MaspConfig {
        meta_optimizer: MetaOptimizer::Plain,
        beta: 10.0,
        ..config(Form::Pairwise, Lookahead::Sgd)
    };
    let mut masp = Masp::new(cfg, Similarity::identity(A, DType::F64, &CPU).unwrap()).unwrap();
    let report = masp.meta_step(&mut model, &b, &b2).unwrap();
    assert!(report.meta_grad_norm > 0.0);
    let stats = masp.similarity().stats().unwrap();
    assert!(stats.max_off_diagonal > 0.0, "the pairwise form grows from S = I: {stats:?}");
}

#[test]
fn meta_step_restores_the_parameters_bit_for_bit() {
    for (form, lookahead, optimizer) in [
        (Form::RowNormalised, Lookahead::Sgd, MetaOptimizer::Adam),
        (Form::Pairwise, Lookahead::AdamPreconditioned, MetaOptimizer::Plain),
    ] {
        let mut rng = Lcg(8);
        let mut model = Mlp::new(&mut rng);
        model.preconditioner = Some(model.vars().iter().map(|v| rng.tensor(v.dims(), 0.5, 2.0)).collect());
        let (b, b2) = (model.batch(&mut rng, 10), model.batch(&mut rng, 10));
        let cfg = MaspConfig { meta_optimizer: optimizer, eps: 1e-2, ..config(form, lookahead) };
        let mut masp = Masp::new(cfg, Similarity::half_self_weight(A, DType::F64, &CPU).unwrap()).unwrap();
        let before = model.params();
        let s_before = masp.similarity().to_vec().unwrap();
        let report = masp.meta_step(&mut model, &b, &b2).unwrap();
        assert_eq!(model.params(), before, "{form:?}: theta restored exactly");
        assert_ne!(masp.similarity().to_vec().unwrap(), s_before, "{form:?}: S moved");
        // The report's numbers are the ones the agent would compute itself.
        let td = model.td_loss(&b).unwrap().to_scalar::<f64>().unwrap();
        let q = model.q_values(&b).unwrap();
        let pen = masp::penalty(
            &q,
            &Similarity::half_self_weight(A, DType::F64, &CPU).unwrap().tensor(),
            form,
            0.7,
        )
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
        assert_eq!((report.td_loss, report.penalty), (td, pen));
        assert!((report.penalty_td_ratio - pen / td).abs() < 1e-15);
        assert!(report.meta_loss.is_finite() && report.direction_norm > 0.0 && report.jvp_norm > 0.0);
    }
}

#[test]
fn a_failing_meta_batch_still_restores_theta_and_leaves_s() {
    let mut rng = Lcg(9);
    let mut model = Mlp::new(&mut rng);
    let b = model.batch(&mut rng, 10);
    // Targets of the wrong length: td_loss(B') fails after the lookahead has moved theta.
    let broken = Batch { x: b.x.clone(), taken: b.taken.clone(), target: rng.tensor(&[3], 0.0, 1.0) };
    let mut masp = Masp::new(
        config(Form::RowNormalised, Lookahead::Sgd),
        Similarity::half_self_weight(A, DType::F64, &CPU).unwrap(),
    )
    .unwrap();
    let (before, s_before) = (model.params(), masp.similarity().to_vec().unwrap());
    assert!(masp.meta_step(&mut model, &b, &broken).is_err());
    assert_eq!(model.params(), before);
    assert_eq!(masp.similarity().to_vec().unwrap(), s_before);
}

#[test]
fn preconditioned_lookahead_needs_a_preconditioner() {
    let mut rng = Lcg(10);
    let mut model = Mlp::new(&mut rng);
    let b = model.batch(&mut rng, 4);
    let s = Similarity::half_self_weight(A, DType::F64, &CPU).unwrap();
    let err =
        meta_gradient(&mut model, &s, &config(Form::RowNormalised, Lookahead::AdamPreconditioned), &b, &b)
            .unwrap_err()
            .to_string();
    assert!(err.contains("lookahead = adam_preconditioned needs one"), "{err}");
    let q32 = Similarity::half_self_weight(A, DType::F32, &CPU).unwrap();
    let err =
        meta_gradient(&mut model, &q32, &config(Form::RowNormalised, Lookahead::Sgd), &b, &b).unwrap_err();
    assert!(matches!(err, masp::Error::DType { .. }), "{err}");
}
