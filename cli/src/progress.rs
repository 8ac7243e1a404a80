//! Progress for long work (`verify`, `import`, `purge`, `export` over large stores): drawn on
//! stderr only when stderr is a terminal, never with `--json` or `--quiet`, never in colour, and
//! cleared when the work ends, so piped output and scripts see nothing extra.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{style, Style};

/// Work below this many events finishes too fast to need a bar.
pub const MIN_EVENTS: u64 = 10_000;
/// A store or import file below this many bytes is small enough to need no spinner.
pub const MIN_BYTES: u64 = 4 << 20;

/// What to draw for a piece of work of `size` (events or bytes) against its `threshold`.
pub fn wanted(style: Style, size: u64, threshold: u64) -> bool {
    style.progress && size >= threshold
}

/// A progress indicator that may be drawing nothing.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// Draws nothing.
    pub fn none() -> Progress {
        Progress(None)
    }

    /// A bar over `total` events, if [`wanted`].
    pub fn bar(what: &str, total: u64) -> Progress {
        if !wanted(style(), total, MIN_EVENTS) {
            return Progress::none();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(s) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)") {
            bar.set_style(s.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        Progress(Some(bar))
    }

    /// A spinner with the elapsed time, if [`wanted`] for work of `bytes` bytes.
    pub fn spinner(what: &str, bytes: u64) -> Progress {
        if !wanted(style(), bytes, MIN_BYTES) {
            return Progress::none();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(s) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(s);
        }
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(Some(bar))
    }

    /// Moves the bar to `done` of `total`.
    pub fn set(&self, done: u64, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total.max(done));
            bar.set_position(done);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_only_on_a_terminal_for_large_work_without_json_or_quiet() {
        let terminal = Style::decide(false, false, false, true, None);
        assert!(wanted(terminal, 1_000_000, MIN_EVENTS));
        assert!(!wanted(terminal, 10, MIN_EVENTS), "small stores finish before a bar helps");
        assert!(!wanted(Style::decide(false, false, true, false, None), 1_000_000, MIN_EVENTS), "stderr piped");
        assert!(!wanted(Style::decide(true, false, true, true, None), 1_000_000, MIN_EVENTS), "--json");
        assert!(!wanted(Style::decide(false, true, true, true, None), 1_000_000, MIN_EVENTS), "--quiet");
        assert!(wanted(Style::decide(false, false, false, true, Some("1")), 1_000_000, MIN_EVENTS), "NO_COLOR: a bar, no colour");
    }
}
