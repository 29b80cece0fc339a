//! The training loop: act, step every env copy one pool action, observe, update when due,
//! until the frame budget (`run.frames`, # environment frames: the sum of `info.frames` over
//! the primitive steps taken).
//!
//! ```text
//! new run:  runs/{game}__{agent}__{seed}__{time}/config.toml, a checkpoint at frame 0
//! loop:     actions = agent.act(obs)                 (copies,)
//!           venv.step(actions)                       one MacroOutcome per copy
//!           agent.observe(copy, Transition { R, gamma^L, .. }, next_obs, frames)
//!           agent.update()                           NaN/Inf loss: stop, keep the last checkpoint
//!           every log_interval frames: a metrics.csv row; every checkpoint_interval: a checkpoint
//! end:      checkpoint, evaluation (eval.json)
//! Ctrl-C:   checkpoint and return; `--resume RUN_DIR` continues the frame count
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use macro_actions::ActionPool;
use rainbow::{Agent, Transition, UpdateStats};
use rl_env::Obs;

use crate::compose;
use crate::config::RunConfig;
use crate::effects::EnvReference;
use crate::eval::{evaluate, EvalReport};
use crate::games::Games;
use crate::metrics::{self, MetricsWriter, Row};
use crate::profile::{lap, LoopProfile, Stage};
use crate::run_dir::{self, RunState};

/// What `train` needs besides the config.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Parent folder of new run folders (`runs/`).
    pub out: PathBuf,
    /// Start the new run in exactly this folder (created if missing) instead of a
    /// timestamped one under `out`: sweeps give each run a fixed folder so that a rerun
    /// finds it. A folder that already holds a checkpoint is refused (resume it instead).
    pub run_dir: Option<PathBuf>,
    /// Continue this run folder from its checkpoint instead of starting a new one.
    pub resume: Option<PathBuf>,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    /// Set (by Ctrl-C) to checkpoint and stop.
    pub stop: Arc<AtomicBool>,
    /// Profile the loop for this many updates once learning starts, time the update alone
    /// as often, report and stop there (module `profile`; `cargo xtask bench train`).
    pub profile: Option<u64>,
}

/// How a training session ended.
#[derive(Debug)]
pub struct TrainSummary {
    pub run: PathBuf,
    pub frames: u64,
    /// Stopped by `stop` (Ctrl-C) before the budget.
    pub interrupted: bool,
    /// The final evaluation, when the budget (or the target score) was reached.
    pub eval: Option<EvalReport>,
    /// With [`TrainOptions::profile`]: the profile's report, ending in the ratio lines.
    pub profile: Option<String>,
}

/// Row `i` of a `(n, len)` batch of observations.
fn obs_row(obs: Obs<'_>, i: usize, len: usize) -> Obs<'_> {
    match obs {
        Obs::Pixels(p) => Obs::Pixels(&p[i * len..(i + 1) * len]),
        Obs::Vector(v) => Obs::Vector(&v[i * len..(i + 1) * len]),
    }
}

/// Trains `config` into a new run folder under `options.out`, or continues
/// `options.resume`; see the module docs. `config` must already be resolved (for a resume:
/// from the run's own `config.toml`, plus any `--set`).
pub fn train(config: &RunConfig, options: &TrainOptions) -> Result<TrainSummary> {
    let (run, resume_from) = match &options.resume {
        Some(run) => (run.clone(), Some(run_dir::find_checkpoint(run)?)),
        None => {
            let run = match &options.run_dir {
                Some(dir) => {
                    anyhow::ensure!(
                        run_dir::find_checkpoint(dir).is_err(),
                        "the run folder {} already holds a checkpoint; continue it with `masp train --resume {}`",
                        dir.display(),
                        dir.display()
                    );
                    dir.clone()
                }
                None => {
                    let name = run_dir::run_name(
                        &config.env.game_name(),
                        &config.run.name,
                        config.run.seed,
                        SystemTime::now(),
                    );
                    let run = options.out.join(name);
                    anyhow::ensure!(!run.exists(), "the run folder {} already exists", run.display());
                    run
                }
            };
            std::fs::create_dir_all(&run)
                .with_context(|| format!("creating the run folder {}", run.display()))?;
            (run, None)
        }
    };
    let resolved = config.to_toml()?;
    let stamped = run_dir::stamp_sessions(&run, resume_from.is_some())? + &resolved;
    std::fs::write(run.join(run_dir::CONFIG), stamped)
        .with_context(|| format!("writing {}", run.join(run_dir::CONFIG).display()))?;
    eprintln!("run folder: {}", run.display());
    eprintln!("resolved config ({}):\n{resolved}", run_dir::CONFIG);
    for warning in config.schedule_warnings() {
        eprintln!("warning: {warning}");
    }

    // Env, pool, agent, regulariser.
    let n = config.run.num_envs;
    let base = compose::base_envs(config, false, n)?;
    let pool = compose::action_pool(config, base[0].as_ref())?;
    let executor =
        macro_actions::ExecutorConfig { gamma: config.agent.n_step.gamma, life_loss_terminal: false };
    let mut venv = macro_actions::MacroVecEnv::new(base, pool.clone(), executor)?;
    let obs_spec = venv.spec().observation.clone();
    let (mut agent, mut state) = match &resume_from {
        Some(ckpt) => {
            let mut agent =
                Agent::load(ckpt).with_context(|| format!("loading the checkpoint {}", ckpt.display()))?;
            anyhow::ensure!(
                agent.num_actions() == pool.len() && agent.num_envs() == n,
                "the checkpoint has {} actions and {} env copies, the config {} and {n}; resume with the \
                 run's own pool and num_envs",
                agent.num_actions(),
                agent.num_envs(),
                pool.len()
            );
            agent.set_eval(false);
            (agent, run_dir::read_state(ckpt)?)
        }
        None => (
            Agent::new(config.agent.clone(), &obs_spec, pool.len(), n).context("building the agent")?,
            RunState::default(),
        ),
    };
    let masp = compose::attach_regularizer(config, &mut agent, &pool, resume_from.as_deref())?;
    let effects = match &masp {
        Some(_) => EnvReference::of(&config.env, &pool)?,
        None => None,
    };
    eprintln!(
        "{} on {}: {} actions ({} primitives, {} macros), {} env copies, {} frames budget{}, masp commit {}, {}",
        config.run.name,
        config.env.game_name(),
        pool.len(),
        pool.num_primitives(),
        pool.num_macros(),
        n,
        config.run.frames,
        if resume_from.is_some() {
            format!(
                ", resuming at frame {} with {} transitions in the replay",
                agent.counters().frames,
                agent.learner().replay().len()
            )
        } else {
            String::new()
        },
        run_dir::COMMIT,
        match cpu_kernels::flushes_denormals() {
            true => "subnormal floats flushed to zero".to_string(),
            false => format!("subnormal floats kept (IEEE; {} set or not x86-64)", rainbow::KEEP_DENORMALS_ENV),
        }
    );

    if resume_from.is_some() && agent.learner().replay().is_empty() && agent.counters().agent_steps > 0 {
        eprintln!(
            "the checkpoint holds no replay buffer (the run had finished, run.save_replay = false, or an \
             older build): the replay restarts empty, and the updates, due at once, sample only the \
             transitions gathered since this resume until it refills"
        );
    }

    // The replay's cost on disk is said once per session, at its first checkpoint.
    let size_said = std::cell::Cell::new(!config.run.save_replay);
    let save = |agent: &Agent, state: &RunState, with_replay: bool| -> Result<PathBuf> {
        run_dir::save_checkpoint(&run, |dir| {
            agent.save(dir, with_replay).context("saving the agent")?;
            if let Some(m) = &masp {
                compose::save_masp(m, &pool, dir)?;
            }
            run_dir::write_json(&dir.join(run_dir::STATE), state)?;
            if with_replay && !size_said.replace(true) {
                let replay = agent.learner().replay();
                eprintln!(
                    "checkpoint: {:.1} MB with the replay buffer ({} of {} transitions held; it grows with them); \
                     run.save_replay = false leaves it out",
                    run_dir::folder_bytes(dir)? as f64 / 1e6,
                    replay.len(),
                    replay.capacity()
                );
            }
            Ok(())
        })
    };
    let snapshot = |agent: &Agent, state: &mut RunState, elapsed: f64| {
        let c = agent.counters();
        state.frames = c.frames;
        state.agent_steps = c.agent_steps;
        state.updates = c.updates;
        state.elapsed_s = elapsed;
    };
    let session_start = Instant::now();
    let elapsed_before = state.elapsed_s;
    if resume_from.is_none() {
        snapshot(&agent, &mut state, 0.0);
        save(&agent, &state, config.run.save_replay)?;
    }
    let mut last_checkpoint_frames = agent.counters().frames;

    // Episodes start from a seed that differs per session, so a resume does not replay them.
    venv.reset(Some(config.run.seed.wrapping_add(agent.counters().frames)));
    let len = obs_spec.len();
    for i in 0..n {
        // A checkpoint's replay holds the episode that the env's reset just cut off (env
        // states are not saved): it ends there, as a truncation.
        agent.truncate_episode(i)?;
        agent.start_episode(i, obs_row(venv.obs(), i, len))?;
    }

    if resume_from.is_some() {
        // Rows logged after the checkpoint would otherwise be logged again.
        metrics::rewind(&run, agent.counters().frames)?;
    }
    let mut metrics = MetricsWriter::open(&run)?;
    let bar = progress_bar(options.progress, config.run.frames, agent.counters().frames);
    let mut games = Games::new(n, &state.recent_scores, state.games);
    let mut last_stats: Option<UpdateStats> = None;
    let mut last_log = (agent.counters().frames, Instant::now());
    let mut reached_target = false;
    let mut actions = vec![0usize; n];
    let mut profile = options.profile.map(LoopProfile::new);
    agent.learner_mut().set_profiling(profile.is_some());

    while agent.counters().frames < config.run.frames && !options.stop.load(Ordering::SeqCst) {
        if let Some(p) = profile.as_mut() {
            p.begin(agent.counters().updates);
        }
        actions.copy_from_slice(agent.act(venv.obs())?);
        lap(&mut profile, Stage::Act);
        venv.step(&actions);
        lap(&mut profile, Stage::Env);
        for (i, o) in venv.outcomes().iter().enumerate() {
            let t = Transition {
                action: actions[i],
                reward: o.reward,
                discount: o.discount,
                terminated: o.terminated,
                truncated: o.truncated,
            };
            games.observe(i, o.reward, &o.info);
            if o.done() {
                agent.observe(i, &t, venv.final_obs(i), o.info.frames)?;
                agent.start_episode(i, obs_row(venv.obs(), i, len))?;
            } else {
                agent.observe(i, &t, obs_row(venv.obs(), i, len), o.info.frames)?;
            }
        }
        lap(&mut profile, Stage::Replay);
        match agent.update() {
            Ok(Some(stats)) => {
                last_stats = Some(stats);
                if let Some(p) = profile.as_mut() {
                    p.lap(Stage::Update);
                    p.record_update(agent.learner().timings());
                }
            }
            Ok(None) => {}
            Err(err @ rainbow::Error::NonFiniteLoss { .. }) => {
                bar.abandon();
                let c = agent.counters();
                bail!(
                    "training stopped at update {} (frame {}, agent step {}): {err}\nthe last good checkpoint \
                     (frame {last_checkpoint_frames}) is kept in {}; fix the config and continue with \
                     `masp train --resume {}`",
                    c.updates,
                    c.frames,
                    c.agent_steps,
                    run.join(run_dir::CHECKPOINT).display(),
                    run.display()
                );
            }
            Err(err) => return Err(err).context("agent update"),
        }

        let frames = agent.counters().frames;
        let recent_mean = games.recent_mean();
        if let (Some(target), Some(m)) = (config.run.target_score, recent_mean) {
            reached_target = games.recent_is_full() && m >= target;
        }
        let finishing = reached_target || frames >= config.run.frames;
        let checkpoint_due = frames - last_checkpoint_frames >= config.run.checkpoint_interval;
        if frames - last_log.0 >= config.run.log_interval || finishing || checkpoint_due {
            let secs = last_log.1.elapsed().as_secs_f64().max(1e-9);
            let fps = (frames - last_log.0) as f64 / secs;
            // The evaluation policy's score beside the training returns at every checkpoint
            // (the run's end has its own, larger evaluation), so that a gap shows in the curves.
            let eval_score = if checkpoint_due && !finishing && config.run.checkpoint_eval_episodes > 0 {
                Some(evaluate(config, &mut agent, &pool, config.run.checkpoint_eval_episodes)?.mean)
            } else {
                None
            };
            let c = agent.counters();
            let interval = games.take_interval();
            let mut row = Row {
                frames,
                agent_steps: c.agent_steps,
                updates: c.updates,
                games: games.finished(),
                episode_score: interval.score,
                clipped_return: interval.clipped_return,
                eval_score,
                loss: last_stats.as_ref().map(|s| s.loss),
                penalty: last_stats.as_ref().and_then(|s| s.penalty),
                mean_priority: last_stats.as_ref().map(|s| s.mean_priority),
                grad_norm: last_stats.as_ref().map(|s| s.grad_norm),
                fps,
                ..Row::default()
            };
            if let Some(m) = &masp {
                let mut m = m.borrow_mut();
                row.s_stats = m.similarity_stats().ok();
                row.penalty_td_ratio = m.last_report().map(|r| r.penalty_td_ratio);
                row.meta_grad_norm = m.last_report().map(|r| r.meta_grad_norm);
                let effects = effects.as_ref().map(EnvReference::effects);
                row.signal = m.masp_mut().take_signal(effects).context("the meta-gradient's signal")?;
            }
            metrics.write(&row)?;
            last_log = (frames, Instant::now());
            bar.set_message(format!(
                "{fps:.0} frames/s, recent score {}",
                recent_mean.map(|m| format!("{m:.1}")).unwrap_or_else(|| "-".into())
            ));
        }
        bar.set_position(frames.min(config.run.frames));
        if checkpoint_due {
            state.games = games.finished();
            state.recent_scores = games.recent();
            snapshot(&agent, &mut state, elapsed_before + session_start.elapsed().as_secs_f64());
            save(&agent, &state, config.run.save_replay)?;
            last_checkpoint_frames = frames;
        }
        lap(&mut profile, Stage::Other);
        if let Some(p) = profile.as_mut().filter(|p| p.is_active()) {
            let start = Instant::now();
            agent.update_now().context("timing the update alone")?;
            p.add_alone(start.elapsed());
        }
        if reached_target || profile.as_mut().is_some_and(|p| p.finished(agent.counters().updates)) {
            break;
        }
    }
    if let Some(p) = profile {
        bar.finish_and_clear();
        let report = finish_profile(config, &mut agent, &pool, &p)?;
        return Ok(TrainSummary {
            run,
            frames: agent.counters().frames,
            interrupted: false,
            eval: None,
            profile: Some(report),
        });
    }

    state.games = games.finished();
    state.recent_scores = games.recent();
    snapshot(&agent, &mut state, elapsed_before + session_start.elapsed().as_secs_f64());
    let frames = agent.counters().frames;
    let interrupted = options.stop.load(Ordering::SeqCst) && frames < config.run.frames && !reached_target;
    // A finished run's last checkpoint leaves the replay out: only an unfinished run needs
    // it to continue, and a sweep's finished Atari runs would otherwise keep 7 GB each.
    let checkpoint = save(&agent, &state, config.run.save_replay && interrupted)?;
    bar.finish_and_clear();
    if interrupted {
        eprintln!(
            "interrupted at frame {frames}; checkpoint written to {}; continue with `masp train --resume {}`",
            checkpoint.display(),
            run.display()
        );
        return Ok(TrainSummary { run, frames, interrupted: true, eval: None, profile: None });
    }
    if let Some(target) = config.run.target_score.filter(|_| reached_target) {
        eprintln!("reached the target score {target} at frame {frames}");
    }
    if let Some(m) = &masp {
        let paths = m.borrow().meta_paths();
        eprintln!(
            "MASP meta steps this session: {} through the learner's lookahead_jvp, {} through the generic path",
            paths.learner, paths.generic
        );
    }
    let eval = if config.run.eval_episodes > 0 {
        let report = evaluate(config, &mut agent, &pool, config.run.eval_episodes)?;
        run_dir::write_json(&run.join(run_dir::EVAL), &report)?;
        eprintln!(
            "evaluation over {} episodes: mean raw score {:.2} (std {:.2}); written to {}",
            report.episodes,
            report.mean,
            report.std,
            run.join(run_dir::EVAL).display()
        );
        Some(report)
    } else {
        None
    };
    Ok(TrainSummary { run, frames, interrupted: false, eval, profile: None })
}

/// After a profiled loop: the evaluation's speed (over `run.eval_episodes`) into the
/// profile's report.
fn finish_profile(
    config: &RunConfig,
    agent: &mut Agent,
    pool: &ActionPool,
    p: &LoopProfile,
) -> Result<String> {
    let eval_fps = if config.run.eval_episodes > 0 {
        let start = Instant::now();
        let report = evaluate(config, agent, pool, config.run.eval_episodes)?;
        Some(report.eval_frames as f64 / start.elapsed().as_secs_f64())
    } else {
        None
    };
    Ok(p.report(eval_fps))
}

fn progress_bar(show: bool, budget: u64, start: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(budget).with_position(start.min(budget));
    let style = ProgressStyle::with_template("{bar:30} {human_pos}/{human_len} frames  {msg}  ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.reset_eta();
    bar
}

/// The resolved config of `run` (its own `config.toml`) with `sets` on top, for a resume.
pub fn resume_config(run: &Path, sets: &[String]) -> Result<RunConfig> {
    let path = run.join(run_dir::CONFIG);
    anyhow::ensure!(path.exists(), "{} is not a run folder: {} is missing", run.display(), path.display());
    RunConfig::read_resolved_with(&path, sets)
}
