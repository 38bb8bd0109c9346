//! Namespace lab.
