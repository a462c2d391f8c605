//! Binary entry point: parse → library → exit code; nothing else.

use clap::Parser;
use leak_sentinel::{app, cli::Cli, exit::Exit};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                std::process::exit(
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    },
                );
            }
            // One line: clap's first line names the bad flag or value.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{}", first.trim());
            std::process::exit(Exit::Usage.code());
        }
    };
    let code = match app::main(cli) {
        Ok(exit) => exit.code(),
        Err(e) => {
            eprintln!("error: {}", app::one_line(&e));
            Exit::Usage.code()
        }
    };
    std::process::exit(code);
}
