// SPDX-License-Identifier: GPL-2.0
//! What userspace sees: the ioctl contract ([`uapi`], generated from the
//! one header), the misc device ([`dev`]) and what an open file owns
//! ([`fd`], named by [`handles`]), the debugfs views ([`debugfs`]) and the
//! binary occupancy map ([`map`]). This layer reaches the allocators
//! through the table (`crate::alloc`) and the module's state
//! (`crate::state`), and nothing below it imports it.

pub(crate) mod debugfs;
pub(crate) mod dev;
mod fd;
mod handles;
pub(crate) mod map;
pub(crate) mod uapi;
