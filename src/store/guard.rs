//! The gc guard: writers hold `gc.lock` shared while their objects are not yet named by a ref, gc holds it exclusive.
//!
//! `gc.lock` in the store directory is a plain file that stays; only OS advisory locks
//! (`flock`) on it matter, and the kernel releases them when their holder dies. A store
//! takes the shared lock before its first object write or lookup for a write
//! ([`Store::put`](super::Store::put), [`Store::batch`](super::Store::batch)) and keeps it
//! until it is dropped: a writer's later objects may link to earlier ones that only its
//! final ref moves name (a world's state nodes, named by its next checkpoint), so there is
//! no safe earlier point to let go.
//! gc takes the exclusive lock for marking and sweeping. So gc never sees a store in which
//! a writer has objects that no ref names yet: at any `--prune`, gc deletes nothing a
//! concurrent writer is about to name.
//!
//! Both sides wait for the other up to the store's lock wait, with backoff.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The file name of the guard in the store directory.
pub const GC_LOCK: &str = "gc.lock";

/// What this store holds of the guard.
#[derive(Debug)]
enum Held {
    Nothing,
    /// A writer's shared lock, released when the file closes.
    Shared {
        _file: File,
    },
    /// gc's exclusive lock: this store's own writes (gc's repack) need nothing more.
    Exclusive,
}

/// One store's handle on `gc.lock`.
#[derive(Debug)]
pub(crate) struct GcGuard {
    path: PathBuf,
    wait: Duration,
    held: Mutex<Held>,
}

/// gc's exclusive hold on the guard, released on drop.
#[derive(Debug)]
pub(crate) struct Exclusive<'g> {
    guard: &'g GcGuard,
    _file: File,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        *self.guard.lock_state() = Held::Nothing;
    }
}

impl GcGuard {
    pub(crate) fn new(root: &Path, wait: Duration) -> Self {
        Self {
            path: root.join(GC_LOCK),
            wait,
            held: Mutex::new(Held::Nothing),
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open(&self) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
    }

    /// Takes the shared lock unless this store holds the guard already. Returns whether it
    /// was taken now (the caller then reloads its view of the packs: a gc may have run).
    ///
    /// # Errors
    /// `WouldBlock` when gc held it for longer than the wait; another I/O error.
    pub(crate) fn enter_writer(&self) -> io::Result<bool> {
        let mut held = self.lock_state();
        if !matches!(*held, Held::Nothing) {
            return Ok(false);
        }
        let file = self.open()?;
        wait_for(&self.path, self.wait, || file.try_lock_shared())?;
        *held = Held::Shared { _file: file };
        Ok(true)
    }

    /// Takes the exclusive lock for gc, first letting go of this store's own shared lock
    /// (objects this store wrote but no ref names yet are garbage to its own gc).
    ///
    /// # Errors
    /// `WouldBlock` when writers or another gc held it for longer than the wait; another
    /// I/O error.
    pub(crate) fn enter_gc(&self) -> io::Result<Exclusive<'_>> {
        let mut held = self.lock_state();
        *held = Held::Nothing;
        let file = self.open()?;
        wait_for(&self.path, self.wait, || file.try_lock())?;
        *held = Held::Exclusive;
        drop(held);
        Ok(Exclusive {
            guard: self,
            _file: file,
        })
    }
}

/// Calls `try_lock` until it succeeds, with backoff, for up to `wait`.
fn wait_for(
    path: &Path,
    wait: Duration,
    mut try_lock: impl FnMut() -> Result<(), TryLockError>,
) -> io::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(e)) => return Err(e),
            Err(TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(pause.min(wait.saturating_sub(start.elapsed())));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{} is held by a live process (gc, or writers) for longer than the \
                         lock wait of {} s",
                        path.display(),
                        wait.as_secs_f64()
                    ),
                ));
            }
        }
    }
}
