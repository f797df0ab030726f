//! Shared tch building blocks.

pub mod attention;
