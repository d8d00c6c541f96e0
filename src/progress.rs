//! Progress for long stages: an indicatif bar when stderr is a terminal,
//! nothing otherwise (a scheduler's log gets the stage's log lines instead).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar that draws only on a terminal.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(len: u64, what: &'static str) -> Progress {
        let bar = if std::io::stderr().is_terminal()
            && std::env::var_os("FAKTURA_NO_PROGRESS").is_none()
        {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {elapsed}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(what);
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar }
    }

    pub fn inc(&self) {
        self.bar.inc(1);
    }

    pub fn inc_by(&self, n: u64) {
        self.bar.inc(n);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
