//! TSIG keys: the algorithm, the shared secret (zeroized on drop, never printed) and the parser
//! of BIND's key format, as `tsig-keygen` prints it and `named.conf` / `nsupdate -k` read it:
//!
//! ```text
//! key "ha-key" {
//!     algorithm hmac-sha256;
//!     secret "V1oILbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA=";
//! };
//! ```
//!
//! Comments (`#`, `//`, `/* */`) and any whitespace are accepted; quoted or bare key names and
//! algorithm names; several keys in one file.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::name::{Name, NameError};

/// A TSIG algorithm (RFC 8945 §6, IANA "TSIG Algorithm Names"). HMAC-MD5 and GSS-TSIG are not
/// supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `hmac-sha1` (RFC 8945: mandatory to implement; 20-octet MAC).
    HmacSha1,
    /// `hmac-sha224` (28-octet MAC).
    HmacSha224,
    /// `hmac-sha256` (RFC 8945: required; 32-octet MAC). BIND's and Kea's default.
    HmacSha256,
    /// `hmac-sha384` (48-octet MAC).
    HmacSha384,
    /// `hmac-sha512` (64-octet MAC).
    HmacSha512,
}

impl Algorithm {
    /// All supported algorithms.
    pub const ALL: [Self; 5] = [
        Self::HmacSha1,
        Self::HmacSha224,
        Self::HmacSha256,
        Self::HmacSha384,
        Self::HmacSha512,
    ];

    /// The name as BIND writes it and as the algorithm name on the wire (without the final
    /// dot): `hmac-sha256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::HmacSha1 => "hmac-sha1",
            Self::HmacSha224 => "hmac-sha224",
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// Looks an algorithm up by name, ignoring case and a trailing dot (`HMAC-SHA256` as Kea
    /// writes it, `hmac-sha256.` as on the wire).
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.strip_suffix('.').unwrap_or(s);
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// The algorithm name as a domain name (RFC 8945 §6).
    pub fn wire_name(self) -> Name {
        Name::from_ascii(self.name()).expect("algorithm names are valid domain names")
    }

    /// Length of the (untruncated) MAC.
    pub fn mac_len(self) -> usize {
        match self {
            Self::HmacSha1 => 20,
            Self::HmacSha224 => 28,
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key or a key file is not acceptable. Lines are 1-based. The daemons add the file
/// name and the key they were looking for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key name is not a valid domain name.
    #[error("line {line}: key name {name:?}: {source}")]
    BadKeyName {
        /// Line of the name.
        line: usize,
        /// The name as written.
        name: String,
        /// What is wrong with it.
        source: NameError,
    },
    /// An algorithm this crate does not implement.
    #[error(
        "line {line}: algorithm {algorithm:?} is not supported \
         (hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512)"
    )]
    UnknownAlgorithm {
        /// Line of the algorithm (0 when not from a file).
        line: usize,
        /// The name as written.
        algorithm: String,
    },
    /// The secret is not base64.
    #[error("line {line}: secret is not valid base64: {reason}")]
    BadSecret {
        /// Line of the secret (0 when not from a file).
        line: usize,
        /// What is wrong (never the secret).
        reason: &'static str,
    },
    /// The secret decodes to nothing.
    #[error("key {key}: the secret is empty")]
    EmptySecret {
        /// The key name.
        key: String,
    },
    /// A `key` block without `algorithm` or `secret`.
    #[error("key {key}: no {field} statement")]
    MissingField {
        /// The key name.
        key: String,
        /// `algorithm` or `secret`.
        field: &'static str,
    },
    /// A statement given twice in one `key` block.
    #[error("line {line}: key {key}: {field} given twice")]
    DuplicateField {
        /// Line of the second one.
        line: usize,
        /// The key name.
        key: String,
        /// The statement.
        field: &'static str,
    },
    /// A statement other than `algorithm` and `secret` inside `key`, or other than `key` at
    /// the top level.
    #[error("line {line}: unexpected {found:?}, expected {expected}")]
    Syntax {
        /// Line.
        line: usize,
        /// What was expected.
        expected: &'static str,
        /// What was there (a token; never secret material).
        found: String,
    },
    /// End of input inside a block, a string or a comment.
    #[error("unexpected end of input: {0}")]
    UnexpectedEnd(&'static str),
    /// The file holds no key.
    #[error("no key statement found")]
    NoKey,
    /// Two keys with the same name.
    #[error("key {0} defined twice")]
    DuplicateKey(String),
    /// The key looked for is not in the file.
    #[error("no key named {wanted} (the file has: {available})")]
    KeyNotFound {
        /// The name looked for.
        wanted: String,
        /// The names present, comma-separated.
        available: String,
    },
    /// Several keys and no name to choose one.
    #[error("{0} keys in the file; say which one")]
    Ambiguous(usize),
}

/// A TSIG shared secret: zeroized on drop, printed as `Secret(<N bytes>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes (only for computing MACs).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// A TSIG key (RFC 8945 §3): name, algorithm, shared secret. Debug never prints the secret.
///
/// ```
/// use dns_update::{Algorithm, TsigKey};
/// let text = r#"key "ha-key" {
///     algorithm hmac-sha256;
///     secret "V1oILbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA=";
/// };"#;
/// let key = TsigKey::from_bind_file(text, Some("ha-key"))?;
/// assert_eq!(key.algorithm, Algorithm::HmacSha256);
/// assert_eq!(key.name.to_string(), "ha-key.");
/// assert!(!format!("{key:?}").contains("V1oI"));
/// # Ok::<(), dns_update::KeyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// The key name (the TSIG record's owner).
    pub name: Name,
    /// The algorithm.
    pub algorithm: Algorithm,
    secret: Secret,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret)
            .finish()
    }
}

impl TsigKey {
    /// A key from its parts. Fails on an empty secret.
    pub fn new(name: Name, algorithm: Algorithm, secret: Vec<u8>) -> Result<Self, KeyError> {
        let secret = Secret::new(secret);
        if secret.is_empty() {
            return Err(KeyError::EmptySecret {
                key: name.to_string(),
            });
        }
        Ok(Self {
            name,
            algorithm,
            secret,
        })
    }

    /// A key from configuration strings: a name, an algorithm name (`hmac-sha256`,
    /// `HMAC-SHA256`), the secret in base64 (as in the daemons' `key_secret`).
    pub fn from_strings(
        name: &str,
        algorithm: &str,
        secret_base64: &str,
    ) -> Result<Self, KeyError> {
        let name = Name::from_ascii(name).map_err(|source| KeyError::BadKeyName {
            line: 0,
            name: name.to_owned(),
            source,
        })?;
        let algorithm =
            Algorithm::from_name(algorithm).ok_or_else(|| KeyError::UnknownAlgorithm {
                line: 0,
                algorithm: algorithm.to_owned(),
            })?;
        let secret = base64_decode(secret_base64)
            .map_err(|reason| KeyError::BadSecret { line: 0, reason })?;
        Self::new(name, algorithm, secret.to_vec())
    }

    /// The secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Every key of a BIND key file (or of the `key` statements of a `named.conf` fragment).
    pub fn parse_bind_file(text: &str) -> Result<Vec<Self>, KeyError> {
        let mut lex = Lexer::new(text);
        let mut keys: Vec<Self> = Vec::new();
        while let Some(tok) = lex.next()? {
            if !matches!(&tok.kind, Tok::Word(w) if w.eq_ignore_ascii_case("key")) {
                return Err(syntax(&tok, "`key`"));
            }
            let key = parse_key_block(&mut lex)?;
            if keys.iter().any(|k| k.name == key.name) {
                return Err(KeyError::DuplicateKey(key.name.to_string()));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyError::NoKey);
        }
        Ok(keys)
    }

    /// One key of a BIND key file: the one named `name` (case-insensitive, trailing dot
    /// optional), or the only one when `name` is `None`.
    pub fn from_bind_file(text: &str, name: Option<&str>) -> Result<Self, KeyError> {
        let mut keys = Self::parse_bind_file(text)?;
        match name {
            None if keys.len() == 1 => Ok(keys.remove(0)),
            None => Err(KeyError::Ambiguous(keys.len())),
            Some(wanted) => {
                let w = Name::from_ascii(wanted).ok();
                match keys.iter().position(|k| Some(&k.name) == w.as_ref()) {
                    Some(i) => Ok(keys.swap_remove(i)),
                    None => Err(KeyError::KeyNotFound {
                        wanted: wanted.to_owned(),
                        available: keys
                            .iter()
                            .map(|k| k.name.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
        }
    }
}

fn syntax(tok: &Token, expected: &'static str) -> KeyError {
    KeyError::Syntax {
        line: tok.line,
        expected,
        found: match &tok.kind {
            Tok::Word(w) => w.clone(),
            Tok::Str(_) => "a quoted string".to_owned(),
            Tok::Open => "{".to_owned(),
            Tok::Close => "}".to_owned(),
            Tok::Semi => ";".to_owned(),
        },
    }
}

/// After `key`: NAME `{` (`algorithm` A `;` | `secret` "S" `;`)* `}` `;`.
fn parse_key_block(lex: &mut Lexer<'_>) -> Result<TsigKey, KeyError> {
    let tok = lex.expect("key name")?;
    let (raw, line) = match &tok.kind {
        Tok::Word(w) | Tok::Str(w) => (w.clone(), tok.line),
        _ => return Err(syntax(&tok, "a key name")),
    };
    let name = Name::from_ascii(&raw).map_err(|source| KeyError::BadKeyName {
        line,
        name: raw.clone(),
        source,
    })?;
    let open = lex.expect("`{`")?;
    if open.kind != Tok::Open {
        return Err(syntax(&open, "`{`"));
    }
    let mut algorithm = None;
    let mut secret: Option<Zeroizing<Vec<u8>>> = None;
    loop {
        let tok = lex.expect("`}`")?;
        let field = match &tok.kind {
            Tok::Close => break,
            Tok::Word(w) if w.eq_ignore_ascii_case("algorithm") => "algorithm",
            Tok::Word(w) if w.eq_ignore_ascii_case("secret") => "secret",
            _ => return Err(syntax(&tok, "`algorithm`, `secret` or `}`")),
        };
        let value = lex.expect(field)?;
        let (Tok::Word(text) | Tok::Str(text)) = &value.kind else {
            return Err(syntax(&value, "a value"));
        };
        let dup = || KeyError::DuplicateField {
            line: tok.line,
            key: name.to_string(),
            field,
        };
        if field == "algorithm" {
            if algorithm.is_some() {
                return Err(dup());
            }
            algorithm =
                Some(
                    Algorithm::from_name(text).ok_or_else(|| KeyError::UnknownAlgorithm {
                        line: value.line,
                        algorithm: text.clone(),
                    })?,
                );
        } else {
            if secret.is_some() {
                return Err(dup());
            }
            secret = Some(base64_decode(text).map_err(|reason| KeyError::BadSecret {
                line: value.line,
                reason,
            })?);
        }
        let semi = lex.expect("`;`")?;
        if semi.kind != Tok::Semi {
            return Err(syntax(&semi, "`;`"));
        }
    }
    let semi = lex.expect("`;` after `}`")?;
    if semi.kind != Tok::Semi {
        return Err(syntax(&semi, "`;` after `}`"));
    }
    let missing = |field| KeyError::MissingField {
        key: name.to_string(),
        field,
    };
    let algorithm = algorithm.ok_or_else(|| missing("algorithm"))?;
    let secret = secret.ok_or_else(|| missing("secret"))?;
    TsigKey::new(name, algorithm, secret.to_vec())
}

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    Semi,
}

struct Token {
    kind: Tok,
    line: usize,
}

impl Drop for Token {
    fn drop(&mut self) {
        // Tokens may hold the base64 secret.
        if let Tok::Word(s) | Tok::Str(s) = &mut self.kind {
            s.zeroize();
        }
    }
}

struct Lexer<'a> {
    rest: &'a str,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            rest: text,
            line: 1,
        }
    }

    fn bump(&mut self, n: usize) {
        self.line += self.rest[..n].matches('\n').count();
        self.rest = &self.rest[n..];
    }

    fn expect(&mut self, what: &'static str) -> Result<Token, KeyError> {
        self.next()?.ok_or(KeyError::UnexpectedEnd(what))
    }

    fn next(&mut self) -> Result<Option<Token>, KeyError> {
        loop {
            let trimmed = self.rest.trim_start();
            let ws = self.rest.len() - trimmed.len();
            self.bump(ws);
            if self.rest.starts_with('#') || self.rest.starts_with("//") {
                let n = self.rest.find('\n').unwrap_or(self.rest.len());
                self.bump(n);
            } else if self.rest.starts_with("/*") {
                let n = self
                    .rest
                    .find("*/")
                    .ok_or(KeyError::UnexpectedEnd("comment"))?;
                self.bump(n + 2);
            } else {
                break;
            }
        }
        let line = self.line;
        let Some(c) = self.rest.chars().next() else {
            return Ok(None);
        };
        let kind = match c {
            '{' => {
                self.bump(1);
                Tok::Open
            }
            '}' => {
                self.bump(1);
                Tok::Close
            }
            ';' => {
                self.bump(1);
                Tok::Semi
            }
            '"' => {
                let end = self.rest[1..]
                    .find(['"', '\n'])
                    .filter(|&i| self.rest.as_bytes()[1 + i] == b'"')
                    .ok_or(KeyError::UnexpectedEnd("quoted string"))?;
                let s = self.rest[1..=end].to_owned();
                self.bump(end + 2);
                Tok::Str(s)
            }
            _ => {
                let n = self
                    .rest
                    .find(|c: char| c.is_whitespace() || matches!(c, '{' | '}' | ';' | '"'))
                    .unwrap_or(self.rest.len());
                let s = self.rest[..n].to_owned();
                self.bump(n);
                Tok::Word(s)
            }
        };
        Ok(Some(Token { kind, line }))
    }
}

/// Decodes standard base64 (RFC 4648 §4) with optional `=` padding; whitespace is not allowed
/// inside (BIND writes the secret on one line).
fn base64_decode(s: &str) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let b = s.as_bytes();
    let body_len = b.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    let pad = b.len() - body_len;
    if pad > 2 || (pad > 0 && !b.len().is_multiple_of(4)) {
        return Err("bad padding");
    }
    let body = &b[..body_len];
    if body.len() % 4 == 1 {
        return Err("bad length");
    }
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() * 3 / 4));
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c).ok_or("character outside the base64 alphabet")? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        let n = chunk.len() - 1; // 4 chars → 3 bytes, 3 → 2, 2 → 1
        // Unused low bits must be zero (canonical encoding).
        if n < 3 && bytes[1 + n..].iter().any(|&x| x != 0) {
            return Err("non-canonical final character");
        }
        out.extend_from_slice(&bytes[1..=n]);
        acc.zeroize();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYGEN: &str = "key \"ha-key\" {\n\talgorithm hmac-sha256;\n\tsecret \
                          \"V1oILbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA=\";\n};\n";

    #[test]
    fn base64() {
        assert_eq!(&base64_decode("").unwrap()[..], b"");
        assert_eq!(&base64_decode("Zg==").unwrap()[..], b"f");
        assert_eq!(&base64_decode("Zg").unwrap()[..], b"f");
        assert_eq!(&base64_decode("Zm8=").unwrap()[..], b"fo");
        assert_eq!(&base64_decode("Zm9v").unwrap()[..], b"foo");
        assert_eq!(&base64_decode("Zm9vYmFy").unwrap()[..], b"foobar");
        assert_eq!(&base64_decode("+/+/").unwrap()[..], &[0xfb, 0xff, 0xbf]);
        assert!(base64_decode("Zm9=v").is_err());
        assert!(base64_decode("Z").is_err());
        assert!(base64_decode("Zh==").is_err());
        assert!(base64_decode("Zg===").is_err());
        assert!(base64_decode("Zm 9v").is_err());
        assert!(base64_decode("Zm9v-").is_err());
        assert_eq!(
            base64_decode("V1oILbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA=")
                .unwrap()
                .len(),
            32
        );
    }

    #[test]
    fn keygen_output() {
        let k = TsigKey::from_bind_file(KEYGEN, None).unwrap();
        assert_eq!(k.name, Name::from_ascii("ha-key.").unwrap());
        assert_eq!(k.algorithm, Algorithm::HmacSha256);
        assert_eq!(k.secret().len(), 32);
        assert_eq!(k.secret().expose()[..2], [0x57, 0x5a]);
        let dbg = format!("{k:?}");
        assert!(dbg.contains("<32 bytes>") && !dbg.contains("V1oI"), "{dbg}");
        assert_eq!(
            TsigKey::from_strings(
                "ha-key",
                "HMAC-SHA256",
                "V1oILbFeMjnJAdFl0BC05Mno9ZJ1tRIEvYwXCSQKdcA="
            )
            .unwrap(),
            k
        );
    }

    #[test]
    fn comments_whitespace_several_keys() {
        let text = "# made by tsig-keygen\n// another\n/* multi\nline */ key other.example. {\
                    algorithm HMAC-SHA512 ; secret \"AAEC\";};\n\n  key\n\"ha-key\"\n{ \
                    secret \"AQID\"; algorithm hmac-sha1; } ; # tail\n";
        let keys = TsigKey::parse_bind_file(text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].algorithm, Algorithm::HmacSha512);
        assert_eq!(keys[1].secret().expose(), &[1, 2, 3]);
        let k = TsigKey::from_bind_file(text, Some("HA-KEY.")).unwrap();
        assert_eq!(k.algorithm, Algorithm::HmacSha1);
        assert_eq!(
            TsigKey::from_bind_file(text, None),
            Err(KeyError::Ambiguous(2))
        );
        assert!(matches!(
            TsigKey::from_bind_file(text, Some("nope")),
            Err(KeyError::KeyNotFound { ref available, .. }) if available == "other.example., ha-key."
        ));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = |t: &str| TsigKey::parse_bind_file(t).unwrap_err();
        assert_eq!(e(""), KeyError::NoKey);
        assert_eq!(e("# nothing\n"), KeyError::NoKey);
        assert!(matches!(
            e("key \"k\" {\n algorithm hmac-md5;\n secret \"AQID\";\n};"),
            KeyError::UnknownAlgorithm { line: 2, ref algorithm } if algorithm == "hmac-md5"
        ));
        assert!(matches!(
            e("key \"k\" {\n algorithm hmac-sha256;\n secret \"AQ!D\";\n};"),
            KeyError::BadSecret { line: 3, .. }
        ));
        assert_eq!(
            e("key \"k\" { secret \"AQID\"; };"),
            KeyError::MissingField {
                key: "k.".into(),
                field: "algorithm"
            }
        );
        assert!(matches!(
            e("key \"k\" { algorithm hmac-sha256; algorithm hmac-sha1; };"),
            KeyError::DuplicateField {
                field: "algorithm",
                ..
            }
        ));
        assert!(matches!(
            e("key \"k\" { algorithm hmac-sha256; secret \"AQID\" };"),
            KeyError::Syntax {
                expected: "`;`",
                ..
            }
        ));
        assert!(matches!(
            e("key \"k\" { algorithm hmac-sha256; secret \"AQID\"; }"),
            KeyError::UnexpectedEnd(_)
        ));
        assert!(matches!(
            e("options { };"),
            KeyError::Syntax {
                line: 1,
                expected: "`key`",
                ..
            }
        ));
        assert!(matches!(e("key \"a b\" { };"), KeyError::BadKeyName { .. }));
        assert!(matches!(
            e("key \"k\" { secret \"AQID; };"),
            KeyError::UnexpectedEnd("quoted string")
        ));
        assert!(matches!(e("/* open"), KeyError::UnexpectedEnd("comment")));
        assert_eq!(
            e("key \"k\" { algorithm hmac-sha256; secret \"\"; };"),
            KeyError::EmptySecret { key: "k.".into() }
        );
        assert!(matches!(
            e(
                "key k { algorithm hmac-sha256; secret \"AQID\"; }; key K. { algorithm hmac-sha256; secret \"AQID\"; };"
            ),
            KeyError::DuplicateKey(_)
        ));
        // Error text never quotes the secret.
        let err = e("key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0!!\"; };");
        assert!(!err.to_string().contains("c2Vj"), "{err}");
    }

    #[test]
    fn algorithm_names() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
            assert_eq!(a.wire_name().to_string(), format!("{}.", a.name()));
        }
        assert_eq!(
            Algorithm::from_name("HMAC-SHA256."),
            Some(Algorithm::HmacSha256)
        );
        assert_eq!(Algorithm::from_name("hmac-md5.sig-alg.reg.int"), None);
    }
}
