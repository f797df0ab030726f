//! Model-agnostic training: the loop, AdamW with savable state, LR schedules, EMA and
//! checkpoints.

pub mod adamw;
pub mod checkpoint;
pub mod ddp;
pub mod ema;
pub mod lm;
pub mod schedule;
pub mod trainer;
