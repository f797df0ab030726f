//! Slot `runtime.attention`: the attention kernel. A runtime choice, not a semantic one: every
//! kernel computes the same function within the parity tolerance (STYLE H5).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::nn::attention::{
    EfficientVarlenAttentionConfig, FlashVarlenAttentionConfig, MathAttentionConfig, SdpaAttentionConfig,
};

/// The attention kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Attention {
    /// Reference kernel: explicit scores, mask and softmax in fp32.
    Math(MathAttentionConfig),
    /// libtorch's `scaled_dot_product_attention` (fused flash / memory-efficient / cuDNN
    /// backends where the device supports them).
    Sdpa(SdpaAttentionConfig),
    /// Varlen FlashAttention-2 over the real tokens only (CUDA sm80+, bf16/fp16): no work on
    /// padding or across packed sequences. Where it cannot run, `sdpa` does, with a note.
    FlashVarlen(FlashVarlenAttentionConfig),
    /// The memory-efficient kernel over the real tokens only (CUDA; fp16, bf16 or fp32): as
    /// `flash_varlen`, in smaller tiles, which suits short sequences. Where it cannot run,
    /// `sdpa` does, with a note.
    EfficientVarlen(EfficientVarlenAttentionConfig),
}

impl Default for Attention {
    fn default() -> Self {
        Attention::Sdpa(SdpaAttentionConfig::default())
    }
}
