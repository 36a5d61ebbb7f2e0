// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-image: the boot package (being written).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
