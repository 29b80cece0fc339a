//! `Masp::save_state` / `load_state`: a `Masp` saved after some updates and meta steps and
//! loaded into a fresh one goes on bit for bit as the original does: after more identical
//! updates on the same model and batches, `S`, Adam's moments and the counters are equal.
//! The control: restoring `S` alone (what checkpoints held before) diverges.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, SGD};
use masp::{Error, Masp, MaspConfig, MetaModel, MetaOptimizer, MASP_STATE_FILE};

const CPU: Device = Device::Cpu;
const A: usize = 5;

/// Q(x) = tanh(x W1^T) W2^T: 3 inputs, 6 hidden units, A actions; regression on the
/// action taken.
struct Net {
    w1: Var,
    w2: Var,
}

struct Batch {
    x: Tensor,
    taken: Tensor,
    y: Tensor,
}

impl MetaModel for Net {
    type Batch = Batch;
    fn vars(&self) -> Vec<Var> {
        vec![self.w1.clone(), self.w2.clone()]
    }
    fn q_values(&mut self, b: &Batch) -> candle_core::Result<Tensor> {
        b.x.matmul(&self.w1.t()?)?.tanh()?.matmul(&self.w2.t()?)
    }
    fn td_loss(&mut self, b: &Batch) -> candle_core::Result<Tensor> {
        let q_taken = (self.q_values(b)? * &b.taken)?.sum(1)?;
        (q_taken - &b.y)?.sqr()?.mean_all()
    }
}

impl Net {
    /// A copy with its own storage.
    fn copy(&self) -> Net {
        let copy = |v: &Var| Var::from_tensor(&v.as_tensor().copy().unwrap()).unwrap();
        Net { w1: copy(&self.w1), w2: copy(&self.w2) }
    }
}

/// Fixed batches, drawn once so that both runs see the same ones.
fn batches(count: usize) -> Vec<Batch> {
    (0..count)
        .map(|k| {
            let x = Tensor::rand(-1f32, 1., (16, 3), &CPU).unwrap();
            let actions =
                Tensor::from_vec((0..16u32).map(|i| (i + k as u32) % A as u32).collect(), 16, &CPU).unwrap();
            let taken = candle_nn::encoding::one_hot(actions, A, 1f32, 0f32).unwrap();
            Batch { y: (x.sum(1).unwrap() * 0.7).unwrap(), x, taken }
        })
        .collect()
}

/// One agent update per batch of `batches`: TD loss plus MASP's penalty, an SGD step, and
/// a meta step when due (`B'` = the next batch).
fn train(masp: &mut Masp, net: &mut Net, batches: &[Batch]) {
    let mut sgd = SGD::new(net.vars(), 0.05).unwrap();
    for (k, b) in batches.iter().enumerate() {
        let loss = (net.td_loss(b).unwrap() + masp.penalty(&net.q_values(b).unwrap()).unwrap()).unwrap();
        sgd.backward_step(&loss).unwrap();
        if masp.record_update() {
            masp.meta_step(net, b, &batches[(k + 1) % batches.len()]).unwrap();
        }
    }
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

fn ids() -> Vec<String> {
    ["NOOP", "LEFT", "RIGHT", "LEFT+LEFT", "RIGHT+NOOP+RIGHT"].map(String::from).to_vec()
}

fn config(kind: MetaOptimizer) -> MaspConfig {
    // beta large enough that S moves visibly in a few meta steps; meta_interval 3 so that
    // the phase (updates mod 3) at the save is not 0.
    MaspConfig { meta_optimizer: kind, meta_interval: 3, beta: 0.05, eta: 0.5, ..Default::default() }
}

fn fresh(kind: MetaOptimizer) -> Masp {
    Masp::from_config(config(kind), &ids(), None, DType::F32, &CPU).unwrap().0
}

#[test]
fn a_loaded_masp_goes_on_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("masp-state-test-{}", std::process::id()));
    let data = batches(10);
    for kind in [MetaOptimizer::Adam, MetaOptimizer::Plain] {
        let mut net = Net {
            w1: Var::rand(-1f32, 1., (6, 3), &CPU).unwrap(),
            w2: Var::rand(-1f32, 1., (A, 6), &CPU).unwrap(),
        };
        let mut original = fresh(kind);
        train(&mut original, &mut net, &data[..7]); // N = 7 updates, 2 meta steps
        assert_eq!((original.updates(), original.meta_steps()), (7, 2));
        original.save_state(&ids(), &dir).unwrap();

        let mut loaded = fresh(kind);
        loaded.load_state(&ids(), &dir).unwrap();
        assert_eq!((loaded.updates(), loaded.meta_steps()), (7, 2));
        assert_eq!(bits(&loaded.similarity().tensor()), bits(&original.similarity().tensor()));

        // The control: S alone, counters and optimiser state afresh.
        let mut s_only = fresh(kind);
        s_only
            .set_similarity(masp::Similarity::from_tensor(&original.similarity().tensor()).unwrap())
            .unwrap();

        // M = 8 more identical updates (3 meta steps) on identical copies of the model.
        let (mut net_loaded, mut net_s_only) = (net.copy(), net.copy());
        train(&mut original, &mut net, &data[2..]);
        train(&mut loaded, &mut net_loaded, &data[2..]);
        train(&mut s_only, &mut net_s_only, &data[2..]);

        assert_eq!((loaded.updates(), loaded.meta_steps()), (15, 5), "{kind:?}");
        assert_eq!(bits(&loaded.similarity().tensor()), bits(&original.similarity().tensor()), "{kind:?}: S");
        assert_eq!(bits(net_loaded.w2.as_tensor()), bits(net.w2.as_tensor()), "{kind:?}: the model");
        match (original.adam_state(), loaded.adam_state()) {
            (Some((m, v, t)), Some((m2, v2, t2))) => {
                assert_eq!((bits(m), bits(v), t), (bits(m2), bits(v2), t2), "Adam's state");
                assert_eq!(t, 5);
            }
            (None, None) => assert_eq!(kind, MetaOptimizer::Plain),
            _ => panic!("{kind:?}: one has Adam's state, the other not"),
        }
        assert_ne!(
            bits(&s_only.similarity().tensor()),
            bits(&original.similarity().tensor()),
            "{kind:?}: restoring S alone should diverge (the meta_interval phase, Adam's state), or this test \
             checks nothing"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refuses_another_pool_or_optimiser() {
    let dir = std::env::temp_dir().join(format!("masp-state-refuse-{}", std::process::id()));
    fresh(MetaOptimizer::Adam).save_state(&ids(), &dir).unwrap();
    assert!(dir.join(MASP_STATE_FILE).exists());

    let mut reordered = ids();
    reordered.swap(1, 2);
    let mut masp =
        Masp::from_config(config(MetaOptimizer::Adam), &reordered, None, DType::F32, &CPU).unwrap().0;
    let err = masp.load_state(&reordered, &dir).unwrap_err();
    assert!(err.to_string().contains("resume with the run's own pool"), "{err}");

    let err = fresh(MetaOptimizer::Plain).load_state(&ids(), &dir).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { field: "meta_optimizer", .. }), "{err}");
    assert!(err.to_string().contains("saved with meta_optimizer = Adam"), "{err}");

    let mut f64_masp =
        Masp::from_config(config(MetaOptimizer::Adam), &ids(), None, DType::F64, &CPU).unwrap().0;
    assert!(matches!(f64_masp.load_state(&ids(), &dir), Err(Error::DType { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}
