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
                        Exit::Usage.code()
                    } else {
                        Exit::Passed.code()
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
    // A panic is a bug: the panic hook has already said where; it exits as an internal failure
    // (70), not with Rust's 101, which no CI script knows.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commands::main(cli)));
    let code = match ran {
        Ok(Ok(exit)) => exit.code(),
        Ok(Err(e)) => {
            eprintln!("error: {}", exit::one_line(&e));
            Exit::of_error(&e).code()
        }
        Err(_) => Exit::Internal.code(),
    };
    std::process::exit(code);
}
