//! The `aos` command-line tool: a thin layer over the `aos` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
