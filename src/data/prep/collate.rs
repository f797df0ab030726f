//! Collation: the examples of a batch, each with its own N tokens and A atoms, stacked into one
//! tensor per feature of shape [B, N_max, …], [B, A_max, …] or [B, N_max, N_max], with masks
//! that say which positions are real. Padding goes at the end of every token and atom axis, so
//! indices within an example (`frame_atom_index`, `atom_to_token_idx`) stay valid unchanged.
//!
//! Every feature is one row of one table ([`BatchedFeatures`]): its name, which of its axes are
//! tokens or atoms, and its pad value, chosen for what the feature means:
//!
//! | pad | features | why |
//! |---|---|---|
//! | −1 | `token_index`, `residue_index`, `asym_id`, `entity_id`, `sym_id`, `ref_space_uid`, `frame_atom_index` | an id or index no real position has ("absent"), so padding never equals a real chain, residue or atom |
//! | 0 | one-hot features (`restype`, `ref_element`, `ref_atom_name_chars`): a row of no class | contributes nothing through a linear layer |
//! | 0 | masks and flags (`ref_mask`, `has_frame`, `coordinate_mask`, `is_*`, `*_rep_atom_mask`), `token_bonds`, positions, charges | "not there" |
//! | 0 | `atom_to_token_idx`, `atom_to_tokatom_idx` | a valid index (token 0 exists in every example), so gathers never go out of range; scatters from atoms to tokens must weight by `atom_pad_mask` (the Python reference's convention) |
//!
//! Per-example values (`resolution`, [B, 1]) have no token or atom axis and are not padded.
//! MSA features ([`BatchedMsa`]) add a row axis, padded to the batch's deepest MSA with gap
//! rows (class 31, no deletion) and marked by `msa_pad_mask [B, S]`.
//!
//! The masks are explicit: `token_pad_mask [B, N]` and `atom_pad_mask [B, A]`, true at real
//! positions (STYLE H8: never guess a mask from pad values). With fixed sizes every padded token
//! is a query row with no real key: attention must mask keys only and let such rows attend to
//! something, or their softmax is NaN (the Python reference's 64-multiple padding failed so).
//!
//! Sizes ([`Padding`]): the batch's largest example, or fixed sizes (the crop size and an atom
//! budget) so that every batch has one shape, which CUDA graphs and the caching allocator like.

use std::time::Instant;

use tch::{Device, Kind, Tensor};

use super::PrepError;
use super::loader::{Draw, Example, StageTimes};
use crate::data::crop::Crop;
use crate::data::features::Features;
use crate::data::msa::MsaFeatures;

/// Atoms of the largest standard token (Protenix `atom_to_tokatom_idx` runs 0–23: a guanylate
/// with its OP3); every other token has one atom. `tokens × 24` atoms always fit a crop.
pub const MAX_ATOMS_PER_TOKEN: usize = 24;

/// What a dimension of a feature counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Tokens: padded to the batch's N.
    Token,
    /// Atoms: padded to the batch's A.
    Atom,
    /// MSA rows: padded to the batch's S (always the largest in the batch).
    MsaRow,
    /// Anything else (classes, coordinates): the same in every example, never padded.
    Fixed,
}

/// One row of the table: a feature's name, tensor, axes (after the batch axis) and pad value.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub name: &'static str,
    pub tensor: &'a Tensor,
    pub axes: &'static [Axis],
    pub pad: f64,
}

/// The sizes a batch is padded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// The largest N and A among the batch's examples.
    BatchMax,
    /// Always these (an example that does not fit is an error naming it).
    Fixed { tokens: usize, atoms: usize },
}

/// The padded size of each kind of axis.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    tokens: i64,
    atoms: i64,
    msa_rows: i64,
}

/// Defines a struct of batched tensors from a table of `name: [axes] = pad` rows over a source
/// struct of unbatched tensors, with the code that pads and stacks them and the table itself.
macro_rules! batched {
    ($(#[$meta:meta])* $batched:ident from $source:ty {
        $( $(#[$doc:meta])* $name:ident: [$($axis:ident),+] = $pad:expr, )+
    }) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $batched {
            $( $(#[$doc])* pub $name: Tensor, )+
        }

        impl $batched {
            fn stack(examples: &[&$source], sizes: Sizes) -> $batched {
                $batched { $( $name: pad_stack(examples.iter().map(|e| &e.$name), &[$(Axis::$axis),+], $pad, sizes), )+ }
            }

            /// The table over the batched tensors.
            pub fn columns(&self) -> Vec<Column<'_>> {
                vec![$( Column { name: stringify!($name), tensor: &self.$name, axes: &[$(Axis::$axis),+], pad: $pad }, )+]
            }

            /// The same table over one example's tensors (unbatched, unpadded).
            pub fn example_columns(example: &$source) -> Vec<Column<'_>> {
                vec![$( Column { name: stringify!($name), tensor: &example.$name, axes: &[$(Axis::$axis),+], pad: $pad }, )+]
            }
        }
    };
}

batched! {
    /// Every [`Features`] tensor of a batch, padded and stacked: [B, …] where the example has
    /// [N, …] or [A, …]. Shapes and meanings are those of [`Features`].
    BatchedFeatures from Features {
        /// [B, N] i64.
        token_index: [Token] = -1.0,
        /// [B, N] i64.
        residue_index: [Token] = -1.0,
        /// [B, N] i64.
        asym_id: [Token] = -1.0,
        /// [B, N] i64.
        entity_id: [Token] = -1.0,
        /// [B, N] i64.
        sym_id: [Token] = -1.0,
        /// [B, N, 32] f32.
        restype: [Token, Fixed] = 0.0,
        /// [B, N, N] f32.
        token_bonds: [Token, Token] = 0.0,
        /// [B, N] i64.
        has_frame: [Token] = 0.0,
        /// [B, N, 3] i64.
        frame_atom_index: [Token, Fixed] = -1.0,
        /// [B, A, 3] f32.
        ref_pos: [Atom, Fixed] = 0.0,
        /// [B, A] i64.
        ref_mask: [Atom] = 0.0,
        /// [B, A, 128] f32.
        ref_element: [Atom, Fixed] = 0.0,
        /// [B, A] f32.
        ref_charge: [Atom] = 0.0,
        /// [B, A, 4, 64] f32.
        ref_atom_name_chars: [Atom, Fixed, Fixed] = 0.0,
        /// [B, A] i64.
        ref_space_uid: [Atom] = -1.0,
        /// [B, A] i64.
        atom_to_token_idx: [Atom] = 0.0,
        /// [B, A] i64.
        atom_to_tokatom_idx: [Atom] = 0.0,
        /// [B, A] i64.
        is_protein: [Atom] = 0.0,
        /// [B, A] i64.
        is_rna: [Atom] = 0.0,
        /// [B, A] i64.
        is_dna: [Atom] = 0.0,
        /// [B, A] i64.
        is_ligand: [Atom] = 0.0,
        /// [B, A] i64.
        pae_rep_atom_mask: [Atom] = 0.0,
        /// [B, A] i64.
        distogram_rep_atom_mask: [Atom] = 0.0,
        /// [B, A] i64.
        plddt_m_rep_atom_mask: [Atom] = 0.0,
        /// [B, A, 3] f32.
        coordinate: [Atom, Fixed] = 0.0,
        /// [B, A] i64.
        coordinate_mask: [Atom] = 0.0,
        /// [B, 1] f32 (per example, never padded).
        resolution: [Fixed] = -1.0,
    }
}

batched! {
    /// The MSA features of a batch (`MsaFeatures`, AF3 Table 5). Rows are padded to the
    /// batch's deepest MSA with gap rows (class 31, no deletion), which `msa_pad_mask` marks.
    BatchedMsa from MsaFeatures {
        /// [B, S, N] i64 classes; gap (31) where padded.
        msa: [MsaRow, Token] = 31.0,
        /// [B, S, N] f32.
        has_deletion: [MsaRow, Token] = 0.0,
        /// [B, S, N] f32.
        deletion_value: [MsaRow, Token] = 0.0,
        /// [B, N, 32] f32.
        profile: [Token, Fixed] = 0.0,
        /// [B, N] f32.
        deletion_mean: [Token] = 0.0,
    }
}

/// A collated batch: what each example is, and its features padded into shared tensors.
#[derive(Debug)]
pub struct Af3Batch {
    /// Entry keys, one per example.
    pub keys: Vec<String>,
    /// What each example was drawn from (entry, and the unit its crop centres on).
    pub draws: Vec<Draw>,
    /// Each example's crop, as indices into its entry's tokens.
    pub crops: Vec<Crop>,
    /// The structure atom behind each real atom, per example.
    pub atoms: Vec<Vec<usize>>,
    /// Real tokens and atoms per example.
    pub n_tokens: Vec<usize>,
    pub n_atoms: Vec<usize>,
    /// True at real tokens: [B, N] bool.
    pub token_pad_mask: Tensor,
    /// True at real atoms: [B, A] bool.
    pub atom_pad_mask: Tensor,
    /// MSA rows per example.
    pub n_msa_rows: Vec<usize>,
    /// True at real MSA rows: [B, S] bool.
    pub msa_pad_mask: Tensor,
    pub features: BatchedFeatures,
    pub msa: BatchedMsa,
    /// Seconds spent making the batch, summed over its examples, collation included.
    pub times: StageTimes,
}

impl Af3Batch {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Token and atom positions of the padded tensors: (N, A).
    pub fn padded_sizes(&self) -> (usize, usize) {
        let size = |t: &Tensor| t.size().get(1).copied().unwrap_or(0) as usize;
        (size(&self.token_pad_mask), size(&self.atom_pad_mask))
    }
}

/// Stacks `examples` into one batch padded as `padding` says (see the module doc).
pub fn collate(examples: Vec<Example>, padding: Padding) -> Result<Af3Batch, PrepError> {
    let started = Instant::now();
    let n_tokens: Vec<usize> = examples.iter().map(|e| e.crop.tokens.len()).collect();
    let n_atoms: Vec<usize> = examples.iter().map(|e| e.features.atoms.len()).collect();
    let n_msa_rows: Vec<usize> = examples.iter().map(|e| e.msa.depth() as usize).collect();
    let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0);
    let (tokens, atoms) = match padding {
        Padding::BatchMax => (max(&n_tokens), max(&n_atoms)),
        Padding::Fixed { tokens, atoms } => {
            for (e, (&n, &a)) in examples.iter().zip(n_tokens.iter().zip(&n_atoms)) {
                if n > tokens || a > atoms {
                    return Err(PrepError::TooLarge { key: e.key.clone(), tokens: n, atoms: a, max: (tokens, atoms) });
                }
            }
            (tokens, atoms)
        }
    };
    let sizes = Sizes { tokens: tokens as i64, atoms: atoms as i64, msa_rows: max(&n_msa_rows) as i64 };
    let features: Vec<&Features> = examples.iter().map(|e| &e.features).collect();
    let stacked = BatchedFeatures::stack(&features, sizes);
    let msas: Vec<&MsaFeatures> = examples.iter().map(|e| &e.msa).collect();
    let msa = BatchedMsa::stack(&msas, sizes);
    let mask = |counts: &[usize], size: i64| {
        let counts: Vec<i64> = counts.iter().map(|&c| c as i64).collect();
        let positions = Tensor::arange(size, (Kind::Int64, Device::Cpu)).unsqueeze(0); // [1, size]
        positions.lt_tensor(&Tensor::from_slice(&counts).unsqueeze(1)) // [B, size]
    };
    let token_pad_mask = mask(&n_tokens, sizes.tokens);
    let atom_pad_mask = mask(&n_atoms, sizes.atoms);
    let msa_pad_mask = mask(&n_msa_rows, sizes.msa_rows);
    let mut times = StageTimes::default();
    let (mut keys, mut draws, mut crops, mut atom_lists) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in examples {
        times += e.times;
        keys.push(e.key);
        draws.push(e.draw);
        crops.push(e.crop);
        atom_lists.push(e.features.atoms);
    }
    times.collate = started.elapsed().as_secs_f64();
    Ok(Af3Batch {
        keys,
        draws,
        crops,
        atoms: atom_lists,
        n_tokens,
        n_atoms,
        token_pad_mask,
        atom_pad_mask,
        n_msa_rows,
        msa_pad_mask,
        features: stacked,
        msa,
        times,
    })
}

/// One tensor [B, …] from per-example tensors, each placed at the start of its row and the rest
/// filled with `pad`.
fn pad_stack<'t>(tensors: impl Iterator<Item = &'t Tensor>, axes: &[Axis], pad: f64, sizes: Sizes) -> Tensor {
    let tensors: Vec<&Tensor> = tensors.collect();
    let first = tensors.first().expect("a batch has at least one example");
    let mut shape = vec![tensors.len() as i64];
    for (d, axis) in axes.iter().enumerate() {
        shape.push(match axis {
            Axis::Token => sizes.tokens,
            Axis::Atom => sizes.atoms,
            Axis::MsaRow => sizes.msa_rows,
            Axis::Fixed => first.size()[d],
        });
    }
    if tensors.len() == 1 && first.size() == shape[1..] {
        // One example that needs no padding (batch size 1, padded to the batch): a view.
        return first.unsqueeze(0);
    }
    let out = Tensor::full(&shape, pad, (first.kind(), Device::Cpu));
    for (b, t) in tensors.iter().enumerate() {
        assert_eq!(t.dim(), axes.len(), "a feature's rank matches its axes in the collation table");
        let mut view = out.get(b as i64);
        for (d, size) in t.size().into_iter().enumerate() {
            view = view.narrow(d as i64, 0, size);
        }
        view.copy_(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(tokens: i64, atoms: i64) -> Sizes {
        Sizes { tokens, atoms, msa_rows: 0 }
    }

    #[test]
    fn rows_are_placed_first_and_padded_after() {
        let a = Tensor::from_slice(&[1i64, 2, 3]);
        let b = Tensor::from_slice(&[4i64]);
        let out = pad_stack([&a, &b].into_iter(), &[Axis::Token], -1.0, sizes(4, 0));
        assert_eq!(Vec::<i64>::try_from(out.view([-1])).unwrap(), [1, 2, 3, -1, 4, -1, -1, -1]);
        assert_eq!(out.kind(), Kind::Int64);
    }

    #[test]
    fn pair_features_pad_both_token_axes_and_fixed_axes_stay() {
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        let out = pad_stack([&a].into_iter(), &[Axis::Token, Axis::Token], 0.0, sizes(3, 0));
        assert_eq!(out.size(), [1, 3, 3]);
        assert_eq!(out.sum(Kind::Float).double_value(&[]), 4.0);
        let r = Tensor::ones([2, 5], (Kind::Float, Device::Cpu));
        assert_eq!(pad_stack([&r].into_iter(), &[Axis::Atom, Axis::Fixed], 0.0, sizes(0, 6)).size(), [1, 6, 5]);
    }
}
