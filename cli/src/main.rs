//! `evoucher`: the command line for evoucher. Exit codes: 0 valid/done, 1 invalid/refused,
//! 2 usage or I/O error.

mod cmd;
mod util;

use clap::Parser;

fn main() {
    let cli = cmd::Cli::parse();
    if !matches!(cli.command, cmd::Command::Serve(_)) {
        quiet_on_closed_pipe();
    }
    let code = match cmd::run(cli) {
        Ok(outcome) => outcome as i32,
        Err(e) => {
            eprintln!("evoucher: {e}");
            util::Outcome::Error as i32
        }
    };
    std::process::exit(code);
}

/// A command whose output goes into a closed pipe (`evoucher ledger list … | head -1`) ends
/// quietly, as `cat` or `grep` do, instead of panicking: the default action of SIGPIPE is
/// restored (Rust ignores it, so a write fails and `println!` panics). Not for `serve`, which
/// writes to sockets.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
