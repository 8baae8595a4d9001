//! `malt completions SHELL` and `malt man`: generated from the one command-line definition.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Exit, Failure, Outcome};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn completions(args: &CompletionsArgs) -> Outcome {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "malt", &mut std::io::stdout());
    Ok(Exit::Done)
}

pub fn man() -> Outcome {
    let page = clap_mangen::Man::new(Cli::command());
    page.render(&mut std::io::stdout())
        .map_err(|e| Failure::error(format!("cannot write the manual page: {e}")))?;
    Ok(Exit::Done)
}
