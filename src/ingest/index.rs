//! The reference data a usage row is checked against, indexed for the hot
//! loop of `rows`: a subscription's ids and checks in one slot of a table
//! fetched ahead, each profile's first period computed once.

use std::hash::BuildHasher;

use chrono::NaiveDate;

use crate::FastMap;
use crate::day_sums::SubscriptionTexts;
use crate::model::Reference;

/// The reference data a usage row is checked against, indexed for the hot
/// loop: hash lookups by id, each profile's first period computed once.
pub(super) struct ReferenceIndex<'a> {
    /// Each profile's account, to name why a row's ids do not match.
    pub(super) profile_accounts: FastMap<&'a str, &'a str>,
    subscriptions: SubscriptionTable<'a>,
    /// What the usage columns hold for each subscription's rows, by
    /// position (empty for a subscription of no known profile, which no
    /// row matches).
    pub(super) subscription_texts: std::sync::Arc<SubscriptionTexts>,
}

/// A subscription as the row checks need it, with its profile's.
#[derive(Clone, Copy)]
pub(super) struct SubscriptionCheck {
    /// Its position in [`ReferenceIndex::subscription_texts`].
    pub(super) position: u32,
    pub(super) start_date: NaiveDate,
    pub(super) currency: crate::model::Currency,
    pub(super) first_period_start: NaiveDate,
}

impl<'a> ReferenceIndex<'a> {
    pub(super) fn new(reference: &'a Reference, billing_start: NaiveDate) -> ReferenceIndex<'a> {
        let mut subscriptions = SubscriptionTable::with_capacity(reference.subscriptions.len());
        let mut subscription_texts = Vec::with_capacity(reference.subscriptions.len());
        for (s, position) in reference.subscriptions.values().zip(0..) {
            // A subscription whose profile is unknown matches no row.
            let Some(profile) = reference.profiles.get(&s.profile_id) else {
                subscription_texts.push([""; 4]);
                continue;
            };
            subscription_texts.push([
                profile.account_id.as_str(),
                s.profile_id.as_str(),
                s.id.as_str(),
                profile.currency.code(),
            ]);
            let check = SubscriptionCheck {
                position,
                start_date: s.start_date,
                currency: profile.currency,
                first_period_start: profile.first_period(billing_start).start,
            };
            subscriptions.insert([&s.id, &s.profile_id, &profile.account_id], check);
        }
        ReferenceIndex {
            profile_accounts: reference
                .profiles
                .iter()
                .map(|(id, p)| (id.as_str(), p.account_id.as_str()))
                .collect(),
            subscriptions,
            subscription_texts: SubscriptionTexts::new(subscription_texts.into_iter()).into(),
        }
    }

    /// Starts looking up a subscription id: the processor fetches its slot
    /// while other work goes on (the row's other fields, or the row before
    /// it when the id is a guess at the next row's).
    pub(super) fn probe(&self, id: &str) -> Probe {
        self.subscriptions.probe(id)
    }

    /// The subscription of this id (`probe` of it) if it is under this
    /// profile under this account.
    pub(super) fn subscription(
        &self,
        probe: Probe,
        [id, profile, account]: [&str; 3],
    ) -> Option<&SubscriptionCheck> {
        self.subscriptions.find(probe, [id, profile, account])
    }
}

/// Subscriptions by id in an open-addressed table whose 128-byte slots
/// hold the subscription's id and checks, and the number of its owner
/// (profile and account), whose ids are kept once each in one small arena.
/// Usage rows name subscriptions in no order, so a lookup in a table this
/// large (2.5 MB for 20,000 subscriptions) misses the cache; here it
/// misses once, on a slot fetched ahead ([`SubscriptionTable::probe`]),
/// and the owners' ids (a few hundred KB for 5,000 profiles, read by
/// every row) stay cached. Ids of 80-character accounts made every slot
/// spill its ids to the heap when all three ids were kept in the slot:
/// three more misses a row. At most half full: 256 to 512 bytes a
/// subscription.
struct SubscriptionTable<'a> {
    slots: Vec<Slot>,
    /// The subscription ids that do not fit in a slot.
    spilled: Vec<&'a str>,
    /// Profile and account ids, one after another, for each owner.
    arena: Vec<u8>,
    /// Each owner's profile id and account id, as ranges of `arena`.
    owners: Vec<[(u32, u32); 2]>,
    /// Owners by their ids, while the table is built.
    owner_numbers: crate::FastMap<[&'a str; 2], u32>,
    hasher: foldhash::fast::FixedState,
}

/// Bytes of a subscription id a slot holds.
const INLINE_IDS: usize = 96;

#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct Slot {
    /// 0 for an empty slot, else from the id's hash (never 0).
    tag: u32,
    check: SubscriptionCheck,
    /// The subscription's owner in [`SubscriptionTable::owners`].
    owner: u32,
    /// The length of the subscription's id.
    len: u8,
    spilled: bool,
    /// The subscription's id; when it does not fit (`spilled`), the first
    /// four bytes are its index in `spilled`.
    ids: [u8; INLINE_IDS],
}

const EMPTY: Slot = Slot {
    tag: 0,
    check: SubscriptionCheck {
        position: 0,
        start_date: NaiveDate::MIN,
        currency: crate::model::Currency {
            code: [0; 3],
            minor_unit: 0,
        },
        first_period_start: NaiveDate::MIN,
    },
    owner: 0,
    len: 0,
    spilled: false,
    ids: [0; INLINE_IDS],
};

/// Where an id's lookup starts in a [`SubscriptionTable`].
#[derive(Clone, Copy)]
pub(super) struct Probe {
    at: usize,
    tag: u32,
}

impl<'a> SubscriptionTable<'a> {
    fn with_capacity(n: usize) -> SubscriptionTable<'a> {
        let len = (2 * n).next_power_of_two().max(16);
        SubscriptionTable {
            slots: vec![EMPTY; len],
            spilled: Vec::new(),
            arena: Vec::new(),
            owners: Vec::new(),
            owner_numbers: Default::default(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    /// The first slot to look at and the tag for `id`.
    fn start(&self, id: &str) -> Probe {
        let hash = self.hasher.hash_one(id);
        let mask = self.slots.len() - 1;
        Probe {
            at: (hash as usize) & mask,
            tag: (hash >> 32) as u32 | 1,
        }
    }

    /// [`SubscriptionTable::start`], with the slot fetched into cache.
    fn probe(&self, id: &str) -> Probe {
        let probe = self.start(id);
        prefetch(&self.slots[probe.at]);
        probe
    }

    /// Adds a subscription by its ids (subscription, profile, account);
    /// subscription ids are unique (the reference's map keys).
    fn insert(&mut self, [id, profile, account]: [&'a str; 3], check: SubscriptionCheck) {
        let Probe { mut at, tag } = self.start(id);
        while self.slots[at].tag != 0 {
            at = (at + 1) & (self.slots.len() - 1);
        }
        let mut slot = Slot {
            tag,
            check,
            owner: self.owner(profile, account),
            ..EMPTY
        };
        match u8::try_from(id.len()) {
            Ok(len) if id.len() <= INLINE_IDS => {
                slot.len = len;
                slot.ids[..id.len()].copy_from_slice(id.as_bytes());
            }
            _ => {
                slot.spilled = true;
                let index =
                    u32::try_from(self.spilled.len()).expect("fewer than 2^32 subscriptions");
                slot.ids[..4].copy_from_slice(&index.to_le_bytes());
                self.spilled.push(id);
            }
        }
        self.slots[at] = slot;
    }

    /// The number of the owner with these ids, added if new.
    fn owner(&mut self, profile: &'a str, account: &'a str) -> u32 {
        if let Some(&number) = self.owner_numbers.get(&[profile, account]) {
            return number;
        }
        let number = u32::try_from(self.owners.len()).expect("fewer than 2^32 profiles");
        let mut range = |id: &str| {
            let start = u32::try_from(self.arena.len()).expect("ids under 4 GB");
            self.arena.extend_from_slice(id.as_bytes());
            (start, id.len() as u32)
        };
        let owner = [range(profile), range(account)];
        self.owners.push(owner);
        self.owner_numbers.insert([profile, account], number);
        number
    }

    /// The check of the subscription of these ids (subscription, profile,
    /// account), `probe` being for the first.
    fn find(&self, probe: Probe, ids: [&str; 3]) -> Option<&SubscriptionCheck> {
        let Probe { mut at, tag } = probe;
        loop {
            let slot = &self.slots[at];
            if slot.tag == 0 {
                return None;
            }
            if slot.tag == tag {
                let stored = self.ids_of(slot);
                if stored[0] == ids[0].as_bytes() {
                    let matches = stored[1] == ids[1].as_bytes() && stored[2] == ids[2].as_bytes();
                    return matches.then_some(&slot.check);
                }
            }
            at = (at + 1) & (self.slots.len() - 1);
        }
    }

    /// The ids (subscription, profile, account) a slot stands for.
    fn ids_of<'s>(&'s self, slot: &'s Slot) -> [&'s [u8]; 3] {
        let id = if slot.spilled {
            let index = u32::from_le_bytes(slot.ids[..4].try_into().expect("four bytes"));
            self.spilled[index as usize].as_bytes()
        } else {
            &slot.ids[..usize::from(slot.len)]
        };
        let [profile, account] = self.owners[slot.owner as usize]
            .map(|(start, len)| &self.arena[start as usize..(start + len) as usize]);
        [id, profile, account]
    }
}

/// Asks the processor to bring `slot` (two cache lines) into its cache: a
/// hint, with no effect on what the program computes.
#[cfg(target_arch = "x86_64")]
fn prefetch(slot: &Slot) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let start: *const i8 = std::ptr::from_ref(slot).cast();
    // SAFETY: a prefetch reads nothing the program sees, and both
    // addresses are inside the live `slot`.
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(start);
        _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(64));
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch(_slot: &Slot) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(position: u32) -> SubscriptionCheck {
        SubscriptionCheck {
            position,
            ..EMPTY.check
        }
    }

    #[test]
    fn ids_are_found_only_with_their_profile_and_account_inline_or_spilled() {
        let long = "a".repeat(90);
        let longer = "b".repeat(300);
        let account = "c".repeat(84);
        let subs: Vec<[&str; 3]> = vec![
            ["S1", "P1", "A1"],
            ["S2", "P1", "A1"],
            ["S3", &long, "A2"],
            [&longer, "P3", "A3"],
            ["", "P4", "A4"],
            ["S5", "P5", &account],
            ["S6", "P5", &account],
        ];
        // Twelve ids in a table of 32 slots: some end up past their first
        // slot, so finding them walks over other ids' slots.
        let names: Vec<String> = (0..7).map(|i| format!("S1{i}")).collect();
        let mut table = SubscriptionTable::with_capacity(subs.len() + names.len());
        assert_eq!(table.slots.len(), 32);
        assert_eq!(std::mem::size_of::<Slot>(), 128);
        for (ids, position) in subs.iter().zip(0..) {
            table.insert(*ids, check(position));
        }
        for (name, position) in names.iter().zip(10..) {
            table.insert([name, "P9", "A9"], check(position));
        }
        let displaced = table
            .slots
            .iter()
            .enumerate()
            .filter(|(at, slot)| {
                let first = table.ids_of(slot)[0];
                slot.tag != 0 && table.start(std::str::from_utf8(first).unwrap()).at != *at
            })
            .count();
        assert!(displaced > 0, "no id was placed past its first slot");
        let find = |ids: [&str; 3]| table.find(table.probe(ids[0]), ids).map(|c| c.position);
        for (ids, position) in subs.iter().zip(0..) {
            assert_eq!(find(*ids), Some(position), "{ids:?}");
        }
        for (name, position) in names.iter().zip(10..) {
            assert_eq!(find([name, "P9", "A9"]), Some(position));
        }
        assert_eq!(find(["S1", "P2", "A1"]), None, "wrong profile");
        assert_eq!(find(["S1", "P1", "A2"]), None, "wrong account");
        assert_eq!(find(["S3", &long, "A"]), None, "account a prefix");
        assert_eq!(find(["S", "P1", "A1"]), None, "id a prefix");
        assert_eq!(find(["S1P1", "", "A1"]), None, "ids split elsewhere");
        assert_eq!(find([&longer[1..], "P3", "A3"]), None);
        assert_eq!(find(["S9", "P1", "A1"]), None, "unknown");
        assert_eq!(
            find(["S5", "P5", &account[1..]]),
            None,
            "a long account's suffix"
        );
        assert_eq!(table.owners.len(), 6, "P1, P5 and P9 kept once");
    }
}
