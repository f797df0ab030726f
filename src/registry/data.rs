//! Slot `data`: where training examples come from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::prep::loader::Af3DataConfig;
use crate::data::seqs::SequencesConfig;

/// The data source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Data {
    /// SMILES, protein and RNA sequence files, packed into fixed windows.
    Sequences(SequencesConfig),
    /// Preprocessed structures (`helico preprocess`) for AF3 models: sampled, cropped,
    /// featurized and collated into padded batches.
    Af3(Af3DataConfig),
}

impl Default for Data {
    fn default() -> Self {
        Data::Sequences(SequencesConfig::default())
    }
}

/// What `Experiment::problems` guarantees to code that reads sequence data.
pub const SEQUENCES_ONLY: &str = "Experiment::problems pairs model d3pm_lm with data = @sequences";

impl Data {
    /// The sequence files, when this is the `sequences` source.
    pub fn sequences(&self) -> Option<&SequencesConfig> {
        match self {
            Data::Sequences(s) => Some(s),
            Data::Af3(_) => None,
        }
    }

    pub fn sequences_mut(&mut self) -> Option<&mut SequencesConfig> {
        match self {
            Data::Sequences(s) => Some(s),
            Data::Af3(_) => None,
        }
    }
}
