//! Prioritised replay: the priority trees, the frame storage, the sampled batch, and the
//! buffer that ties them together.

pub(crate) mod batch;
pub(crate) mod prioritized;
pub(crate) mod snapshot;
pub(crate) mod storage;
pub(crate) mod sum_tree;
