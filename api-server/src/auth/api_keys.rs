//! API keys: `hk_<id>_<secret>`, where the id (8 hex digits) is public and names the key, and
//! the secret (32 random bytes, base64url) is known only to its holder. The server keeps a
//! SHA-256 of the secret: a leaked table or Secret listing does not give the keys away, and a
//! plain hash suffices because the secret has 256 bits of entropy (no dictionary to try).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::scopes::Scopes;

const PREFIX: &str = "hk_";
const ID_LEN: usize = 8;
const SECRET_LEN: usize = 43;

/// A freshly made key: show `token` once, store the rest.
pub struct NewKey {
    pub id: String,
    pub token: String,
    pub secret_sha256: [u8; 32],
}

/// A key from the operating system's CSPRNG.
pub fn generate() -> std::io::Result<NewKey> {
    let mut id = [0u8; ID_LEN / 2];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).map_err(std::io::Error::other)?;
    getrandom::fill(&mut secret).map_err(std::io::Error::other)?;
    let id = hex(&id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    Ok(NewKey {
        token: format!("{PREFIX}{id}_{secret}"),
        secret_sha256: digest(&secret),
        id,
    })
}

/// The id and secret of something shaped like a key.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A valid key: who holds it and what it may do.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub name: String,
    pub scopes: Scopes,
    secret_sha256: [u8; 32],
}

/// The keys currently valid, by id.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: HashMap<String, KeyEntry>,
}

impl KeyRing {
    pub fn insert(&mut self, id: String, name: String, scopes: Scopes, secret_sha256: [u8; 32]) {
        self.keys.insert(
            id,
            KeyEntry {
                name,
                scopes,
                secret_sha256,
            },
        );
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key `token` is, if it is a valid one. The secret is hashed and compared in constant
    /// time whether or not the id exists, so timing tells nothing about which keys exist.
    pub fn verify(&self, token: &str) -> Option<(&str, &KeyEntry)> {
        let (id, secret) = split(token).unwrap_or(("", token));
        let presented = digest(secret);
        let found = self.keys.get_key_value(id);
        let expected = found.map_or([0u8; 32], |(_, entry)| entry.secret_sha256);
        let equal: bool = presented.ct_eq(&expected).into();
        found
            .filter(|_| equal)
            .map(|(id, entry)| (id.as_str(), entry))
    }

    /// Adds the keys of an API keys file: a line per key, `<name> <scopes> <key>`, where the
    /// key is the token itself or `sha256:<id>:<hex digest of the secret>`; blank lines and
    /// lines starting with `#` are skipped. Errors name the line, never its key.
    pub fn add_file(&mut self, text: &str) -> Result<(), String> {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, scopes, key] = fields[..] else {
                return Err(format!(
                    "line {}: expected `<name> <scopes> <key>`",
                    number + 1
                ));
            };
            let scopes = Scopes::parse(scopes).map_err(|e| format!("line {}: {e}", number + 1))?;
            let (id, secret_sha256) = match key.strip_prefix("sha256:") {
                Some(hashed) => hashed
                    .split_once(':')
                    .and_then(|(id, digest)| Some((id.to_owned(), unhex(digest)?))),
                None => split(key).map(|(id, secret)| (id.to_owned(), digest(secret))),
            }
            .ok_or_else(|| {
                format!(
                    "line {}: the key is neither hk_<8 hex>_<43 base64url> nor \
                     sha256:<id>:<64 hex>",
                    number + 1
                )
            })?;
            self.insert(id, name.to_owned(), scopes, secret_sha256);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_verifies_and_a_changed_one_does_not() {
        let key = generate().unwrap();
        assert!(split(&key.token).is_some(), "{}", key.token);
        let mut ring = KeyRing::default();
        ring.insert(
            key.id.clone(),
            "ci".into(),
            Scopes::parse("publish").unwrap(),
            key.secret_sha256,
        );
        let (id, entry) = ring.verify(&key.token).unwrap();
        assert_eq!((id, entry.name.as_str()), (key.id.as_str(), "ci"));
        let mut wrong = key.token.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert!(ring.verify(&wrong).is_none());
        assert!(ring.verify("").is_none());
        assert!(ring.verify("hk_00000000_").is_none());
        assert!(ring.verify(&generate().unwrap().token).is_none());
    }

    #[test]
    fn a_keys_file_takes_tokens_and_digests_and_names_bad_lines() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        let text = format!(
            "# rotation: both valid\n\nold publish {}\nnew publish,read:all sha256:{}:{}\n",
            a.token,
            b.id,
            hex(&b.secret_sha256)
        );
        let mut ring = KeyRing::default();
        ring.add_file(&text).unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.verify(&a.token).unwrap().1.name, "old");
        assert_eq!(ring.verify(&b.token).unwrap().1.name, "new");
        let error = KeyRing::default()
            .add_file(&format!("x publish\nsecret publish {}x\n", a.token))
            .unwrap_err();
        assert!(error.starts_with("line 1:"), "{error}");
        let error = KeyRing::default()
            .add_file(&format!("ok publish {}x\n", a.token))
            .unwrap_err();
        assert!(
            !error.contains(&a.token[4..]),
            "the error shows the key: {error}"
        );
    }
}
