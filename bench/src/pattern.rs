//! Address and user-name patterns: `user{n}@example.test` stands for `user1@…`,
//! `user2@…`, … up to a configured number of users, so one option describes a whole
//! population of recipients or logins.

/// The placeholder replaced by a 1-based user number.
pub const PLACEHOLDER: &str = "{n}";

/// A pattern with an optional `{n}` placeholder. Without one, every number gives the
/// same string (one shared account or recipient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPattern {
    template: String,
}

impl AddressPattern {
    pub fn new(template: impl Into<String>) -> Self {
        AddressPattern {
            template: template.into(),
        }
    }

    /// The address of user `number` (1-based).
    pub fn render(&self, number: u64) -> String {
        self.template.replace(PLACEHOLDER, &number.to_string())
    }

    /// The address for the `index`-th use (0-based) among `users` users, cycling:
    /// index 0 is user 1, index `users` is user 1 again.
    pub fn cycle(&self, index: u64, users: u64) -> String {
        self.render(index % users.max(1) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_cycles() {
        let pattern = AddressPattern::new("user{n}@example.test");
        assert_eq!(pattern.render(7), "user7@example.test");
        assert_eq!(pattern.cycle(0, 3), "user1@example.test");
        assert_eq!(pattern.cycle(3, 3), "user1@example.test");
        assert_eq!(pattern.cycle(5, 3), "user3@example.test");
        assert_eq!(pattern.cycle(5, 0), "user1@example.test");
        let fixed = AddressPattern::new("postmaster@example.test");
        assert_eq!(fixed.cycle(9, 3), "postmaster@example.test");
    }
}
