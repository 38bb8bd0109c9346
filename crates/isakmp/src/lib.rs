//! ISAKMP / IKEv1 wire codec.
#![forbid(unsafe_code)]
