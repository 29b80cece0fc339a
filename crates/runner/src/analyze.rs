//! `masp analyze`: what a run's meta-learned `S` says about its actions (docs/method.md, section 7).
//!
//! Input: a run folder (its checkpoint's `similarity.json`), a checkpoint folder, or a saved
//! `S` header ([`masp::SavedSimilarity`]). The actions' primitive sequences come from the
//! saved identities themselves: a macro's identity is its primitives' names joined by `+`,
//! so no config is needed. Output, in `--out` (default: `analysis/` in the run folder, or
//! beside a saved `S` that is not a checkpoint's):
//!
//! ```text
//! similarity.png   heatmap of S, (A, A): primitives first (by hidden group for the grouped
//!                  bandit), then the macros (by net move for the corridor, else by name);
//!                  white at the smallest off-diagonal entry to dark blue at the largest;
//!                  axes named and the colour bar numbered when a font is found
//! analysis.md      S's statistics, Spearman vs edit distance, the env's own reference where
//!                  it has one (hidden groups; the corridor's effect distance), the top-k
//!                  pairs (also printed)
//! analysis.json    the same numbers, for scripts
//! ```
//!
//! ```no_run
//! use masp_runner::{analyze, AnalyzeOptions};
//! let a = analyze("runs/corridor__masp__0__20261125T190205".as_ref(), &AnalyzeOptions::default())?;
//! println!("{}", a.to_markdown());
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use macro_actions::{edit_distance, ActionPool, MacroSpec, NAME_SEPARATOR};
use masp::{
    group_separation, heatmap_png, spearman, top_pairs, ActionGroup, AxisLabels, GroupSeparation,
    HeatmapLayout, HeatmapStyle, SavedSimilarity, SimilarityStats,
};

use crate::compose::SIMILARITY_FILE;
use crate::config::RunConfig;
use crate::effects::EnvReference;
use crate::{font, run_dir};

/// The files `analyze` writes into its output folder.
const HEATMAP_FILE: &str = "similarity.png";
const REPORT_FILE: &str = "analysis.md";
const REPORT_JSON_FILE: &str = "analysis.json";

/// What `analyze` needs besides its input.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    /// How many of the most similar pairs to list.
    pub top_k: usize,
    /// Output folder; `None`: `analysis/` in the run folder when `S` is a checkpoint's, else
    /// beside the saved `S`.
    pub out: Option<PathBuf>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self { top_k: 10, out: None }
    }
}

/// One of the most similar pairs of actions.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyzedPair {
    pub name_a: String,
    pub name_b: String,
    pub similarity: f32,
    /// Levenshtein distance between the two primitive sequences.
    pub edit_distance: usize,
}

/// The analysis of one `S`, and where its files went.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The `similarity.json` read.
    pub source: PathBuf,
    /// Environment frames the run had trained when `S` was saved (runs only).
    pub frames: Option<u64>,
    pub num_actions: usize,
    pub num_primitives: usize,
    pub stats: SimilarityStats,
    /// Spearman's rank correlation between `S` and the edit distance of the actions'
    /// primitive sequences, over all `A (A - 1) / 2` pairs (primitives are sequences of
    /// one); negative when similar sequences get similar rows. `None` when undefined (e.g.
    /// `S` uniform). The paper reports about -0.41.
    pub spearman_edit_distance: Option<f64>,
    /// For an env whose actions fall into groups of identical effect (`grouped_bandit`):
    /// how well `S` separates same-group pairs from the rest (primitives only).
    pub group_separation: Option<GroupSeparation>,
    /// For the corridor: Spearman's rank correlation between `S` and the actions' effect
    /// distance, the mean over start cells of how many cells apart the two actions end
    /// (see `effects::effect_distance`); negative when actions of like effect get like rows.
    pub spearman_effect_distance: Option<f64>,
    /// Most similar first.
    pub top_pairs: Vec<AnalyzedPair>,
    pub heatmap: PathBuf,
    /// The values the heatmap draws white and dark blue ([`HeatmapStyle::off_diagonal`]).
    pub heatmap_range: (f32, f32),
    /// Where its cells, blocks and labels landed (its axes name the actions, the blocks, or
    /// nothing when no font was found).
    pub heatmap_layout: HeatmapLayout,
    pub report: PathBuf,
}

/// Analyses the `S` of `input` (a run folder, a checkpoint folder or a `similarity.json`)
/// and writes the heatmap and the report; see the module docs.
pub fn analyze(input: &Path, options: &AnalyzeOptions) -> Result<Analysis> {
    let (source, frames) = locate_similarity(input)?;
    let saved = SavedSimilarity::load(&source, &Device::Cpu)
        .with_context(|| format!("reading S from {}", source.display()))?;
    let s = saved.to_similarity(DType::F32)?;
    let ids = saved.ids();
    let pool = pool_of(ids).with_context(|| format!("the action identities of {}", source.display()))?;

    // (A, A) row-major, the layout `spearman` takes.
    let a = ids.len();
    let mut distance = vec![0f32; a * a];
    for i in 0..a {
        for j in 0..a {
            distance[i * a + j] = edit_distance(pool.actions(i), pool.actions(j)) as f32;
        }
    }

    let out = match &options.out {
        Some(out) => out.clone(),
        None => default_out(&source),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let heatmap = out.join(HEATMAP_FILE);
    let reference = env_reference(&source, &pool)?;
    let groups = match &reference {
        Some(EnvReference::Groups(groups)) => by_hidden_group(groups, ids),
        Some(EnvReference::Corridor { moves, .. }) => by_net_move(moves, ids, pool.num_primitives()),
        None => ActionGroup::primitives_then_macros(ids, pool.num_primitives()),
    };
    let style = HeatmapStyle::off_diagonal(&s, font::loaded())?;
    let layout = heatmap_png(&s, ids, &groups, &style, &heatmap)?;

    let top_pairs = top_pairs(&s, ids, options.top_k)?
        .into_iter()
        .map(|p| AnalyzedPair {
            edit_distance: distance[p.a * a + p.b] as usize,
            name_a: p.name_a,
            name_b: p.name_b,
            similarity: p.similarity,
        })
        .collect();
    let analysis = Analysis {
        frames,
        num_actions: a,
        num_primitives: pool.num_primitives(),
        stats: s.stats()?,
        spearman_edit_distance: spearman(&s, &distance)?,
        group_separation: match &reference {
            Some(EnvReference::Groups(groups)) => group_separation(&s, groups)?,
            _ => None,
        },
        spearman_effect_distance: match &reference {
            Some(EnvReference::Corridor { distance, .. }) => spearman(&s, distance)?,
            _ => None,
        },
        top_pairs,
        heatmap,
        heatmap_range: style.range,
        heatmap_layout: layout,
        report: out.join(REPORT_FILE),
        source,
    };
    std::fs::write(&analysis.report, analysis.to_markdown())
        .with_context(|| format!("writing {}", analysis.report.display()))?;
    run_dir::write_json(&out.join(REPORT_JSON_FILE), &analysis.to_json())?;
    Ok(analysis)
}

/// The `similarity.json` that `input` names, and the frames trained when it was saved.
fn locate_similarity(input: &Path) -> Result<(PathBuf, Option<u64>)> {
    if input.is_file() {
        // A checkpoint's file still knows its frames.
        let frames = input.parent().and_then(|dir| run_dir::read_state(dir).ok()).map(|s| s.frames);
        return Ok((input.to_path_buf(), frames));
    }
    if !input.is_dir() {
        bail!("{} does not exist: give a run folder or a saved S (similarity.json)", input.display());
    }
    // A checkpoint folder given directly, or a run folder's checkpoint.
    let checkpoint = if input.join(SIMILARITY_FILE).exists() || input.join(run_dir::STATE).exists() {
        input.to_path_buf()
    } else {
        run_dir::find_checkpoint(input)?
    };
    let frames = run_dir::read_state(&checkpoint).ok().map(|s| s.frames);
    let source = checkpoint.join(SIMILARITY_FILE);
    if source.exists() {
        return Ok((source, frames));
    }
    // No S: say why, from the run's config when there is one. Only `masp.enabled` is read:
    // loading the whole config would check an Atari run's ROM, which analysis does not need.
    let config_path = checkpoint.parent().unwrap_or(&checkpoint).join(run_dir::CONFIG);
    let masp_enabled = std::fs::read_to_string(&config_path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| t.get("masp")?.get("enabled")?.as_bool());
    match masp_enabled {
        Some(false) => bail!(
            "{} has no S to analyse: the run had MASP disabled (masp.enabled = false in {}); train with \
             MASP on (e.g. --config configs/agents/masp.toml, or --set masp.enabled=true)",
            input.display(),
            config_path.display()
        ),
        _ => bail!(
            "{} has no {SIMILARITY_FILE}: the run has not written a checkpoint with S yet (is it still \
             starting, or was MASP disabled?); wait for its first checkpoint, or give the path of a saved \
             S directly",
            checkpoint.display()
        ),
    }
}

/// The reference of the run's env ([`EnvReference::of`]), read from the run's `config.toml`
/// beside the checkpoint; `None` for other envs or a file outside a run.
fn env_reference(source: &Path, pool: &ActionPool) -> Result<Option<EnvReference>> {
    let Some(run) = source.parent().and_then(Path::parent) else { return Ok(None) };
    let path = run.join(run_dir::CONFIG);
    // Only the kind first: resolving an Atari run's config would look for its ROM.
    let kind = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| Some(t.get("env")?.get("kind")?.as_str()?.to_string()));
    if !matches!(kind.as_deref(), Some("grouped_bandit" | "corridor")) {
        return Ok(None);
    }
    EnvReference::of(&RunConfig::read_resolved(&path)?.env, pool).with_context(|| path.display().to_string())
}

/// The heatmap's order for hidden groups: each group's actions (`group 0`, `group 1`, ...),
/// then the actions of no group (the macros) sorted by name.
fn by_hidden_group(groups: &[Option<usize>], ids: &[String]) -> Vec<ActionGroup> {
    let count = groups.iter().flatten().max().map_or(0, |g| g + 1);
    let mut drawn: Vec<ActionGroup> = (0..count)
        .map(|g| ActionGroup {
            name: format!("group {g}"),
            actions: (0..groups.len()).filter(|&i| groups[i] == Some(g)).collect(),
        })
        .collect();
    let mut rest: Vec<usize> = (0..groups.len()).filter(|&i| groups[i].is_none()).collect();
    rest.sort_by(|&x, &y| ids[x].cmp(&ids[y]));
    drawn.push(ActionGroup { name: "macros".into(), actions: rest });
    drawn.retain(|g| !g.actions.is_empty());
    drawn
}

/// The heatmap's order for the corridor: the primitives, then the macros in blocks of
/// equal net move (`move -2`, `move +3`, ...), ascending, each block sorted by name.
fn by_net_move(moves: &[i64], ids: &[String], num_primitives: usize) -> Vec<ActionGroup> {
    let mut macros: Vec<usize> = (num_primitives..ids.len()).collect();
    macros.sort_by(|&x, &y| moves[x].cmp(&moves[y]).then_with(|| ids[x].cmp(&ids[y])));
    let mut drawn = vec![ActionGroup { name: "primitives".into(), actions: (0..num_primitives).collect() }];
    for chunk in macros.chunk_by(|&x, &y| moves[x] == moves[y]) {
        drawn.push(ActionGroup { name: format!("move {:+}", moves[chunk[0]]), actions: chunk.to_vec() });
    }
    drawn.retain(|g| !g.actions.is_empty());
    drawn
}

/// `analysis/` beside the saved `S`, or in its run folder when it is a checkpoint's (a
/// checkpoint folder is replaced at every save, which would delete the analysis).
fn default_out(source: &Path) -> PathBuf {
    let dir = source.parent().unwrap_or(Path::new("."));
    let base = if dir.join(run_dir::STATE).exists() { dir.parent().unwrap_or(dir) } else { dir };
    base.join("analysis")
}

/// The pool that the saved identities denote, in their order: the primitives are the
/// identities without `+` (a pool lists them first), each macro's name is its primitives'
/// names joined by `+`.
pub(crate) fn pool_of(ids: &[String]) -> Result<ActionPool> {
    let num_primitives = ids.iter().take_while(|id| !id.contains(NAME_SEPARATOR)).count();
    let (primitives, macros) = ids.split_at(num_primitives);
    if let Some(late) = macros.iter().find(|id| !id.contains(NAME_SEPARATOR)) {
        bail!("`{late}` looks like a primitive but comes after a macro: S's rows are not in a pool's order");
    }
    let macros = macros
        .iter()
        .enumerate()
        .map(|(entry, id)| MacroSpec::Name(id.clone()).resolve(entry, primitives))
        .collect::<macro_actions::Result<Vec<_>>>()?;
    Ok(ActionPool::new(primitives.to_vec(), macros)?)
}

impl Analysis {
    /// The report: statistics, Spearman, the heatmap's layout, the top pairs.
    pub fn to_markdown(&self) -> String {
        let st = &self.stats;
        let mut md = String::from("# MASP similarity analysis\n\n");
        let after = self.frames.map(|f| format!(", S after {f} frames")).unwrap_or_default();
        let _ = writeln!(md, "Source: `{}`{after}.", self.source.display());
        let _ = writeln!(
            md,
            "Actions: {} ({} primitives, {} macros).\n",
            self.num_actions,
            self.num_primitives,
            self.num_actions - self.num_primitives
        );
        let spearman = self
            .spearman_edit_distance
            .map_or("undefined (S or the distances constant)".into(), |r| format!("{r:.4}"));
        let uniform_entropy = (self.num_actions as f64).ln();
        let _ = writeln!(md, "| statistic | value |\n|---|---|");
        let _ = writeln!(md, "| mean off-diagonal similarity | {:.6} |", st.mean_off_diagonal);
        let _ = writeln!(md, "| max off-diagonal similarity | {:.6} |", st.max_off_diagonal);
        let _ = writeln!(md, "| mean self-weight of P(S) | {:.4} |", st.mean_self_weight);
        let _ = writeln!(md, "| min self-weight of P(S) | {:.4} |", st.min_self_weight);
        let _ = writeln!(
            md,
            "| mean row entropy of P(S), nats (0 at S = I, {uniform_entropy:.3} = ln A when uniform) | {:.4} |",
            st.mean_row_entropy
        );
        let _ = writeln!(md, "| Spearman(S, edit distance), all pairs (paper: about -0.41) | {spearman} |");
        if let Some(g) = &self.group_separation {
            let _ = writeln!(
                md,
                "| mean S within the env's groups ({} pairs) | {:.6} |",
                g.within_pairs, g.within_mean
            );
            let _ =
                writeln!(md, "| mean S between groups ({} pairs) | {:.6} |", g.between_pairs, g.between_mean);
            let _ = writeln!(
                md,
                "| AUC of S, within- vs between-group pairs (0.5 chance, 1 perfect) | {:.4} |",
                g.auc
            );
        }
        if let Some(r) = self.spearman_effect_distance {
            let _ = writeln!(
                md,
                "| Spearman(S, effect distance: mean cells apart after the two actions), all pairs | {r:.4} |"
            );
        }
        md.push('\n');
        let order = match self.group_separation {
            Some(_) => "the primitives by the env's hidden group, then the macros sorted by name",
            None if self.spearman_effect_distance.is_some() => {
                "the primitives, then the macros in blocks of equal net move from the corridor's middle"
            }
            None => "the primitives in pool order, then the macros sorted by name",
        };
        let axes = match self.heatmap_layout.labels {
            AxisLabels::Actions => "axes name each action",
            AxisLabels::Groups => "axes name each block",
            AxisLabels::None => "no text: no font found, see MASP_FONT",
        };
        let (lo, hi) = self.heatmap_range;
        let _ = writeln!(
            md,
            "Heatmap: `{}`, rows and columns: {order}; white {lo:.6} to dark blue {hi:.6} (the smallest and \
             largest off-diagonal entries; the unit diagonal is clipped); {axes}.\n",
            self.heatmap.file_name().and_then(|n| n.to_str()).unwrap_or(HEATMAP_FILE),
        );
        let _ = writeln!(md, "## The {} most similar pairs\n", self.top_pairs.len());
        let _ = writeln!(md, "| # | action | action | S | edit distance |\n|---|---|---|---|---|");
        for (k, p) in self.top_pairs.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} | `{}` | `{}` | {:.6} | {} |",
                k + 1,
                p.name_a,
                p.name_b,
                p.similarity,
                p.edit_distance
            );
        }
        md
    }

    /// The numbers of the report, for scripts.
    pub fn to_json(&self) -> serde_json::Value {
        let st = &self.stats;
        serde_json::json!({
            "source": self.source,
            "frames": self.frames,
            "num_actions": self.num_actions,
            "num_primitives": self.num_primitives,
            "mean_off_diagonal": st.mean_off_diagonal,
            "max_off_diagonal": st.max_off_diagonal,
            "mean_self_weight": st.mean_self_weight,
            "min_self_weight": st.min_self_weight,
            "mean_row_entropy": st.mean_row_entropy,
            "spearman_edit_distance": self.spearman_edit_distance,
            "group_separation": self.group_separation.map(|g| serde_json::json!({
                "within_mean": g.within_mean, "between_mean": g.between_mean, "auc": g.auc,
                "within_pairs": g.within_pairs, "between_pairs": g.between_pairs,
            })),
            "top_pairs": self.top_pairs.iter().map(|p| serde_json::json!({
                "a": p.name_a, "b": p.name_b, "similarity": p.similarity, "edit_distance": p.edit_distance,
            })).collect::<Vec<_>>(),
            "spearman_effect_distance": self.spearman_effect_distance,
            "heatmap": self.heatmap,
            "heatmap_range": [self.heatmap_range.0, self.heatmap_range.1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_blocks_follow_the_env() {
        let ids = ["A", "B", "C", "A+B", "B+B"].map(String::from);
        let hidden = by_hidden_group(&[Some(1), Some(0), Some(1), None, None], &ids);
        let names: Vec<(&str, &[usize])> = hidden.iter().map(|g| (g.name.as_str(), &g.actions[..])).collect();
        assert_eq!(names, [("group 0", &[1][..]), ("group 1", &[0, 2]), ("macros", &[3, 4])]);
        let ids = ["LEFT", "RIGHT", "RIGHT+RIGHT", "LEFT+RIGHT", "RIGHT+NOOP", "LEFT+LEFT"].map(String::from);
        let moved = by_net_move(&[-1, 1, 2, 0, 1, -2], &ids, 2);
        let names: Vec<(&str, &[usize])> = moved.iter().map(|g| (g.name.as_str(), &g.actions[..])).collect();
        assert_eq!(
            names,
            [
                ("primitives", &[0, 1][..]),
                ("move -2", &[5]),
                ("move +0", &[3]),
                ("move +1", &[4]),
                ("move +2", &[2])
            ]
        );
    }

    #[test]
    fn identities_give_back_the_pool() {
        let ids = ["LEFT", "RIGHT", "RIGHT+RIGHT+LEFT", "LEFT+LEFT"].map(String::from);
        let pool = pool_of(&ids).unwrap();
        assert_eq!(pool.names(), ids);
        assert_eq!(pool.num_primitives(), 2);
        assert_eq!(pool.actions(2), [1, 1, 0]);
        let unknown = ["LEFT", "LEFT+UP"].map(String::from);
        assert!(format!("{:#}", pool_of(&unknown).unwrap_err()).contains("UP"));
        let late = ["LEFT", "LEFT+LEFT", "RIGHT"].map(String::from);
        assert!(pool_of(&late).unwrap_err().to_string().contains("`RIGHT` looks like a primitive"));
    }
}
