//! Saving `S` with its actions' identities, and loading it into another pool by aligning on
//! them (docs/method.md, section 7).
//!
//! A saved `S` is two files side by side: a JSON header (`similarity.json`) that lists the
//! action identities in row order (plain strings such as `UP+UP+FIRE`: the macro-actions
//! crate's names) and names the matrix file, and a safetensors file
//! (`similarity.safetensors`) that holds the `(A, A)` matrix in its own dtype under the
//! name `similarity`. The header is readable by eye; the matrix round-trips bit for bit.
//!
//! Loading into a pool aligns rows and columns by identity: entry `(i, j)` of the result is
//! the saved entry for the same two identities where the file knows both, and the target
//! pool's configured initialisation otherwise. [`Alignment`] says how many rows matched.
//!
//! ```
//! use candle_core::{DType, Device};
//! use masp::{SavedSimilarity, Similarity};
//! let dir = std::env::temp_dir().join(format!("masp-doc-transfer-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let ids = ["LEFT", "RIGHT", "RIGHT+RIGHT"].map(String::from);
//! let s = Similarity::from_values(&[1.0, 0.2, 0.7, 0.2, 1.0, 0.4, 0.7, 0.4, 1.0], 3, DType::F32, &Device::Cpu)?;
//! s.save(&ids, dir.join("similarity.json"))?;
//!
//! // Another game's pool: RIGHT+RIGHT is known, FIRE is new and starts from its own init.
//! let target = ["RIGHT+RIGHT", "FIRE", "RIGHT"].map(String::from);
//! let base = Similarity::uniform(3, 0.05, DType::F32, &Device::Cpu)?;
//! let saved = SavedSimilarity::load(dir.join("similarity.json"), &Device::Cpu)?;
//! let (moved, alignment) = saved.align_onto(&target, &base)?;
//! assert_eq!((alignment.matched, alignment.unknown.as_slice()), (2, &["FIRE".to_string()][..]));
//! assert_eq!(moved.to_vec()?, [1.0, 0.05, 0.4, 0.05, 1.0, 0.05, 0.4, 0.05, 1.0]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), masp::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::learned_similarity::Similarity;

/// The header's `format` field.
pub const SIMILARITY_FORMAT: &str = "masp-similarity";
/// The header version this build writes and reads.
pub const SIMILARITY_FORMAT_VERSION: u32 = 1;
/// The matrix's name inside the safetensors file.
const TENSOR_NAME: &str = "similarity";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    /// The safetensors file, relative to the header's folder.
    matrix: String,
    /// Row (and column) identities, in order.
    ids: Vec<String>,
}

/// A similarity matrix read from disk, with the identities of its rows.
#[derive(Clone, Debug)]
pub struct SavedSimilarity {
    ids: Vec<String>,
    /// `(A, A)`, in the dtype it was saved in.
    matrix: Tensor,
}

/// How a saved `S` met a target pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alignment {
    /// Target actions the file knows: their rows (and columns) came from the file.
    pub matched: usize,
    /// Actions in the target pool.
    pub total: usize,
    /// Target actions the file does not know, in target order: they kept the
    /// initialisation.
    pub unknown: Vec<String>,
    /// Saved actions the target pool does not have.
    pub dropped: usize,
}

impl fmt::Display for Alignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} actions matched the saved S; {} took the configured initialisation; {} saved actions are not in this pool",
            self.matched,
            self.total,
            self.unknown.len(),
            self.dropped
        )
    }
}

impl Similarity {
    /// Writes `S` with its row identities `ids`: the JSON header at `path` (e.g.
    /// `run/similarity.json`) and the matrix beside it with the extension `.safetensors`.
    /// Returns the matrix file's path.
    pub fn save(&self, ids: &[String], path: impl AsRef<Path>) -> Result<PathBuf> {
        let path = path.as_ref();
        check_ids(ids, self.num_actions()).map_err(|reason| Error::format(path, reason))?;
        let matrix_path = path.with_extension("safetensors");
        if matrix_path == path {
            return Err(Error::format(
                path,
                "name the JSON header (e.g. similarity.json), not the matrix file",
            ));
        }
        let file_name = matrix_path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::format(path, "the header's file name is not valid UTF-8"))?
            .to_string();
        let header = Header {
            format: SIMILARITY_FORMAT.into(),
            version: SIMILARITY_FORMAT_VERSION,
            matrix: file_name,
            ids: ids.to_vec(),
        };
        let tensors = HashMap::from([(TENSOR_NAME, self.tensor())]);
        candle_core::safetensors::save(&tensors, &matrix_path)
            .map_err(|e| Error::format(&matrix_path, format!("cannot write the matrix: {e}")))?;
        let text = serde_json::to_string_pretty(&header).expect("the header serialises");
        std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))?;
        Ok(matrix_path)
    }
}

impl SavedSimilarity {
    /// Reads the header at `path` and the matrix it names, onto `device`. Fails naming the
    /// file unless the header's format and version are this build's, the identities are
    /// distinct, and the matrix is `(A, A)` of finite values for `A` identities.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let header: Header = serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not a similarity header: {e}")))?;
        if header.format != SIMILARITY_FORMAT {
            return Err(Error::format(
                path,
                format!("format `{}` is not `{SIMILARITY_FORMAT}`", header.format),
            ));
        }
        if header.version != SIMILARITY_FORMAT_VERSION {
            return Err(Error::format(
                path,
                format!(
                    "version {} is not supported: this build reads version {SIMILARITY_FORMAT_VERSION}",
                    header.version
                ),
            ));
        }
        let a = header.ids.len();
        check_ids(&header.ids, a).map_err(|reason| Error::format(path, reason))?;
        let matrix_path = path.parent().unwrap_or(Path::new("")).join(&header.matrix);
        if !matrix_path.exists() {
            return Err(Error::io(&matrix_path, std::io::Error::from(std::io::ErrorKind::NotFound)));
        }
        let mut tensors = candle_core::safetensors::load(&matrix_path, device)
            .map_err(|e| Error::format(&matrix_path, format!("cannot read the matrix: {e}")))?;
        let matrix = tensors
            .remove(TENSOR_NAME)
            .ok_or_else(|| Error::format(&matrix_path, format!("holds no tensor named `{TENSOR_NAME}`")))?;
        if matrix.dims() != [a, a] {
            return Err(Error::format(
                &matrix_path,
                format!("the matrix has shape {:?}, but the header lists {a} actions", matrix.dims()),
            ));
        }
        // Validates the values (finite) through the same path as every other matrix.
        Similarity::from_tensor(&matrix).map_err(|e| Error::format(&matrix_path, e.to_string()))?;
        Ok(Self { ids: header.ids, matrix })
    }

    /// The row identities, in order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The matrix as saved, `(A, A)`.
    pub fn matrix(&self) -> &Tensor {
        &self.matrix
    }

    /// The saved `S` in its own row order, in `dtype`.
    pub fn to_similarity(&self, dtype: DType) -> Result<Similarity> {
        Similarity::from_tensor(&self.matrix.to_dtype(dtype)?)
    }

    /// The saved `S` moved onto the actions `target_ids`, in their order: where the file
    /// knows both identities of an entry, its value; elsewhere `base`'s (the target pool's
    /// configured initialisation, `(A_target, A_target)`). The result has `base`'s dtype and
    /// device. Values saved in `base`'s dtype are copied exactly.
    pub fn align_onto(&self, target_ids: &[String], base: &Similarity) -> Result<(Similarity, Alignment)> {
        let n = target_ids.len();
        if base.num_actions() != n {
            return Err(Error::Shape {
                what: "the base initialisation".into(),
                expected: format!("({n}, {n}) for {n} target actions"),
                got: base.tensor().dims().to_vec(),
            });
        }
        check_ids(target_ids, n).map_err(Error::matrix)?;
        let here: HashMap<&str, usize> =
            self.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let source: Vec<Option<usize>> = target_ids.iter().map(|id| here.get(id.as_str()).copied()).collect();
        // f32 and f64 values both survive the round trip through f64 exactly.
        let saved = self.matrix.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let mut values = base.tensor().to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        for (i, si) in source.iter().enumerate() {
            let Some(si) = si else { continue };
            for (j, sj) in source.iter().enumerate() {
                if let Some(sj) = sj {
                    values[i * n + j] = saved[*si][*sj];
                }
            }
        }
        let matrix = Tensor::from_vec(values, (n, n), base.device())?.to_dtype(base.dtype())?;
        let matched = source.iter().filter(|s| s.is_some()).count();
        let unknown =
            target_ids.iter().zip(&source).filter(|(_, s)| s.is_none()).map(|(id, _)| id.clone()).collect();
        let wanted: HashSet<&str> = target_ids.iter().map(String::as_str).collect();
        let dropped = self.ids.iter().filter(|id| !wanted.contains(id.as_str())).count();
        Ok((Similarity::from_tensor(&matrix)?, Alignment { matched, total: n, unknown, dropped }))
    }
}

/// `ids` must be `a` distinct, non-empty identities.
fn check_ids(ids: &[String], a: usize) -> std::result::Result<(), String> {
    if ids.len() != a {
        return Err(format!("{} identities for {a} actions", ids.len()));
    }
    let mut seen = HashMap::with_capacity(a);
    for (i, id) in ids.iter().enumerate() {
        if id.is_empty() {
            return Err(format!("action {i} has an empty identity"));
        }
        if let Some(first) = seen.insert(id.as_str(), i) {
            return Err(format!("identity `{id}` names actions {first} and {i}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: Device = Device::Cpu;

    /// A fresh folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("masp-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| if i < 3 { format!("P{i}") } else { format!("P{}+P{}+P1", i % 3, (i / 3) % 3) })
            .collect()
    }

    /// A valid S with distinct, awkward values (not representable in few bits).
    fn learned(n: usize, dtype: DType) -> Similarity {
        let values: Vec<f32> = (0..n * n).map(|k| ((k * 7919) % 1000) as f32 / 997.0).collect();
        Similarity::from_values(&values, n, dtype, &CPU).unwrap()
    }

    #[test]
    fn round_trips_bit_for_bit_in_both_dtypes() {
        let dir = TempDir::new("roundtrip");
        for dtype in [DType::F32, DType::F64] {
            let s = learned(9, dtype);
            let header = dir.0.join(format!("s-{dtype:?}.json"));
            let matrix = s.save(&ids(9), &header).unwrap();
            assert_eq!(matrix, header.with_extension("safetensors"));
            let text = std::fs::read_to_string(&header).unwrap();
            assert!(text.contains("\"P0+P1+P1\""), "identities are plain strings:\n{text}");
            let loaded = SavedSimilarity::load(&header, &CPU).unwrap();
            assert_eq!(loaded.ids(), ids(9));
            assert_eq!(loaded.matrix().dtype(), dtype);
            let back = loaded.to_similarity(dtype).unwrap();
            let (a, b) =
                (s.tensor().to_dtype(DType::F64).unwrap(), back.tensor().to_dtype(DType::F64).unwrap());
            assert_eq!(a.to_vec2::<f64>().unwrap(), b.to_vec2::<f64>().unwrap());
        }
    }

    #[test]
    fn alignment_after_a_shuffle_restores_s_exactly() {
        let dir = TempDir::new("shuffle");
        let n = 11;
        let s = learned(n, DType::F32);
        s.save(&ids(n), dir.0.join("similarity.json")).unwrap();
        // A fixed permutation with no fixed point structure worth exploiting.
        let perm: Vec<usize> = (0..n).map(|i| (i * 4 + 3) % n).collect();
        let shuffled: Vec<String> = perm.iter().map(|&k| ids(n)[k].clone()).collect();
        let base = Similarity::half_self_weight(n, DType::F32, &CPU).unwrap();
        let saved = SavedSimilarity::load(dir.0.join("similarity.json"), &CPU).unwrap();
        let (moved, alignment) = saved.align_onto(&shuffled, &base).unwrap();
        assert_eq!(alignment, Alignment { matched: n, total: n, unknown: vec![], dropped: 0 });
        let (orig, moved) = (s.to_vec().unwrap(), moved.to_vec().unwrap());
        for i in 0..n {
            for j in 0..n {
                // Row i of the shuffled pool is action perm[i] of the saved one.
                assert_eq!(moved[i * n + j].to_bits(), orig[perm[i] * n + perm[j]].to_bits(), "({i}, {j})");
            }
        }
    }

    #[test]
    fn unknown_actions_keep_the_initialisation() {
        let dir = TempDir::new("unknown");
        let s = learned(5, DType::F64);
        s.save(&ids(5), dir.0.join("s.json")).unwrap();
        let target: Vec<String> = vec!["NEW".into(), ids(5)[4].clone(), ids(5)[0].clone(), "OTHER".into()];
        let base = Similarity::uniform(4, 0.125, DType::F64, &CPU).unwrap();
        let (moved, a) =
            SavedSimilarity::load(dir.0.join("s.json"), &CPU).unwrap().align_onto(&target, &base).unwrap();
        assert_eq!((a.matched, a.total, a.dropped), (2, 4, 3));
        assert_eq!(a.unknown, ["NEW", "OTHER"]);
        assert!(a.to_string().starts_with("2 of 4 actions matched"), "{a}");
        let m = moved.tensor().to_vec2::<f64>().unwrap();
        assert_eq!(m[1][2], s.get(4, 0).unwrap());
        assert_eq!((m[0][1], m[0][3], m[3][2], m[0][0]), (0.125, 0.125, 0.125, 1.0));
    }

    #[test]
    fn refuses_bad_files_naming_them() {
        let dir = TempDir::new("bad");
        let s = learned(3, DType::F32);
        let dup = vec!["A".to_string(), "B".into(), "A".into()];
        let err = s.save(&dup, dir.0.join("dup.json")).unwrap_err();
        assert!(err.to_string().contains("identity `A` names actions 0 and 2"), "{err}");
        assert!(s.save(&ids(3), dir.0.join("x.safetensors")).is_err());

        s.save(&ids(3), dir.0.join("ok.json")).unwrap();
        let text = std::fs::read_to_string(dir.0.join("ok.json")).unwrap();
        std::fs::write(dir.0.join("v2.json"), text.replace("\"version\": 1", "\"version\": 2")).unwrap();
        let err = SavedSimilarity::load(dir.0.join("v2.json"), &CPU).unwrap_err();
        assert!(err.to_string().contains("v2.json: version 2 is not supported"), "{err}");
        std::fs::write(dir.0.join("short.json"), text.replace("\"P2\"", "\"P2\", \"P3\"")).unwrap();
        let err = SavedSimilarity::load(dir.0.join("short.json"), &CPU).unwrap_err();
        assert!(err.to_string().contains("the header lists 4 actions"), "{err}");
        std::fs::remove_file(dir.0.join("ok.safetensors")).unwrap();
        assert!(matches!(SavedSimilarity::load(dir.0.join("ok.json"), &CPU), Err(Error::Io { .. })));
        assert!(matches!(SavedSimilarity::load(dir.0.join("missing.json"), &CPU), Err(Error::Io { .. })));
    }
}
