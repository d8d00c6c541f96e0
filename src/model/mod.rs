//! The domain nouns every stage shares: reference data (accounts, profiles,
//! subscriptions, roles, credits), billing periods, invoice lines, decisions
//! and invoices. Plain data only; the rules live in `decide`, the money
//! arithmetic here is limited to rounding to a currency's minor unit.
//!
//! One file per group: `reference` (accounts, profiles, subscriptions,
//! roles), `preference` (e-mail invoice preferences), `codes` (countries,
//! currencies, Peppol ids), `period`, `billing` (lines, decisions,
//! invoices), `credit_note`, `ingested` (usage days and files as
//! ingested), `vat`.

mod billing;
mod codes;
mod credit_note;
mod ingested;
mod period;
mod preference;
mod reference;
mod vat;

pub use billing::*;
pub use codes::*;
pub use credit_note::*;
pub use ingested::*;
pub use period::*;
pub use preference::*;
pub use reference::*;
pub use vat::*;
