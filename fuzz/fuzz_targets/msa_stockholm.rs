//! Fuzz target: the Stockholm reader, then every operation on the alignment it returns.
#![no_main]

use libfuzzer_sys::fuzz_target;

use helico::data::msa::{Alphabet, Msa, pair_by_species};

fuzz_target!(|data: &[u8]| {
    for alphabet in [Alphabet::Protein, Alphabet::Rna] {
        if let Ok(msa) = Msa::parse_stockholm(data, "fuzz", alphabet) {
            let _ = (msa.profile(), msa.deletion_mean(), msa.dedup(), msa.drop_all_gap_rows());
            let _ = msa.subsample(3, u64::from(data.len() as u32));
            let columns: Vec<usize> = (0..msa.width()).rev().step_by(2).collect();
            let _ = msa.select_columns(&columns);
            let pairing = pair_by_species(&[&msa, &msa], 16);
            let _ = Msa::concat_columns(&pairing.gather(&[&msa, &msa]));
            let _ = Msa::stack(&[msa.clone(), msa]);
        }
    }
});
