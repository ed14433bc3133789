//! Renders library progress as indicatif bars on stderr.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress renderer; hidden when quiet, and by indicatif when stderr is not a terminal.
pub struct Bar {
    hidden: bool,
    bar: Mutex<Option<ProgressBar>>,
    /// The current phase's name (the bar's message when it is not waiting).
    phase: Mutex<String>,
    /// A spinner shown while waiting outside any phase.
    spinner: Mutex<Option<ProgressBar>>,
}

impl Bar {
    /// A renderer; `hidden` suppresses all output.
    pub fn new(hidden: bool) -> Self {
        Self {
            hidden,
            bar: Mutex::new(None),
            phase: Mutex::new(String::new()),
            spinner: Mutex::new(None),
        }
    }
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
        ProgressStyle::with_template("{msg:24} {spinner} {pos}").expect("template is valid"),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
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
            None => spinner(phase.to_owned()),
        };
        bar.set_message(phase.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        phase.clone_into(&mut self.phase.lock().expect("no panic while locked"));
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

    fn waiting(&self, what: Option<&str>) {
        if self.hidden {
            return;
        }
        let bar = self.bar.lock().expect("no panic while locked");
        if let Some(b) = bar.as_ref() {
            match what {
                Some(w) => b.set_message(format!("waiting for {w}")),
                None => b.set_message(self.phase.lock().expect("no panic while locked").clone()),
            }
            return;
        }
        let mut s = self.spinner.lock().expect("no panic while locked");
        if let Some(old) = s.take() {
            old.finish_and_clear();
        }
        *s = what.map(|w| spinner(format!("waiting for {w}")));
    }
}
