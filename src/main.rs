use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Panic reports (printed after the terminal is restored) instead of a bare message.
    let _ = color_eyre::install();
    let cli = malt::cli::Cli::parse();
    match malt::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("malt: {message}");
            ExitCode::FAILURE
        }
    }
}
