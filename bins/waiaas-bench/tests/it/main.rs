//! The benchmark crate's own tests: the consistency checker under its faults (moved here from
//! the end-to-end tests, so those do not depend on this crate).

mod consistency;
