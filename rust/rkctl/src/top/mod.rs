//! `rkctl top` (being written).
pub mod parse;
