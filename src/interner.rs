//! Texts numbered in order of first sight, each kept once: ingest numbers
//! a chunk's line texts and the values of its dictionary columns with it,
//! the month-end merge its subscriptions and lines.

use std::hash::BuildHasher;

use crate::FastMap;

/// Texts numbered in order of first sight, each kept once as a `T` (the
/// text itself, or what the month-end merge makes of it).
///
/// The texts lie end to end in one buffer, found by a map from their hash
/// to the last id of that hash (ids of the same hash are chained): ingest
/// meets thousands of new line texts a chunk, and a text allocated on its
/// own and kept twice (as the map's key and as the value) cost two
/// allocations and two frees a text.
pub(crate) struct Interner<T, S = foldhash::fast::FixedState> {
    bytes: Vec<u8>,
    /// Where each text ends in `bytes`.
    ends: Vec<usize>,
    /// The last id of each hash; `same_hash[id]` the id before it of that
    /// hash, or `NO_ID`.
    by_hash: FastMap<u64, u32>,
    same_hash: Vec<u32>,
    hasher: S,
    pub(crate) values: Vec<T>,
}

const NO_ID: u32 = u32::MAX;

impl<T, S: Default> Default for Interner<T, S> {
    fn default() -> Self {
        Interner {
            bytes: Vec::new(),
            ends: Vec::new(),
            by_hash: FastMap::default(),
            same_hash: Vec::new(),
            hasher: S::default(),
            values: Vec::new(),
        }
    }
}

impl<T, S: BuildHasher> Interner<T, S> {
    /// The number of `bytes`, made with `make` the first time.
    pub(crate) fn id(&mut self, bytes: &[u8], make: impl FnOnce() -> T) -> u32 {
        let hash = self.hasher.hash_one(bytes);
        let last = self.by_hash.get(&hash).copied().unwrap_or(NO_ID);
        let mut id = last;
        while id != NO_ID {
            if self.text(id) == bytes {
                return id;
            }
            id = self.same_hash[id as usize];
        }
        let id = u32::try_from(self.ends.len())
            .ok()
            .filter(|id| *id != NO_ID)
            .expect("fewer than 2^32 - 1 distinct texts");
        self.bytes.extend_from_slice(bytes);
        self.ends.push(self.bytes.len());
        self.same_hash.push(last);
        self.by_hash.insert(hash, id);
        self.values.push(make());
        id
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The text numbered `id`.
    pub(crate) fn text(&self, id: u32) -> &[u8] {
        let id = id as usize;
        let start = id.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.bytes[start..self.ends[id]]
    }
}
