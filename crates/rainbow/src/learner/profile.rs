//! Profiling of the update: [`UpdateTimings`], the wall time of each stage, and
//! [`StageClock`], which measures them (rainbow's learner and lookahead, and MASP's meta
//! step).

use std::time::{Duration, Instant};

use candle_core::{Device, Result};

/// Wall time of each stage of the last update, when profiling is on (the device is
/// synchronised at every boundary, so the stages add up to the update).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateTimings {
    /// Drawing the batch from the replay and copying it to the device.
    pub sample: Duration,
    /// New noise for both networks and their effective weights `mu + sigma * eps`.
    pub noise: Duration,
    /// Online and target forward passes on the next states, and the double-Q choice; on the
    /// CPU also the online pass on the states, which runs alongside.
    pub forward_next: Duration,
    /// The C51 projection.
    pub projection: Duration,
    /// The online forward pass on the states (zero on the CPU: see `forward_next`).
    pub forward_online: Duration,
    /// Cross-entropy, importance weighting, penalty.
    pub loss: Duration,
    pub backward: Duration,
    /// Gradient norm and scaling.
    pub clip: Duration,
    /// The regulariser's `before_step` (MASP's meta step, when one is due).
    pub regularizer: Duration,
    pub adam: Duration,
    /// Copying the statistics and per-sample losses to the host.
    pub readback: Duration,
}

impl UpdateTimings {
    pub fn total(&self) -> Duration {
        self.sample
            + self.noise
            + self.forward_next
            + self.projection
            + self.forward_online
            + self.loss
            + self.backward
            + self.clip
            + self.regularizer
            + self.adam
            + self.readback
    }
}

/// Times stages when profiling, synchronising the device first so that asynchronous
/// (CUDA) work is counted where it is issued. Off, it never synchronises and every lap is a
/// no-op.
#[derive(Clone, Copy, Debug)]
pub struct StageClock<'a> {
    device: &'a Device,
    on: bool,
    /// The end of the last stage, when on.
    last: Option<Instant>,
}

impl<'a> StageClock<'a> {
    /// A clock whose first stage starts now (after a synchronisation, when `on`).
    pub fn start(device: &'a Device, on: bool) -> Result<Self> {
        let mut clock = Self { device, on, last: None };
        if on {
            clock.last = Some(clock.now()?);
        }
        Ok(clock)
    }

    /// Whether the clock is timing.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// `Instant::now()`, after a device synchronisation when on.
    pub fn now(&self) -> Result<Instant> {
        if self.on {
            self.device.synchronize()?;
        }
        Ok(Instant::now())
    }

    /// Ends a stage: its time since the last lap (or the start) goes `into`.
    pub fn lap(&mut self, into: &mut Duration) -> Result<()> {
        if let Some(last) = self.last {
            let now = self.now()?;
            *into = now - last;
            self.last = Some(now);
        }
        Ok(())
    }
}
