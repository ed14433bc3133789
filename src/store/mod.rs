//! The `.aos` store: objects (loose and packed), refs with reflogs, fsck and gc.

pub mod fs;
pub mod refs;
