//! Binary entry point: parse → library → exit code; nothing else.

use clap::Parser;
use leak_sentinel::{cli::Cli, commands, exit, exit::Exit};

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
            // One line: clap's message up to its usage section (it may list the missing
            // arguments on the lines after the first).
            let text = e.to_string();
            let msg: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            let line = if msg.is_empty() {
                "invalid arguments".to_string()
            } else {
                msg.join(" ")
            };
            eprintln!("{line}");
            std::process::exit(Exit::Usage.code());
        }
    };
    let code = match commands::main(cli) {
        Ok(exit) => exit.code(),
        Err(e) => {
            eprintln!("error: {}", exit::one_line(&e));
            Exit::Usage.code()
        }
    };
    std::process::exit(code);
}
