//! MASP's whole state in a folder, for checkpoints ([`crate::Masp::save_state`] and
//! [`crate::Masp::load_state`]): a loaded `Masp` goes on exactly as the saved one would have
//! (bit-identical `S` on the CPU), with the same `meta_interval` phase and Adam's bias
//! correction where it was.
//!
//! Files in the folder:
//! * `similarity.json` and `similarity.safetensors`: `S`, `(A, A)`, with its actions'
//!   identities, in transfer's format ([`crate::SavedSimilarity`]), so `masp analyze` and
//!   `init_file` read a checkpoint's `S` like any saved one;
//! * `masp_state.safetensors` (Adam only): Adam's moments of `S`, `adam.m` and `adam.v`,
//!   `(A, A)` in `S`'s dtype;
//! * `masp_state.json`: the format and version, the counters `updates` and `meta_steps`,
//!   and the meta optimiser (`{"kind": "adam", "step": t, "moments": ...}` or
//!   `{"kind": "plain"}`). Written last: it names the rest.
//!
//! The network, its optimiser and the replay are the agent's to save (rainbow's
//! checkpoint); the scratch copy of theta that the meta step reuses is rebuilt on the first
//! meta step and is not state.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::learned_similarity::Similarity;
use crate::optimizer::AdamState;
use crate::transfer::SavedSimilarity;

/// The header's file name in a state folder.
pub const MASP_STATE_FILE: &str = "masp_state.json";
/// `S`'s header in a state folder (transfer's format).
pub const STATE_SIMILARITY_FILE: &str = "similarity.json";
/// The header's `format` field.
pub const MASP_STATE_FORMAT: &str = "masp-state";
/// The header version this build writes and reads.
pub const MASP_STATE_FORMAT_VERSION: u32 = 1;
const MOMENTS_FILE: &str = "masp_state.safetensors";
const M_NAME: &str = "adam.m";
const V_NAME: &str = "adam.v";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    /// Agent updates counted (`Masp::updates`): the `meta_interval` phase.
    updates: u64,
    meta_steps: u64,
    /// `S`'s header, relative to this one's folder.
    similarity: String,
    optimizer: SavedOptimizer,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum SavedOptimizer {
    Plain,
    Adam {
        /// `t`, the steps taken (Adam's bias correction).
        step: u64,
        /// The moments' safetensors file, relative to the header's folder.
        moments: String,
    },
}

/// What [`save`] writes and [`load`] reads besides `S`.
pub(crate) struct Counters {
    pub updates: u64,
    pub meta_steps: u64,
}

/// Writes `S` (rows `ids`), `adam` and `counters` into `dir` (created if missing).
pub(crate) fn save(
    dir: &Path,
    ids: &[String],
    similarity: &Similarity,
    adam: Option<&AdamState>,
    counters: &Counters,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    similarity.save(ids, dir.join(STATE_SIMILARITY_FILE))?;
    let optimizer = match adam {
        None => SavedOptimizer::Plain,
        Some(adam) => {
            let path = dir.join(MOMENTS_FILE);
            let tensors = HashMap::from([(M_NAME, adam.m.clone()), (V_NAME, adam.v.clone())]);
            candle_core::safetensors::save(&tensors, &path)
                .map_err(|e| Error::format(&path, format!("cannot write Adam's moments: {e}")))?;
            SavedOptimizer::Adam { step: adam.step, moments: MOMENTS_FILE.into() }
        }
    };
    let header = Header {
        format: MASP_STATE_FORMAT.into(),
        version: MASP_STATE_FORMAT_VERSION,
        updates: counters.updates,
        meta_steps: counters.meta_steps,
        similarity: STATE_SIMILARITY_FILE.into(),
        optimizer,
    };
    let path = dir.join(MASP_STATE_FILE);
    let text = serde_json::to_string_pretty(&header).expect("the header serialises");
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))
}

/// What [`load`] read.
pub(crate) struct Loaded {
    pub similarity: Similarity,
    /// `None` when the state was saved with plain descent.
    pub adam: Option<AdamState>,
    pub counters: Counters,
}

/// Reads the state in `dir` for an agent whose actions are `ids` (in its output order) and
/// whose `S` is `dtype` on `device`. Fails naming the file unless the saved `S` has exactly
/// these identities in this order and this dtype (a checkpoint resumes the same run; a
/// different pool takes `init_file`, which aligns by identity).
pub(crate) fn load(dir: &Path, ids: &[String], dtype: DType, device: &Device) -> Result<Loaded> {
    let path = dir.join(MASP_STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let header: Header = serde_json::from_str(&text)
        .map_err(|e| Error::format(&path, format!("not a MASP state header: {e}")))?;
    if header.format != MASP_STATE_FORMAT || header.version != MASP_STATE_FORMAT_VERSION {
        return Err(Error::format(
            &path,
            format!(
                "format `{}` version {} is not supported: this build reads `{MASP_STATE_FORMAT}` version \
                 {MASP_STATE_FORMAT_VERSION}",
                header.format, header.version
            ),
        ));
    }
    let s_path = dir.join(&header.similarity);
    let saved = SavedSimilarity::load(&s_path, device)?;
    if saved.ids() != ids {
        return Err(Error::format(
            &s_path,
            format!(
                "S is over {} actions that are not this agent's {} in the same order; resume with the \
                 run's own pool (to start from another run's S, use init_file)",
                saved.ids().len(),
                ids.len()
            ),
        ));
    }
    if saved.matrix().dtype() != dtype {
        return Err(Error::DType {
            what: format!("the S saved in {}", s_path.display()),
            expected: dtype,
            got: saved.matrix().dtype(),
        });
    }
    let similarity = saved.to_similarity(dtype)?;
    let adam = match header.optimizer {
        SavedOptimizer::Plain => None,
        SavedOptimizer::Adam { step, moments } => {
            let m_path = dir.join(moments);
            let mut tensors = candle_core::safetensors::load(&m_path, device)
                .map_err(|e| Error::format(&m_path, format!("cannot read Adam's moments: {e}")))?;
            let mut moment = |name: &str| -> Result<Tensor> {
                let t = tensors
                    .remove(name)
                    .ok_or_else(|| Error::format(&m_path, format!("holds no tensor named `{name}`")))?;
                if t.dims() != similarity.tensor().dims() || t.dtype() != dtype {
                    return Err(Error::format(
                        &m_path,
                        format!(
                            "`{name}` is {:?} {:?}, S is {:?} {dtype:?}",
                            t.dims(),
                            t.dtype(),
                            similarity.tensor().dims()
                        ),
                    ));
                }
                Ok(t)
            };
            Some(AdamState { m: moment(M_NAME)?, v: moment(V_NAME)?, step })
        }
    };
    Ok(Loaded {
        similarity,
        adam,
        counters: Counters { updates: header.updates, meta_steps: header.meta_steps },
    })
}
