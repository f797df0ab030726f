//! Attention kernels. Every kernel computes the same function, softmax(q kᵀ · scale + mask) v,
//! and renames no parameter; they differ in speed and memory only (STYLE H5).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Reference kernel: explicit scores, mask and softmax in fp32.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MathAttentionConfig {}

/// libtorch's `scaled_dot_product_attention`, which picks a fused backend per call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SdpaAttentionConfig {}
