use std::process::ExitCode;

fn main() -> ExitCode {
    // Panic reports (printed after the terminal is restored) instead of a bare message.
    let _ = color_eyre::install();
    malt::cli::main()
}
