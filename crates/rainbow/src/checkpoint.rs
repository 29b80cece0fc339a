//! Checkpoints: an [`Agent`] saved to a directory and loaded back into a fresh one that
//! continues exactly where the saved one stopped (bit-identical on the CPU).
//!
//! Files in the directory:
//! * `agent.safetensors`: the online and target networks (`online.<name>`,
//!   `target.<name>`, names from [`crate::RainbowNet::named_vars`]), Adam's moments
//!   (`adam.m.<name>`, `adam.v.<name>`) and step count (`adam.step`, `i64 (1,)`), and the
//!   current noise samples (`online.noise.<layer>.in|out`, `f64`);
//! * `replay.bin` (optional): the replay buffer ([`crate::PrioritizedReplay::save_snapshot`]);
//!   about 7 GB for a full Atari buffer, hence optional;
//! * `agent.json`: the format version, the whole [`AgentConfig`], the observation spec,
//!   counters, RNG states (seed, stream and position of each ChaCha stream), each env
//!   copy's ez-greedy repeat, and which files belong to this checkpoint.
//!
//! Every file is written to a temporary name and renamed into place, so a crash leaves
//! either the old file or the new one, never half of one; `agent.json` is written last and
//! names the rest, so a directory whose JSON is complete is a complete checkpoint.
//!
//! ```no_run
//! use rainbow::{Agent, AgentConfig};
//! use rl_env::ObsSpec;
//! let agent = Agent::new(AgentConfig::toy(), &ObsSpec::Vector { len: 8 }, 4, 1)?;
//! agent.save("checkpoints/step-1000", true)?;
//! let resumed = Agent::load("checkpoints/step-1000")?;
//! assert_eq!(resumed.counters(), agent.counters());
//! # Ok::<(), rainbow::Error>(())
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rand_chacha::ChaCha8Rng;
use rl_env::ObsSpec;
use serde::{Deserialize, Serialize};

use crate::agent::{Agent, AgentConfig, Counters};
use crate::error::{Error, Result};
use crate::exploration::Repeat;
use crate::network::RainbowNet;

/// Bumped whenever the files change in a way an older reader would misread.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "agent.json";
const TENSORS: &str = "agent.safetensors";
const REPLAY: &str = "replay.bin";

/// `ObsSpec` as JSON (rl-env has no serde).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SpecJson {
    Pixels { channels: usize, height: usize, width: usize },
    Vector { len: usize },
}

impl From<&ObsSpec> for SpecJson {
    fn from(s: &ObsSpec) -> Self {
        match *s {
            ObsSpec::Pixels { channels, height, width } => SpecJson::Pixels { channels, height, width },
            ObsSpec::Vector { len } => SpecJson::Vector { len },
        }
    }
}

impl From<&SpecJson> for ObsSpec {
    fn from(s: &SpecJson) -> Self {
        match *s {
            SpecJson::Pixels { channels, height, width } => ObsSpec::Pixels { channels, height, width },
            SpecJson::Vector { len } => ObsSpec::Vector { len },
        }
    }
}

/// A ChaCha stream's exact position: its seed, stream id and word position (JSON numbers
/// cannot hold the `u128` position, so it is a decimal string).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RngState {
    seed: String,
    stream: u64,
    word_pos: String,
}

impl RngState {
    fn of(rng: &ChaCha8Rng) -> Self {
        let seed = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
        Self { seed, stream: rng.get_stream(), word_pos: rng.get_word_pos().to_string() }
    }

    fn restore(&self, path: &Path) -> Result<ChaCha8Rng> {
        use rand::SeedableRng;
        let bad = || Error::checkpoint(path, format!("RNG state {self:?} is malformed"));
        if self.seed.len() != 64 {
            return Err(bad());
        }
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(&self.seed[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos.parse().map_err(|_| bad())?);
        Ok(rng)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RngStates {
    noise: RngState,
    sample: RngState,
    explore: RngState,
}

/// The contents of `agent.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format_version: u32,
    config: AgentConfig,
    obs_spec: SpecJson,
    num_actions: usize,
    num_envs: usize,
    counters: Counters,
    /// Learner updates run (the target-sync clock) and the step its last batch used.
    learner_updates: u64,
    learner_step: u64,
    rng: RngStates,
    repeats: Vec<Repeat>,
    tensors: String,
    /// The replay file, when the replay was saved.
    replay: Option<String>,
}

/// `name.tmp` beside `path`'s `name`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes through a temporary file in the same directory and renames it into place.
fn write_atomic(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>) -> Result<()> {
    let tmp = tmp_path(path);
    let run = || -> std::io::Result<()> {
        let mut w = BufWriter::new(File::create(&tmp)?);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    run().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// The S-embedding's context is kept beside the parameters, so that an agent loaded only to
/// act (evaluation, videos) acts as trained.
const CONTEXT: &str = "s_embedding.context";

fn net_tensors(prefix: &str, net: &RainbowNet, out: &mut HashMap<String, Tensor>) -> Result<()> {
    for (name, var) in net.named_vars() {
        out.insert(format!("{prefix}.{name}"), var.as_tensor().to_device(&Device::Cpu)?);
    }
    if let Some(context) = net.action_context() {
        out.insert(format!("{prefix}.{CONTEXT}"), context.to_device(&Device::Cpu)?);
    }
    for (k, (f_in, f_out)) in net.noise_factors().into_iter().enumerate() {
        out.insert(
            format!("{prefix}.noise.{k}.in"),
            Tensor::from_vec(f_in.clone(), f_in.len(), &Device::Cpu)?,
        );
        out.insert(
            format!("{prefix}.noise.{k}.out"),
            Tensor::from_vec(f_out.clone(), f_out.len(), &Device::Cpu)?,
        );
    }
    Ok(())
}

/// Takes the named tensor out of a loaded checkpoint.
fn take(tensors: &mut HashMap<String, Tensor>, name: &str, path: &Path) -> Result<Tensor> {
    tensors.remove(name).ok_or_else(|| Error::checkpoint(path, format!("tensor {name} is missing")))
}

fn restore_net(
    prefix: &str,
    net: &mut RainbowNet,
    tensors: &mut HashMap<String, Tensor>,
    path: &Path,
) -> Result<()> {
    for (name, var) in net.named_vars() {
        let t = take(tensors, &format!("{prefix}.{name}"), path)?;
        var.set(&t.to_device(var.device())?).map_err(|e| {
            Error::checkpoint(path, format!("{prefix}.{name}: {e} (was it saved by another network?)"))
        })?;
    }
    if net.action_context().is_some() {
        net.set_action_context(&take(tensors, &format!("{prefix}.{CONTEXT}"), path)?)?;
    }
    let mut factors = Vec::new();
    for k in 0..net.noise_factors().len() {
        let f_in = take(tensors, &format!("{prefix}.noise.{k}.in"), path)?.to_vec1::<f64>()?;
        let f_out = take(tensors, &format!("{prefix}.noise.{k}.out"), path)?.to_vec1::<f64>()?;
        factors.push((f_in, f_out));
    }
    net.set_noise_factors(&factors)
}

impl Agent {
    /// Saves the agent to `dir` (created if missing); with `with_replay`, the replay buffer
    /// too (without it, a loaded agent starts from an empty replay). See the module docs.
    pub fn save(&self, dir: impl AsRef<Path>, with_replay: bool) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let learner = &self.learner;

        let mut tensors = HashMap::new();
        net_tensors("online", learner.online(), &mut tensors)?;
        net_tensors("target", learner.target(), &mut tensors)?;
        let names: Vec<String> = learner.online().named_vars().into_iter().map(|(n, _)| n).collect();
        let (m, v) = learner.adam().moments();
        for ((name, m), v) in names.iter().zip(m).zip(v) {
            tensors.insert(format!("adam.m.{name}"), m.as_tensor().to_device(&Device::Cpu)?);
            tensors.insert(format!("adam.v.{name}"), v.as_tensor().to_device(&Device::Cpu)?);
        }
        tensors.insert("adam.step".into(), Tensor::new(&[learner.adam().step_count() as i64], &Device::Cpu)?);
        let tensor_path = dir.join(TENSORS);
        // candle writes the file itself, so the atomic rename wraps its path.
        let tmp = tmp_path(&tensor_path);
        candle_core::safetensors::save(&tensors, &tmp)
            .map_err(|e| Error::checkpoint(&tmp, format!("writing tensors: {e}")))?;
        std::fs::rename(&tmp, &tensor_path).map_err(|e| Error::io(&tensor_path, e))?;

        if with_replay {
            write_atomic(&dir.join(REPLAY), |w| learner.replay().save_snapshot(w))?;
        }

        let manifest = Manifest {
            format_version: CHECKPOINT_FORMAT_VERSION,
            config: self.config().clone(),
            obs_spec: self.obs_spec().into(),
            num_actions: self.num_actions(),
            num_envs: self.num_envs(),
            counters: self.counters(),
            learner_updates: learner.updates,
            learner_step: learner.step,
            rng: RngStates {
                noise: RngState::of(&learner.noise_rng),
                sample: RngState::of(&learner.sample_rng),
                explore: RngState::of(self.explorer.rng()),
            },
            repeats: self.explorer.repeats().to_vec(),
            tensors: TENSORS.into(),
            replay: with_replay.then(|| REPLAY.to_string()),
        };
        let json = serde_json::to_string_pretty(&manifest).expect("the manifest is plain data");
        write_atomic(&dir.join(MANIFEST), |w| w.write_all(json.as_bytes()))
    }

    /// Loads an agent saved with [`Agent::save`], on the device its config names. Its
    /// regulariser is the default; set another with [`Agent::set_regularizer`].
    pub fn load(dir: impl AsRef<Path>) -> Result<Agent> {
        Self::load_with(dir.as_ref(), true)
    }

    /// [`Agent::load`] with an empty replay even when the checkpoint holds one: for an agent
    /// that only acts (evaluation), which need not read gigabytes it will not sample.
    pub fn load_without_replay(dir: impl AsRef<Path>) -> Result<Agent> {
        Self::load_with(dir.as_ref(), false)
    }

    fn load_with(dir: &Path, with_replay: bool) -> Result<Agent> {
        let manifest_path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::checkpoint(&manifest_path, format!("not a checkpoint manifest: {e}")))?;
        if manifest.format_version != CHECKPOINT_FORMAT_VERSION {
            return Err(Error::checkpoint(
                &manifest_path,
                format!(
                    "format version {} cannot be read by this build (version {CHECKPOINT_FORMAT_VERSION})",
                    manifest.format_version
                ),
            ));
        }
        let spec = ObsSpec::from(&manifest.obs_spec);
        let mut agent = Agent::new(manifest.config.clone(), &spec, manifest.num_actions, manifest.num_envs)?;

        let tensor_path: PathBuf = dir.join(&manifest.tensors);
        let device = agent.learner.device().clone();
        let mut tensors = candle_core::safetensors::load(&tensor_path, &Device::Cpu)
            .map_err(|e| Error::checkpoint(&tensor_path, format!("reading tensors: {e}")))?;
        let learner = &mut agent.learner;
        restore_net("online", learner.online_mut(), &mut tensors, &tensor_path)?;
        restore_net("target", learner.target_mut(), &mut tensors, &tensor_path)?;
        let names: Vec<String> = learner.online().named_vars().into_iter().map(|(n, _)| n).collect();
        let mut m = Vec::new();
        let mut v = Vec::new();
        for name in &names {
            m.push(take(&mut tensors, &format!("adam.m.{name}"), &tensor_path)?.to_device(&device)?);
            v.push(take(&mut tensors, &format!("adam.v.{name}"), &tensor_path)?.to_device(&device)?);
        }
        let step = take(&mut tensors, "adam.step", &tensor_path)?.to_dtype(DType::I64)?.to_vec1::<i64>()?;
        let step = *step.first().ok_or_else(|| Error::checkpoint(&tensor_path, "adam.step is empty"))?;
        learner.adam_mut().set_state(&m, &v, step as u64)?;
        if let Some(extra) = tensors.keys().next() {
            return Err(Error::checkpoint(
                &tensor_path,
                format!("unexpected tensor {extra}: saved by another network?"),
            ));
        }
        learner.updates = manifest.learner_updates;
        learner.step = manifest.learner_step;
        learner.noise_rng = manifest.rng.noise.restore(&manifest_path)?;
        learner.sample_rng = manifest.rng.sample.restore(&manifest_path)?;
        if let Some(replay) = manifest.replay.as_ref().filter(|_| with_replay) {
            let path = dir.join(replay);
            let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
            learner.replay_mut().load_snapshot(&mut BufReader::new(file))?;
        }
        let explore = manifest.rng.explore.restore(&manifest_path)?;
        agent.explorer.restore(explore, manifest.repeats)?;
        agent.counters = manifest.counters;
        Ok(agent)
    }
}
