// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-manifest: the manifest compiler (being written).
#![forbid(unsafe_code)]
