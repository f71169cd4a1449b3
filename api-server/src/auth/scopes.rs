//! What an API key may do.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Create notifications (`POST /api/notifications`).
    Publish,
    /// Read every user's notifications, lists and streams, and any user's counters.
    ReadAll,
    /// Everything, plus the batch job runs, `/metrics` and readiness details.
    Admin,
}

impl Scope {
    const ALL: [Self; 3] = [Self::Publish, Self::ReadAll, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::ReadAll => "read:all",
            Self::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Publish => 1,
            Self::ReadAll => 2,
            Self::Admin => 4,
        }
    }
}

/// A key's scopes; `admin` allows what the others do too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// `publish,read:all`: one or more scope names, comma-separated.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut bits = 0;
        for name in text.split(',').map(str::trim) {
            let scope = Scope::ALL
                .into_iter()
                .find(|scope| scope.as_str() == name)
                .ok_or_else(|| format!("unknown scope {name:?}: use publish, read:all or admin"))?;
            bits |= scope.bit();
        }
        Ok(Self(bits))
    }

    pub fn allows(self, scope: Scope) -> bool {
        self.0 & (scope.bit() | Scope::Admin.bit()) != 0
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Scope::ALL
            .into_iter()
            .filter(|scope| self.0 & scope.bit() != 0)
            .map(Scope::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_admin_allows_all() {
        let scopes = Scopes::parse("read:all, publish").unwrap();
        assert_eq!(scopes.to_string(), "publish,read:all");
        assert!(scopes.allows(Scope::Publish) && !scopes.allows(Scope::Admin));
        let admin = Scopes::parse("admin").unwrap();
        assert!(Scope::ALL.into_iter().all(|scope| admin.allows(scope)));
        for bad in ["", "publish,", "write", "Publish"] {
            assert!(Scopes::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
