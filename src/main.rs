//! The `aos` command-line tool: a thin layer over the `aos` library.

mod cli;

/// The binary uses mimalloc: verify and send allocate many small short-lived values on
/// several threads, where glibc's allocator spent a quarter of the time (and contended).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
