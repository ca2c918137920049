//! SDK placeholder.
#![no_std]
