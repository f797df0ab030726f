//! Sequence packing for the D3PM LM: tokenized sequences, each followed by EOS, laid end to end
//! into rows of exactly `window` tokens, so no compute is spent on padding beyond each row's
//! tail. Attention stays within a sequence (`segments`), and RoPE positions restart at 0 for
//! each sequence, so a packed sequence is computed exactly as if it were alone.

use tch::{Device, Tensor};

use crate::data::seqs::Domain;
use crate::data::vocab::{EOS, PAD};

/// One tokenized sequence (no EOS yet) and its domain, as packing takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSeq {
    pub domain: Domain,
    pub ids: Vec<i64>,
}

/// One packed row on the host, before padding: its sequences' tokens end to end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackedRow {
    /// Token ids, each sequence followed by EOS.
    pub tokens: Vec<i64>,
    /// Domain index of each token.
    pub domains: Vec<i64>,
    /// Length of each sequence in the row, EOS included.
    pub seq_lens: Vec<usize>,
}

/// Packs `seqs` greedily in the given order (the caller shuffles per epoch): a sequence goes
/// into the current row if it fits, else it starts a new row. A sequence longer than
/// `window − 1` tokens is cropped to `window − 1` tokens (plus EOS) at an offset drawn from
/// `seed`, so epochs with different seeds see different crops and a run is reproducible.
pub fn pack(seqs: &[TokenSeq], window: usize, seed: u64) -> Vec<PackedRow> {
    assert!(window >= 2, "window = {window} leaves no room for a token and its EOS");
    let mut rng = SplitMix64(seed);
    let mut rows = Vec::new();
    let mut row = PackedRow::default();
    for seq in seqs {
        let keep = window - 1;
        let ids = if seq.ids.len() > keep {
            let offset = (rng.next_u64() % (seq.ids.len() - keep + 1) as u64) as usize;
            &seq.ids[offset..offset + keep]
        } else {
            &seq.ids[..]
        };
        let len = ids.len() + 1;
        if row.tokens.len() + len > window {
            rows.push(std::mem::take(&mut row));
        }
        row.tokens.extend_from_slice(ids);
        row.tokens.push(EOS);
        row.domains.extend(std::iter::repeat_n(seq.domain.index(), len));
        row.seq_lens.push(len);
    }
    if !row.tokens.is_empty() {
        rows.push(row);
    }
    rows
}

/// SplitMix64 (Steele, Lea & Flood 2014): a few lines of seeded, portable randomness for crop
/// offsets and data order, independent of libtorch's generator and of any crate's version.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A batch of packed rows as tensors. B rows of L = window tokens; S sequences in all; T real
/// (non-padding) tokens in all. Padding sits at the end of each row.
#[derive(Debug)]
pub struct PackedBatch {
    /// Clean tokens x0, PAD after the last sequence of a row: [B, L] i64.
    pub tokens: Tensor,
    /// Position of each token within its own sequence, from 0; 0 on padding: [B, L] i64.
    pub positions: Tensor,
    /// Domain index of each token; 0 on padding (never read there): [B, L] i64.
    pub domains: Tensor,
    /// Sequence number within the row, from 1; 0 on padding: [B, L] i64.
    pub segments: Tensor,
    /// Sequence boundaries over the real tokens taken row-major (`x[real]`), as varlen
    /// FlashAttention takes them: [S + 1] i32.
    pub cu_seqlens: Tensor,
    /// Longest sequence, EOS included (host value, fixed at packing time).
    pub max_seqlen: i64,
    /// Where each real token sits in the flattened [B·L] batch, in `cu_seqlens` order: [T]
    /// i64. Known when packing, so gathering the real tokens on a GPU needs no `nonzero`
    /// (which reads the count back and stalls the host once per micro-batch).
    pub real_index: Tensor,
}

impl PackedBatch {
    /// Pads `rows` to `window` tokens each and stacks them into a batch on the CPU.
    pub fn new(rows: &[PackedRow], window: usize) -> PackedBatch {
        let n = rows.len() * window;
        let mut tokens = vec![PAD; n];
        let mut positions = vec![0i64; n];
        let mut domains = vec![0i64; n];
        let mut segments = vec![0i64; n];
        let mut cu_seqlens = vec![0i32];
        let mut max_seqlen = 0;
        let mut real_index = Vec::new();
        for (b, row) in rows.iter().enumerate() {
            assert!(row.tokens.len() <= window, "row {b} holds {} tokens, window is {window}", row.tokens.len());
            let base = b * window;
            tokens[base..base + row.tokens.len()].copy_from_slice(&row.tokens);
            domains[base..base + row.domains.len()].copy_from_slice(&row.domains);
            let mut at = base;
            for (segment, &len) in (1..).zip(&row.seq_lens) {
                for (i, p) in (at..at + len).zip(0..) {
                    positions[i] = p;
                    segments[i] = segment;
                }
                real_index.extend(at as i64..(at + len) as i64);
                at += len;
                let end = cu_seqlens.last().copied().unwrap_or(0) + len as i32;
                cu_seqlens.push(end);
                max_seqlen = max_seqlen.max(len as i64);
            }
        }
        let shape = [rows.len() as i64, window as i64];
        PackedBatch {
            tokens: Tensor::from_slice(&tokens).view(shape),
            positions: Tensor::from_slice(&positions).view(shape),
            domains: Tensor::from_slice(&domains).view(shape),
            segments: Tensor::from_slice(&segments).view(shape),
            cu_seqlens: Tensor::from_slice(&cu_seqlens),
            max_seqlen,
            real_index: Tensor::from_slice(&real_index),
        }
    }

    /// The same batch on `device`. The copies do not wait for the device: a blocking copy
    /// synchronises the host with every kernel queued before it, once per tensor.
    pub fn to_device(&self, device: Device) -> PackedBatch {
        let put = |t: &Tensor| t.to_device_(device, t.kind(), true, false);
        PackedBatch {
            tokens: put(&self.tokens),
            positions: put(&self.positions),
            domains: put(&self.domains),
            segments: put(&self.segments),
            cu_seqlens: put(&self.cu_seqlens),
            max_seqlen: self.max_seqlen,
            real_index: put(&self.real_index),
        }
    }

    /// Which positions hold a sequence token (EOS included) rather than padding: [B, L] bool.
    pub fn real(&self) -> Tensor {
        self.segments.gt(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn seq(domain: Domain, ids: &[i64]) -> TokenSeq {
        TokenSeq { domain, ids: ids.to_vec() }
    }

    fn to_vec(t: &Tensor) -> Vec<i64> {
        Vec::<i64>::try_from(t.flatten(0, -1).to_kind(Kind::Int64)).unwrap()
    }

    #[test]
    fn greedy_rows_with_eos_and_padding() {
        let seqs =
            [seq(Domain::Protein, &[10, 11, 12]), seq(Domain::Rna, &[30]), seq(Domain::Smiles, &[40, 41, 42, 43])];
        let rows = pack(&seqs, 6, 0);
        // [10 11 12 EOS 30 EOS] then [40 41 42 43 EOS PAD].
        assert_eq!(rows.len(), 2);
        let batch = PackedBatch::new(&rows, 6);
        assert_eq!(to_vec(&batch.tokens), [10, 11, 12, EOS, 30, EOS, 40, 41, 42, 43, EOS, PAD]);
        assert_eq!(to_vec(&batch.positions), [0, 1, 2, 3, 0, 1, 0, 1, 2, 3, 4, 0]);
        assert_eq!(to_vec(&batch.segments), [1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 0]);
        assert_eq!(to_vec(&batch.domains), [1, 1, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(to_vec(&batch.cu_seqlens), [0, 4, 6, 11]);
        assert_eq!(batch.cu_seqlens.kind(), Kind::Int);
        assert_eq!(batch.max_seqlen, 5);
        // cu_seqlens index the real tokens taken row-major.
        let real = batch.tokens.masked_select(&batch.real());
        assert_eq!(real.size(), [11]);
        assert_eq!(to_vec(&real.narrow(0, 6, 5)), [40, 41, 42, 43, EOS]);
        assert_eq!(to_vec(&batch.real_index), to_vec(&batch.real().flatten(0, 1).nonzero().squeeze_dim(1)));
    }

    #[test]
    fn crops_are_seeded_and_fill_a_row() {
        let long: Vec<i64> = (100..200).collect();
        let seqs = [seq(Domain::Protein, &long)];
        let offsets: Vec<i64> = (0..8).map(|seed| pack(&seqs, 8, seed)[0].tokens[0] - 100).collect();
        for seed in 0..8 {
            let rows = pack(&seqs, 8, seed);
            assert_eq!(rows.len(), 1);
            let row = &rows[0];
            assert_eq!(row.tokens.len(), 8);
            assert_eq!(row.tokens[7], EOS);
            // Cropping keeps a contiguous run of the sequence.
            assert!(row.tokens[..7].windows(2).all(|w| w[1] == w[0] + 1));
            assert_eq!(pack(&seqs, 8, seed), rows, "same seed, same crop");
        }
        assert!(offsets.iter().all(|&o| (0..=93).contains(&o)));
        assert!(offsets.windows(2).any(|w| w[0] != w[1]), "seeds should move the crop: {offsets:?}");
    }

    #[test]
    fn empty_sequences_and_exact_fits() {
        let seqs = [seq(Domain::Rna, &[]), seq(Domain::Rna, &[30, 31, 32]), seq(Domain::Rna, &[33])];
        let rows = pack(&seqs, 5, 0);
        assert_eq!(rows.iter().map(|r| r.seq_lens.clone()).collect::<Vec<_>>(), [vec![1, 4], vec![2]]);
        let batch = PackedBatch::new(&rows, 5);
        assert_eq!(to_vec(&batch.cu_seqlens), [0, 1, 5, 7]);
    }
}
