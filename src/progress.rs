//! Progress reporting for long operations.
//!
//! Library functions that may run for a while take a `&dyn Progress`; the CLI renders it with
//! indicatif, tests and quiet runs pass [`NoProgress`]. Calls are cheap: implementations
//! throttle rendering themselves.

/// Receives progress from a long operation.
pub trait Progress: Sync {
    /// A new phase starts, with `total` units of work if known.
    fn start(&self, phase: &str, total: Option<u64>);
    /// `n` more units of the current phase are done.
    fn advance(&self, n: u64);
    /// The current phase is finished.
    fn finish(&self);
    /// The operation waits for `what` (another process holding something it needs), or, with
    /// `None`, goes on. Called only once a wait has lasted a moment; ignored by default.
    fn waiting(&self, what: Option<&str>) {
        let _ = what;
    }
}

/// Ignores all progress.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
