//! The reference data a usage row is checked against, indexed for the hot
//! loop of `rows`: hash lookups by id, each subscription's ids side by side.

use chrono::NaiveDate;

use crate::FastMap;
use crate::model::{Profile, Reference};

/// The reference data a usage row is checked against, indexed for the hot
/// loop: hash lookups by id, each profile's first period computed once.
pub(super) struct ReferenceIndex<'a> {
    /// Each profile's account, to name why a row's ids do not match.
    pub(super) profile_accounts: FastMap<&'a str, &'a str>,
    pub(super) subscriptions: FastMap<&'a str, SubscriptionCheck<'a>>,
    /// (profile id, subscription id) of every subscription.
    pub(super) subscription_names: crate::day_sums::SubscriptionNames,
}

/// A subscription as the row checks need it, with its profile's.
pub(super) struct SubscriptionCheck<'a> {
    /// Its position in [`ReferenceIndex::subscription_names`].
    pub(super) position: u32,
    pub(super) profile_id: &'a str,
    pub(super) account_id: &'a str,
    pub(super) start_date: NaiveDate,
    pub(super) currency: crate::model::Currency,
    pub(super) first_period_start: NaiveDate,
}

/// Each subscription's id, its profile's and its account's side by side in
/// one buffer, in the reference data's order: checking a row's ids then
/// reads one place in memory, not three strings allocated apart.
pub(super) struct SubscriptionIds {
    text: String,
    /// Where each subscription's three ids end in `text`.
    ends: Vec<[usize; 3]>,
}

impl SubscriptionIds {
    pub(super) fn new(reference: &Reference) -> SubscriptionIds {
        let mut ids = SubscriptionIds {
            text: String::new(),
            ends: Vec::with_capacity(reference.subscriptions.len()),
        };
        for s in reference.subscriptions.values() {
            let account = reference
                .profiles
                .get(&s.profile_id)
                .map_or("", |p| p.account_id.as_str());
            let mut ends = [0; 3];
            for (end, id) in ends.iter_mut().zip([&s.id, &s.profile_id, account]) {
                ids.text.push_str(id);
                *end = ids.text.len();
            }
            ids.ends.push(ends);
        }
        ids
    }

    /// The subscription's, its profile's and its account's id.
    fn get(&self, position: usize) -> [&str; 3] {
        let start = position.checked_sub(1).map_or(0, |p| self.ends[p][2]);
        let [sub, profile, account] = self.ends[position];
        [
            &self.text[start..sub],
            &self.text[sub..profile],
            &self.text[profile..account],
        ]
    }
}

impl<'a> ReferenceIndex<'a> {
    /// `ids` is [`SubscriptionIds::new`] of `reference`.
    pub(super) fn new(
        reference: &'a Reference,
        ids: &'a SubscriptionIds,
        billing_start: NaiveDate,
    ) -> ReferenceIndex<'a> {
        ReferenceIndex {
            profile_accounts: reference
                .profiles
                .iter()
                .map(|(id, p)| (id.as_str(), p.account_id.as_str()))
                .collect(),
            subscriptions: reference
                .subscriptions
                .values()
                .zip(0..)
                .filter_map(|(s, position)| {
                    let profile: &Profile = reference.profiles.get(&s.profile_id)?;
                    let [id, profile_id, account_id] = ids.get(position as usize);
                    let check = SubscriptionCheck {
                        position,
                        profile_id,
                        account_id,
                        start_date: s.start_date,
                        currency: profile.currency,
                        first_period_start: profile.first_period(billing_start).start,
                    };
                    Some((id, check))
                })
                .collect(),
            subscription_names: reference
                .subscriptions
                .values()
                .map(|s| (s.profile_id.clone(), s.id.clone()))
                .collect(),
        }
    }
}
