//! `masp analyze`: a short toy MASP run analysed end to end (heatmap, Spearman, top pairs
//! against the masp crate's own functions), a hand-made `S` with known structure, and the
//! errors for runs without `S`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use macro_actions::{edit_distance, ActionPool, MacroSpec};
use masp::{spearman, top_pairs, SavedSimilarity, Similarity};
use masp_runner::{analyze, AnalyzeOptions};

mod common;
use common::{fresh_dir, masp, root};

/// A short toy run (configs/toy.toml) into `out`; returns its run folder.
fn toy_run(out: &Path, sets: &[&str]) -> PathBuf {
    let toy = root().join("configs/toy.toml");
    let mut args = vec!["train", "--config", toy.to_str().unwrap(), "--out", out.to_str().unwrap()];
    for s in ["run.frames=1000", "run.eval_episodes=0", "run.log_interval=500"].iter().chain(sets) {
        args.extend(["--set", s]);
    }
    let (ok, stdout, stderr) = masp(&args);
    assert!(ok, "masp {args:?} failed:\n{stderr}");
    PathBuf::from(stdout.lines().last().expect("the run folder is printed").trim())
}

/// An RGB picture decoded from a PNG.
struct Picture {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Picture {
    fn read(path: &Path) -> Self {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb, "plotters' bitmap is 8-bit RGB");
        Self { width: info.width, height: info.height, rgb }
    }

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let k = ((y * self.width + x) * 3) as usize;
        self.rgb[k..k + 3].try_into().unwrap()
    }
}

/// The heatmap's colour of `v` on `style`'s scale: white to dark blue (masp's shading).
fn shade(style: &masp::HeatmapStyle, v: f32) -> [u8; 3] {
    let (lo, hi) = style.range;
    let t = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
    [8u8, 48, 107].map(|dark| (255.0 - t * (255.0 - f32::from(dark))).round() as u8)
}

#[test]
fn a_toy_masp_run_is_analysed_like_the_masp_crate_would() {
    let out = fresh_dir("analyze", "toy");
    let run = toy_run(&out, &[]);
    let analysis = analyze(&run, &AnalyzeOptions { top_k: 7, out: None }).unwrap();

    // The checkpoint's S, and the pool its identities spell out: the masp crate's functions on
    // these give the numbers the report must hold.
    let source = run.join("checkpoint/similarity.json");
    assert_eq!(analysis.source, source);
    let saved = SavedSimilarity::load(&source, &Device::Cpu).unwrap();
    let s = saved.to_similarity(DType::F32).unwrap();
    let ids = saved.ids();
    let a = ids.len();
    assert_eq!((analysis.num_actions, analysis.num_actions - analysis.num_primitives), (a, 16), "16 macros");
    let prims: Vec<String> = ids[..analysis.num_primitives].to_vec();
    let macros = ids[prims.len()..]
        .iter()
        .enumerate()
        .map(|(k, id)| MacroSpec::Name(id.clone()).resolve(k, &prims).unwrap())
        .collect();
    let pool = ActionPool::new(prims.clone(), macros).unwrap();
    let mut distance = vec![0f32; a * a];
    for i in 0..a {
        for j in 0..a {
            distance[i * a + j] = edit_distance(pool.actions(i), pool.actions(j)) as f32;
        }
    }
    let want = spearman(&s, &distance).unwrap();
    assert!(want.is_some(), "S has moved off its uniform init, so Spearman is defined");
    assert_eq!(analysis.spearman_edit_distance, want);
    assert_eq!(analysis.stats, s.stats().unwrap());
    assert_eq!(
        analysis.frames,
        Some(
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap()
            )
            .unwrap()["frames"]
                .as_u64()
                .unwrap()
        )
    );

    // The top pairs: the masp crate's, sorted, with their edit distances.
    let top = top_pairs(&s, ids, 7).unwrap();
    assert_eq!(analysis.top_pairs.len(), 7);
    for (got, want) in analysis.top_pairs.iter().zip(&top) {
        assert_eq!((&got.name_a, &got.name_b, got.similarity), (&want.name_a, &want.name_b, want.similarity));
        assert_eq!(got.edit_distance as f32, distance[want.a * a + want.b]);
    }
    assert!(analysis.top_pairs.windows(2).all(|w| w[0].similarity >= w[1].similarity), "most similar first");

    // The files: analysis/ in the run folder; the PNG decodes at the heatmap's size.
    let dir = run.join("analysis");
    assert_eq!(analysis.heatmap, dir.join("similarity.png"));
    // The picture is the layout's size, and each cell's centre shows its entry of S on the
    // off-diagonal scale, in the drawing order.
    let layout = &analysis.heatmap_layout;
    let picture = Picture::read(&analysis.heatmap);
    assert_eq!(picture.size(), layout.size);
    let style = masp::HeatmapStyle::off_diagonal(&s, true).unwrap();
    assert_eq!(analysis.heatmap_range, style.range);
    let values = s.to_vec().unwrap();
    let half = layout.cell_px / 2;
    for (r, &i) in layout.order.iter().enumerate() {
        for (c, &j) in layout.order.iter().enumerate() {
            let (x, y) = (
                layout.origin.0 + c as u32 * layout.cell_px + half,
                layout.origin.1 + r as u32 * layout.cell_px + half,
            );
            assert_eq!(picture.at(x, y), shade(&style, values[i * a + j]), "cell ({r}, {c})");
        }
    }
    // The font that `cargo xtask setup` installs names each of the 20 actions on the axes.
    assert_eq!(layout.labels, masp::AxisLabels::Actions);
    // The corridor's own reference: Spearman against the effect distance.
    assert!(analysis.spearman_effect_distance.is_some(), "the toy is a corridor");
    // Blocks: the primitives, then the macros by net move, ascending.
    assert_eq!(layout.groups[0].0, "primitives");
    let moves: Vec<i64> =
        layout.groups[1..].iter().map(|(name, _)| name["move ".len()..].parse().unwrap()).collect();
    assert!(moves.windows(2).all(|w| w[0] < w[1]), "{moves:?}");
    let md = std::fs::read_to_string(dir.join("analysis.md")).unwrap();
    assert_eq!(md, analysis.to_markdown());
    assert!(md.contains(&format!("{:.4}", want.unwrap())), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("analysis.json")).unwrap()).unwrap();
    assert_eq!(json["spearman_edit_distance"].as_f64(), want);
    assert_eq!(json["top_pairs"][0]["a"], analysis.top_pairs[0].name_a.as_str());

    // A checkpoint's file, or the checkpoint folder, given directly: the same S, and the
    // analysis still goes to the run folder (a checkpoint folder is replaced at every save).
    for input in [source.clone(), run.join("checkpoint")] {
        let again = analyze(&input, &AnalyzeOptions { top_k: 7, out: None }).unwrap();
        assert_eq!(
            (again.heatmap, again.spearman_edit_distance, again.frames),
            (dir.join("similarity.png"), want, analysis.frames)
        );
    }

    // The command prints the same report and can write elsewhere.
    let elsewhere = out.join("elsewhere");
    let (ok, stdout, stderr) =
        masp(&["analyze", run.to_str().unwrap(), "--top-k", "7", "--out", elsewhere.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with(&md), "{stdout}");
    assert!(elsewhere.join("similarity.png").exists() && elsewhere.join("analysis.md").exists());
}

#[test]
fn a_hand_made_s_gives_its_known_top_pairs() {
    let dir = fresh_dir("analyze", "hand_made");
    // Two primitives and four macros; S ties RIGHT+RIGHT+RIGHT to RIGHT+RIGHT (0.9), LEFT to
    // LEFT+LEFT (0.6), everything else 0.1 or less.
    let ids =
        ["LEFT", "RIGHT", "RIGHT+RIGHT", "LEFT+LEFT", "RIGHT+RIGHT+RIGHT", "LEFT+RIGHT"].map(String::from);
    let a = ids.len();
    let mut v = vec![0.05f32; a * a];
    let mut set = |i: usize, j: usize, x: f32| {
        v[i * a + j] = x;
        v[j * a + i] = x;
    };
    (0..a).for_each(|i| set(i, i, 1.0));
    set(2, 4, 0.9);
    set(0, 3, 0.6);
    set(1, 5, 0.1);
    let s = Similarity::from_values(&v, a, DType::F32, &Device::Cpu).unwrap();
    let file = dir.join("similarity.json");
    s.save(&ids, &file).unwrap();

    let analysis = analyze(&file, &AnalyzeOptions { top_k: 3, out: None }).unwrap();
    let pairs: Vec<(&str, &str, f32, usize)> = analysis
        .top_pairs
        .iter()
        .map(|p| (p.name_a.as_str(), p.name_b.as_str(), p.similarity, p.edit_distance))
        .collect();
    assert_eq!(
        pairs,
        [
            ("RIGHT+RIGHT", "RIGHT+RIGHT+RIGHT", 0.9, 1),
            ("LEFT", "LEFT+LEFT", 0.6, 1),
            ("RIGHT", "LEFT+RIGHT", 0.1, 1),
        ]
    );
    assert_eq!((analysis.num_actions, analysis.num_primitives, analysis.frames), (6, 2, None));
    // A file's analysis goes beside it; 768 / 6 = 128 px cells are capped at 48.
    assert_eq!(analysis.heatmap, dir.join("analysis/similarity.png"));
    let layout = &analysis.heatmap_layout;
    assert_eq!(layout.cell_px, 48);
    let picture = Picture::read(&analysis.heatmap);
    assert_eq!(picture.size(), layout.size);
    // Drawing order: LEFT, RIGHT, then LEFT+LEFT, LEFT+RIGHT, RIGHT+RIGHT, RIGHT+RIGHT+RIGHT.
    // The colours run from white at the smallest off-diagonal entry (0.05) to dark blue at
    // the largest (0.9), so the top pair and the diagonal are both dark blue, 0.05 is white
    // and 0.1 a little blue.
    assert_eq!(analysis.heatmap_range, (0.05, 0.9));
    let (ox, oy) = layout.origin;
    let cell = |row: u32, col: u32| picture.at(ox + col * 48 + 24, oy + row * 48 + 24);
    let dark_blue = [8, 48, 107];
    assert_eq!(cell(4, 5), dark_blue, "RIGHT+RIGHT vs RIGHT+RIGHT+RIGHT, 0.9");
    assert_eq!(cell(2, 2), dark_blue, "the diagonal");
    let (s01, s005) = (cell(1, 3), cell(0, 1));
    assert!(
        s005 == [255; 3] && s01[0] < 255,
        "RIGHT vs LEFT+RIGHT (0.1) {s01:?}, LEFT vs RIGHT (0.05) {s005:?}"
    );
    // With a font, the axes carry the six names: the label band holds "RIGHT+RIGHT+RIGHT".
    assert_eq!(layout.labels, masp::AxisLabels::Actions);
    assert!(ox > 8 + 8 * 17, "{layout:?}");
    // Text is drawn in the band left of the first column: some pixel there is not white.
    let band_inked = (8..ox - 4).any(|x| (oy..oy + 6 * 48).any(|y| picture.at(x, y) != [255; 3]));
    assert!(band_inked, "the row labels are drawn");
    // Every similar pair above is one edit apart: a negative rank correlation.
    assert!(analysis.spearman_edit_distance.unwrap() < 0.0);
}

#[test]
fn runs_without_s_say_why() {
    let out = fresh_dir("analyze", "no_s");
    let run = toy_run(&out, &["masp.enabled=false"]);
    let err = format!("{:#}", analyze(&run, &AnalyzeOptions::default()).unwrap_err());
    assert!(err.contains("MASP disabled") && err.contains("masp.enabled=true"), "{err}");

    let empty = out.join("not_a_run");
    std::fs::create_dir_all(&empty).unwrap();
    let err = format!("{:#}", analyze(&empty, &AnalyzeOptions::default()).unwrap_err());
    assert!(err.contains("has no checkpoint"), "{err}");

    let (ok, _, stderr) = masp(&["analyze", out.join("missing").to_str().unwrap()]);
    assert!(!ok && stderr.contains("does not exist"), "{stderr}");
}

/// On the grouped bandit, the report says how well `S` separates the env's hidden groups,
/// with the same numbers as the masp crate's `group_separation` on the env's own groups.
#[test]
fn a_grouped_bandit_run_reports_how_s_separates_the_groups() {
    let out = fresh_dir("analyze", "grouped_bandit");
    let preset = root().join("configs/grouped-bandit.toml");
    let args = ["train", "--config", preset.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let sets = ["run.frames=1500", "run.eval_episodes=0", "run.log_interval=500"];
    let mut all = args.to_vec();
    for s in &sets {
        all.extend(["--set", s]);
    }
    let (ok, stdout, stderr) = masp(&all);
    assert!(ok, "{stderr}");
    let run = PathBuf::from(stdout.lines().last().unwrap().trim());
    let analysis = analyze(&run, &AnalyzeOptions { top_k: 3, out: None }).unwrap();
    let g = analysis.group_separation.expect("the grouped bandit's groups are known");
    // 16 actions in 4 groups of 4: 4 * C(4, 2) = 24 within-group pairs of C(16, 2) = 120.
    assert_eq!((g.within_pairs, g.between_pairs), (24, 96));
    let config = masp_runner::RunConfig::read_resolved(&run.join("config.toml")).unwrap();
    let masp_runner::EnvConfig::GroupedBandit(section) = config.env else { panic!("{:?}", config.env) };
    let env = rl_env::GroupedBandit::try_new(section).unwrap();
    let groups: Vec<Option<usize>> = env.groups().iter().copied().map(Some).collect();
    let saved = SavedSimilarity::load(run.join("checkpoint/similarity.json"), &Device::Cpu).unwrap();
    let s = saved.to_similarity(DType::F32).unwrap();
    assert_eq!(masp::group_separation(&s, &groups).unwrap(), Some(g));
    let report = std::fs::read_to_string(&analysis.report).unwrap();
    assert!(
        report.contains(&format!("| {:.4} |", g.auc)) && report.contains("within the env's groups"),
        "{report}"
    );
    // The signal columns: every 500-frame row after the first meta step scores the
    // meta-gradient against the same groups; S's change is what S did between the rows.
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let rows: Vec<Vec<&str>> = metrics.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3, "{metrics}");
    for row in &rows {
        let value =
            |name: &str| row[column(name)].parse::<f64>().unwrap_or_else(|_| panic!("{name}: {metrics}"));
        assert!((0.0..=1.0).contains(&value("meta_alignment")), "an AUC: {metrics}");
        assert!(value("meta_reach") > 0.0 && value("meta_reach") <= 1.0, "{metrics}");
        assert!(value("meta_consistency") > 0.0 && value("meta_consistency") <= 1.0, "{metrics}");
        assert!(value("s_change") > 0.0, "Adam moves S by about beta a step: {metrics}");
    }
    // Other envs have no groups to report.
    let toy = toy_run(&fresh_dir("analyze", "no_groups"), &[]);
    assert_eq!(analyze(&toy, &AnalyzeOptions { top_k: 3, out: None }).unwrap().group_separation, None);
}
