//! Sans-IO IKEv1 engine.
#![forbid(unsafe_code)]
