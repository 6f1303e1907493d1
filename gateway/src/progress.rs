//! Progress of long command-line work (`project rebuild`, `audit verify --all`, `accountd-bench`): a
//! spinner with the elapsed time (and, where the work counts, how many events it has done and at
//! what rate) on stderr, drawn only when stderr is a terminal, so that output sent to a file or a
//! pipe stays clean. Work that prints to stdout as it goes gets the
//! spinner only when stdout is elsewhere (a file), so the two never share a line.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// When the work writes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Only after it is done (or never).
    AtTheEnd,
    /// While it runs.
    AsItGoes,
}

/// Runs `work` under a spinner saying `what`; the spinner is cleared when it ends.
pub async fn with_spinner<T>(what: &str, stdout: Stdout, work: impl Future<Output = T>) -> T {
    let shares_the_terminal = stdout == Stdout::AsItGoes && std::io::stdout().is_terminal();
    let bar = if shares_the_terminal {
        ProgressBar::hidden()
    } else {
        spinner(what)
    };
    let outcome = work.await;
    bar.finish_and_clear();
    outcome
}

/// Runs `work` under a spinner saying `what` and how many `unit`s `done` counts so far, with the
/// rate; the spinner is cleared when it ends. The work's output comes at the end.
pub async fn with_progress<T>(
    what: &str,
    unit: &str,
    done: &AtomicU64,
    work: impl Future<Output = T>,
) -> T {
    let bar = spinner(what);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{spinner}} {{msg}}: {{human_pos}} {unit} ({{per_sec}}, {{elapsed}})"
    )) {
        bar.set_style(style);
    }
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = tick.tick() => bar.set_position(done.load(Ordering::Relaxed)),
        }
    };
    bar.finish_and_clear();
    outcome
}

fn spinner(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    // The template is a constant known to parse; the default style is a fine fallback anyway.
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
