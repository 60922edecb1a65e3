//! Link names: short identifiers stored inline, so decisions can carry them without allocating.

use std::fmt;

/// The longest link name; the same limit as a Linux interface name, which link names usually mirror.
pub const MAX_NAME_LEN: usize = 15;

/// A link's name: 1 to 15 characters of `A-Z a-z 0-9 _ . -`. It is what the CLI and the API
/// use to name a link and what the hook sees, so it is kept to characters safe everywhere.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkName {
    bytes: [u8; MAX_NAME_LEN],
    len: u8,
}

impl LinkName {
    /// Checks and stores a name; the error says what was expected.
    pub fn new(text: &str) -> Result<LinkName, &'static str> {
        if text.is_empty() || text.len() > MAX_NAME_LEN {
            return Err("1 to 15 characters");
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err("only letters, digits, '_', '.' and '-'");
        }
        let mut bytes = [0; MAX_NAME_LEN];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Ok(LinkName { bytes, len: text.len() as u8 })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        crate::text::utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

impl crate::text::Show for LinkName {
    fn show(&self, out: &mut String) {
        crate::text::push_str(out, self.as_str());
    }
}

crate::display_by_show!(LinkName);

impl fmt::Debug for LinkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::json::quoted(self.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_interface_like_names() {
        for name in ["wan", "wwan", "wan_6", "lte-1", "a.b", "x23456789012345"] {
            assert_eq!(LinkName::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn refuses_empty_long_and_unsafe_names() {
        assert!(LinkName::new("").is_err());
        assert!(LinkName::new("x234567890123456").is_err());
        for bad in ["a b", "<img>", "a;b", "é", "a/b", "$x"] {
            assert_eq!(LinkName::new(bad).unwrap_err(), "only letters, digits, '_', '.' and '-'");
        }
    }
}
