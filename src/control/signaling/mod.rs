//! The WCS signaling protocol: message types and their JSON forms.

pub mod protocol;
