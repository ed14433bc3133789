//! The JSON mapping of the data model (stub; filled in by the json work).
