//! `masp train --profile N`: where the training loop's wall time goes, per learner update.
//!
//! From the first update on, each iteration of the loop is split into its stages (acting,
//! the environment step, replay insertion, the update with its sampling and MASP's meta
//! step, and the rest: logging and checkpoints) for `N` updates; after each iteration one
//! more update of the same agent is timed alone, so that both figures come from the same
//! minutes of a machine whose speed drifts (docs/benchmarks.md has the drift measured). The
//! report's last three lines compare the loop with the learner it wraps:
//!
//! ```text
//! loop_ms_per_update=…      wall time of the loop over the profiled iterations / updates
//! learner_ms_per_update=…   Agent::update_now alone, interleaved, the mean over N
//! ratio=…                   loop / learner: 1 means the loop around the learner costs nothing
//! ```

use std::fmt::Write;
use std::time::{Duration, Instant};

use rainbow::UpdateTimings;

/// A stage of one iteration of the training loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `Agent::act`: the batched forward pass and the exploration draw.
    Act,
    /// `venv.step`: the emulator, macros included.
    Env,
    /// `Agent::observe` and `start_episode`: replay insertion.
    Replay,
    /// `Agent::update`.
    Update,
    /// Logging, checkpoints, the progress bar.
    Other,
}

const STAGES: [Stage; 5] = [Stage::Act, Stage::Env, Stage::Replay, Stage::Update, Stage::Other];

/// Accumulates stage times once the first update has run, for a set number of updates.
#[derive(Debug)]
pub struct LoopProfile {
    updates_wanted: u64,
    /// The update count when profiling began; `None` before the first update.
    first_update: Option<u64>,
    updates: u64,
    stages: [Duration; 5],
    /// Of [`Stage::Update`]: the replay draw and MASP's meta step (the learner's timings).
    sample: Duration,
    meta_step: Duration,
    /// The interleaved updates timed alone, and how many.
    alone: Duration,
    alone_count: u64,
    lap: Instant,
}

impl LoopProfile {
    pub fn new(updates: u64) -> Self {
        Self {
            updates_wanted: updates.max(1),
            first_update: None,
            updates: 0,
            stages: [Duration::ZERO; 5],
            sample: Duration::ZERO,
            meta_step: Duration::ZERO,
            alone: Duration::ZERO,
            alone_count: 0,
            lap: Instant::now(),
        }
    }

    /// Starts an iteration; `updates` is the agent's update count before it.
    pub fn begin(&mut self, updates: u64) {
        if self.first_update.is_none() && updates > 0 {
            self.first_update = Some(updates);
        }
        self.lap = Instant::now();
    }

    /// Ends `stage` of the current iteration.
    pub fn lap(&mut self, stage: Stage) {
        let now = Instant::now();
        if self.first_update.is_some() {
            let i = STAGES.iter().position(|s| *s == stage).expect("every stage is listed");
            self.stages[i] += now - self.lap;
        }
        self.lap = now;
    }

    /// After an iteration's update: the learner's stage timings of it.
    pub fn record_update(&mut self, timings: &UpdateTimings) {
        if self.first_update.is_some() {
            self.sample += timings.sample;
            self.meta_step += timings.regularizer;
        }
    }

    /// Whether the profile has begun (an update has run): then each iteration is followed by
    /// one update timed alone.
    pub fn is_active(&self) -> bool {
        self.first_update.is_some()
    }

    /// One update of the agent, timed alone.
    pub fn add_alone(&mut self, time: Duration) {
        self.alone += time;
        self.alone_count += 1;
    }

    /// The update alone, in ms: the mean of the interleaved ones.
    pub fn learner_ms_per_update(&self) -> f64 {
        ms(self.alone) / self.alone_count.max(1) as f64
    }

    /// Whether `updates` (the agent's count after an iteration) completes the profile.
    pub fn finished(&mut self, updates: u64) -> bool {
        if let Some(first) = self.first_update {
            self.updates = updates - first;
        }
        self.updates >= self.updates_wanted
    }

    /// The loop's wall time per update over the profiled iterations, in ms.
    pub fn loop_ms_per_update(&self) -> f64 {
        ms(self.stages.iter().sum::<Duration>()) / self.updates.max(1) as f64
    }

    /// The report: each stage's time per update and share, then the three closing lines.
    pub fn report(&self, eval_frames_per_s: Option<f64>) -> String {
        let learner_ms = self.learner_ms_per_update();
        let per = |d: Duration| ms(d) / self.updates.max(1) as f64;
        let total = self.loop_ms_per_update();
        let mut out =
            format!("profile over {} updates of the training loop (ms per update, share):\n", self.updates);
        let update = self.stages[3];
        let rows = [
            ("acting", self.stages[0]),
            ("environment steps", self.stages[1]),
            ("replay insertion", self.stages[2]),
            ("update: replay sampling", self.sample),
            ("update: MASP's meta step", self.meta_step),
            ("update: the rest", update.saturating_sub(self.sample + self.meta_step)),
            ("logging and checkpoints", self.stages[4]),
        ];
        for (name, d) in rows {
            let _ =
                writeln!(out, "  {name:<26} {:>9.3}  {:>5.1} %", per(d), 100.0 * per(d) / total.max(1e-12));
        }
        if let Some(fps) = eval_frames_per_s {
            let _ = writeln!(out, "eval_frames_per_s={fps:.0}");
        }
        let _ = writeln!(out, "loop_ms_per_update={total:.3}");
        let _ = writeln!(out, "learner_ms_per_update={learner_ms:.3}");
        let _ = write!(out, "ratio={:.3}", total / learner_ms);
        out
    }
}

/// Ends `stage` when profiling.
pub fn lap(profile: &mut Option<LoopProfile>, stage: Stage) {
    if let Some(p) = profile {
        p.lap(stage);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_count_from_the_first_update_and_the_report_closes_with_the_ratio() {
        let mut p = LoopProfile::new(2);
        // Before learning starts nothing counts.
        p.begin(0);
        std::thread::sleep(Duration::from_millis(2));
        p.lap(Stage::Act);
        assert!(!p.finished(0));
        assert_eq!(p.loop_ms_per_update(), 0.0);
        for updates in 1..3 {
            p.begin(updates);
            p.lap(Stage::Act);
            p.lap(Stage::Update);
            p.record_update(&UpdateTimings { sample: Duration::from_millis(1), ..Default::default() });
            assert_eq!(p.finished(updates + 1), updates == 2);
        }
        assert_eq!(p.updates, 2);
        assert_eq!(p.sample, Duration::from_millis(2));
        p.add_alone(Duration::from_millis(3));
        p.add_alone(Duration::from_millis(1));
        assert_eq!(p.learner_ms_per_update(), 2.0);
        let report = p.report(Some(1000.0));
        let last: Vec<&str> = report.lines().rev().take(3).collect();
        assert!(last[2].starts_with("loop_ms_per_update="), "{report}");
        assert!(last[1].starts_with("learner_ms_per_update="), "{report}");
        assert_eq!(last[0], format!("ratio={:.3}", p.loop_ms_per_update() / 2.0));
        assert!(report.contains("eval_frames_per_s=1000"));
    }
}
