//! The type the transfer's modules share: [`Table`], the three staging tables. `done` (the
//! done log) and `staged` (the staging tables' SQL) both import it from here, and `staged`
//! imports `done`, never the other way round.

/// A staging table (промежуточная таблица) that outside systems insert into. Its name on the
/// command line (`--table`) is its SQL name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Table {
    /// Pin codes of cards (`accountpincodetemp` → `pincode`).
    #[value(name = "accountpincodetemp")]
    AccountPincode,
    /// Balance changes (`changeaccountbalancetemp` → `asset`).
    #[value(name = "changeaccountbalancetemp")]
    ChangeAccountBalance,
    /// Card bindings and statuses (`changecardaccounttemp` → `cardaccounting`, `card.status`).
    #[value(name = "changecardaccounttemp")]
    ChangeCardAccount,
}

impl Table {
    pub const ALL: [Table; 3] =
        [Table::AccountPincode, Table::ChangeAccountBalance, Table::ChangeCardAccount];

    pub fn name(self) -> &'static str {
        match self {
            Table::AccountPincode => "accountpincodetemp",
            Table::ChangeAccountBalance => "changeaccountbalancetemp",
            Table::ChangeCardAccount => "changecardaccounttemp",
        }
    }
}
