//! Shared code of the interop tests (the tests themselves are in `tests/tests/*.rs`; the lab is
//! the `testlab` crate).
//!
//! [`dhcp6`] is a deliberately tiny DHCPv6 relay-message builder and parser, used by the
//! `dhcp6-relay-probe` helper binary to prove that Kea answers in the lab. It is test code, not
//! the project's relay codec. [`bench`] is what the benchmark binaries share.

pub mod bench;
pub mod daemons;
pub mod dhcp6;
