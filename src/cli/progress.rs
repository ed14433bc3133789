//! Renders library progress as indicatif bars on stderr.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress renderer; hidden when quiet, and by indicatif when stderr is not a terminal.
pub struct Bar {
    hidden: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bar {
    /// A renderer; `hidden` suppresses all output.
    pub fn new(hidden: bool) -> Self {
        Self {
            hidden,
            bar: Mutex::new(None),
        }
    }
}

impl aos::progress::Progress for Bar {
    fn start(&self, phase: &str, total: Option<u64>) {
        if self.hidden {
            return;
        }
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{msg:24} [{bar:30}] {pos}/{len} ({per_sec}, {eta})",
                    )
                    .expect("template is valid")
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{msg:24} {spinner} {pos}")
                    .expect("template is valid"),
            ),
        };
        bar.set_message(phase.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Some(old) = self.bar.lock().expect("no panic while locked").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = self.bar.lock().expect("no panic while locked").as_ref() {
            b.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("no panic while locked").take() {
            b.finish_and_clear();
        }
    }
}
