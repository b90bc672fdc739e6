//! `evoucher`: the command line for evoucher. Exit codes: 0 valid/done, 1 invalid/refused,
//! 2 usage or I/O error.

mod cmd;
mod util;

use clap::Parser;

fn main() {
    let cli = cmd::Cli::parse();
    let code = match cmd::run(cli) {
        Ok(outcome) => outcome as i32,
        Err(e) => {
            eprintln!("evoucher: {e}");
            util::Outcome::Error as i32
        }
    };
    std::process::exit(code);
}
