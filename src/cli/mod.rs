//! Command-line parsing, dispatch, error rendering and exit codes.
//!
//! Results go to stdout, progress and diagnostics to stderr. Exit codes: 0 success, 1 failure
//! (including "problems found"), 2 usage errors, 255 internal errors.

mod air;
mod bundle;
mod cat_object;
mod completions;
mod error;
mod fsck;
mod gc;
mod hash_object;
mod history;
mod init;
mod progress;
mod refs;
mod remote;
mod world;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use aos::store::clock::FixedClock;
use aos::store::keys::FixedKeys;
use aos::store::{STORE_DIR, Store, StoreOptions};
use clap::{Parser, Subcommand};

pub use error::CliError;
pub(crate) use error::chain;

/// aos: AgentOS + AIR worlds as content-addressed, verifiable, git-like repositories.
#[derive(Parser, Debug)]
#[command(name = "aos", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Use this store directory (the `.aos` directory itself) instead of searching for one.
    #[arg(
        long,
        global = true,
        env = "AOS_DIR",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub aos_dir: Option<PathBuf>,
    /// No progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each one's help is the doc comment of its `Args` struct.
#[derive(Subcommand, Debug)]
pub enum Command {
    Init(init::InitArgs),
    HashObject(hash_object::HashObjectArgs),
    CatObject(cat_object::CatObjectArgs),
    Fsck(fsck::FsckArgs),
    Gc(gc::GcArgs),
    ShowRef(refs::ShowRefArgs),
    UpdateRef(refs::UpdateRefArgs),
    Air(air::AirArgs),
    World(world::WorldArgs),
    Send(world::SendArgs),
    State(world::StateArgs),
    Log(world::LogArgs),
    Show(world::ShowArgs),
    Snapshot(world::SnapshotArgs),
    Verify(world::VerifyArgs),
    Fork(history::ForkArgs),
    Diff(history::DiffArgs),
    Bundle(bundle::BundleArgs),
    Clone(remote::CloneArgs),
    Remote(remote::RemoteArgs),
    Fetch(remote::FetchArgs),
    Pull(remote::PullArgs),
    Push(remote::PushArgs),
    Completions(completions::CompletionsArgs),
}

/// Shared context of a command run.
pub struct Ctx {
    /// The working directory after `-C`.
    pub cwd: PathBuf,
    /// `--aos-dir` / `AOS_DIR`.
    pub aos_dir: Option<PathBuf>,
    /// `-q`.
    pub quiet: bool,
    /// `--json`.
    pub json: bool,
    /// The clock and key source stores are opened with (see [`store_options`]).
    pub options: StoreOptions,
}

/// Names the environment variable that stops the store's clock at a time (seconds since the
/// Unix epoch), so that reflog times and gc ages repeat from run to run: for tests.
pub const FIXED_TIME_ENV: &str = "AOS_FIXED_TIME";
/// Names the environment variable whose text the store's signing-key seeds are derived from,
/// instead of the store's private `keys/` files: for tests, never for real keys.
pub const FIXED_KEYS_ENV: &str = "AOS_FIXED_KEYS";

/// The store options of this run: the system clock and the store's own keys, unless
/// [`FIXED_TIME_ENV`] or [`FIXED_KEYS_ENV`] fix them.
///
/// # Errors
/// A usage error if [`FIXED_TIME_ENV`] is not a whole number of seconds.
pub fn store_options() -> Result<StoreOptions, CliError> {
    let mut options = StoreOptions::default();
    if let Some(t) = std::env::var_os(FIXED_TIME_ENV) {
        let secs: u64 = t.to_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
            CliError::usage(format!(
                "{FIXED_TIME_ENV} must be a whole number of seconds since 1970, not {t:?}"
            ))
        })?;
        options = options.with_clock(FixedClock::at_unix_secs(secs));
    }
    if let Some(k) = std::env::var_os(FIXED_KEYS_ENV) {
        options = options.with_keys(FixedKeys::from_text(&k.to_string_lossy()));
    }
    Ok(options)
}

impl Ctx {
    /// Opens the store: `--aos-dir`/`AOS_DIR` if given, else the nearest `.aos` upward.
    pub fn store(&self) -> Result<Store, CliError> {
        let store = match &self.aos_dir {
            Some(d) => Store::open_with(&self.cwd.join(d), &self.options),
            None => Store::discover_with(&self.cwd, &self.options),
        };
        store.map_err(CliError::from)
    }

    /// The progress renderer for this run (hidden with `-q` or `--json`).
    pub fn progress(&self) -> progress::Bar {
        progress::Bar::new(self.quiet || self.json)
    }

    /// Where `init` creates a store.
    pub fn init_target(&self, dir: Option<&PathBuf>) -> PathBuf {
        match (&self.aos_dir, dir) {
            (_, Some(d)) => self.cwd.join(d).join(STORE_DIR),
            (Some(a), None) => self.cwd.join(a),
            (None, None) => self.cwd.join(STORE_DIR),
        }
    }
}

/// Writes a line to stderr. A stderr that cannot be written to (`2>/dev/full`, a closed
/// terminal) loses the line; the command's result and exit code stand.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::write_err(&format!($($arg)*))
    };
}
pub(crate) use errln;

/// Writes `line` and a newline to stderr, ignoring failure (see [`errln`]).
pub(crate) fn write_err(line: &str) {
    let mut e = io::stderr().lock();
    let _ = e
        .write_all(line.as_bytes())
        .and_then(|()| e.write_all(b"\n"));
}

/// Writes to stdout, treating a closed pipe as a quiet success (like `git log | head`).
pub fn out(bytes: &[u8]) -> Result<(), CliError> {
    let mut o = io::stdout().lock();
    o.write_all(bytes)
        .and_then(|()| o.flush())
        .map_err(CliError::from)
}

/// Writes a line to stdout.
pub fn outln(line: &str) -> Result<(), CliError> {
    let mut s = String::with_capacity(line.len() + 1);
    s.push_str(line);
    s.push('\n');
    out(s.as_bytes())
}

/// Writes one JSON document and a newline to stdout.
pub fn out_json(v: &serde_json::Value) -> Result<(), CliError> {
    outln(&v.to_string())
}

/// Parses arguments, runs the command, renders errors, and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let cwd = match (&cli.chdir, std::env::current_dir()) {
        (Some(d), Ok(cur)) => cur.join(d),
        (None, Ok(cur)) => cur,
        (_, Err(e)) => {
            errln!("error: cannot read the current directory: {e}");
            return ExitCode::from(1);
        }
    };
    if !cwd.is_dir() {
        errln!("error: cannot change to {}: not a directory", cwd.display());
        return ExitCode::from(2);
    }
    let options = match store_options() {
        Ok(o) => o,
        Err(e) => return report(&e),
    };
    let ctx = Ctx {
        cwd,
        aos_dir: cli.aos_dir,
        quiet: cli.quiet,
        json: cli.json,
        options,
    };
    // A panic is a fault of aos itself: its message goes out as one, with exit code 255.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let e = CliError::internal(format!("internal error: {what}{at}"));
        errln!("error: {}", e.message);
        if let Some(h) = &e.hint {
            errln!("hint: {h}");
        }
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(&ctx, cli.command))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => report(&e),
        Err(_) => ExitCode::from(error::INTERNAL),
    }
}

/// Prints a failed command's message and hint on stderr; its exit code.
fn report(e: &CliError) -> ExitCode {
    if e.code == 0 {
        return ExitCode::SUCCESS;
    }
    if !e.message.is_empty() {
        errln!("error: {}", e.message);
    }
    if let Some(h) = &e.hint {
        errln!("hint: {h}");
    }
    ExitCode::from(e.code)
}

/// Runs the command.
fn dispatch(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Init(a) => init::run(ctx, &a),
        Command::HashObject(a) => hash_object::run(ctx, &a),
        Command::CatObject(a) => cat_object::run(ctx, &a),
        Command::Fsck(a) => fsck::run(ctx, &a),
        Command::Gc(a) => gc::run(ctx, &a),
        Command::ShowRef(a) => refs::show_ref(ctx, &a),
        Command::UpdateRef(a) => refs::update_ref(ctx, &a),
        Command::Air(a) => air::run(ctx, &a),
        Command::World(a) => world::run_world(ctx, &a),
        Command::Send(a) => world::run_send(ctx, &a),
        Command::State(a) => world::run_state(ctx, &a),
        Command::Log(a) => world::run_log(ctx, &a),
        Command::Show(a) => world::run_show(ctx, &a),
        Command::Snapshot(a) => world::run_snapshot(ctx, &a),
        Command::Verify(a) => world::run_verify(ctx, &a),
        Command::Fork(a) => history::run_fork(ctx, &a),
        Command::Diff(a) => history::run_diff(ctx, &a),
        Command::Bundle(a) => bundle::run(ctx, &a),
        Command::Clone(a) => remote::run_clone(ctx, &a),
        Command::Remote(a) => remote::run_remote(ctx, &a),
        Command::Fetch(a) => remote::run_fetch(ctx, &a),
        Command::Pull(a) => remote::run_pull(ctx, &a),
        Command::Push(a) => remote::run_push(ctx, &a),
        Command::Completions(a) => completions::run(&a),
    }
}
