//! Progress for long work (`verify`, `import`, `purge`, `export` over large stores): drawn on
//! stderr only when stderr is a terminal, never with `--json` or `--quiet`, never in colour, and
//! cleared when the work ends, so piped output and scripts see nothing extra.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{style, Style};

/// Work below this many events finishes too fast to need a bar.
pub const MIN_EVENTS: u64 = 10_000;

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

    /// Moves the bar to `done` of `total`.
    pub fn set(&self, done: u64, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total.max(done));
            bar.set_position(done);
        }
    }
}

/// A bar that appears once the work reports its size (the core's `*_with_progress` calls), if
/// that size is [`wanted`]; else it draws nothing.
pub struct LazyBar {
    what: &'static str,
    bar: Option<Progress>,
}

impl LazyBar {
    /// A bar for `what`, drawn from the first report on.
    pub fn new(what: &'static str) -> LazyBar {
        LazyBar { what, bar: None }
    }

    /// `done` of `total` events.
    pub fn set(&mut self, done: u64, total: u64) {
        let what = self.what;
        self.bar.get_or_insert_with(|| Progress::bar(what, total)).set(done, total);
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
