//! Refs (stub; filled in by the refs work).
