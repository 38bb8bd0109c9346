//! The RADIUS packet and attribute formats: RFC 2865 §3 (packet) and §5 (attributes).
//!
//! [`Packet`] is a checked view over a byte buffer; [`PacketRepr`] is the owned structure that is
//! parsed from it and emitted into it (the contract is in the [crate documentation](crate)).
//! [`Code`] and [`AttributeType`] are open registries: unknown values round-trip and print as
//! numbers. Attribute values are kept as bytes; the few the client interprets (Reply-Message,
//! State, Class, Message-Authenticator) are read by [`crate::client`].
//!
//! Not here: the Vendor-Specific sub-attribute format (§5.26) and the extended attribute
//! formats of RFC 6929; both stay opaque values.

use std::fmt;
use std::ops::Range;

/// Length of the fixed header: Code, Identifier, Length, Authenticator.
pub const HEADER_LEN: usize = 20;
/// Largest packet (RFC 2865 §3: "The maximum length is 4096").
pub const MAX_PACKET_LEN: usize = 4096;
/// Largest attribute value: the Length octet counts the Type and Length octets too.
pub const MAX_VALUE_LEN: usize = 253;
/// Length of the Request and Response Authenticators and of a Message-Authenticator value.
pub const AUTHENTICATOR_LEN: usize = 16;

mod field {
    use super::Range;

    pub(super) const CODE: usize = 0;
    pub(super) const IDENTIFIER: usize = 1;
    pub(super) const LENGTH: Range<usize> = 2..4;
    pub(super) const AUTHENTICATOR: Range<usize> = 4..20;
    pub(super) const ATTRIBUTES: usize = 20;
}

/// Malformed bytes: what [`Packet::check_len`] and the encoders reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer octets than the header, or than the Length field says (RFC 2865 §3: such a packet
    /// MUST be silently discarded).
    #[error("RADIUS packet truncated: {got} octets, {need} needed")]
    Truncated {
        /// Octets present.
        got: usize,
        /// Octets the header or Length field requires.
        need: usize,
    },
    /// A Length field outside 20..=4096.
    #[error("RADIUS Length field {0} outside 20..=4096")]
    BadLength(usize),
    /// An attribute whose Length is below 2 or runs past the packet's Length.
    #[error("malformed RADIUS attribute at offset {offset}")]
    BadAttribute {
        /// Offset of the attribute's Type octet in the packet.
        offset: usize,
    },
    /// An attribute value longer than 253 octets (or empty where the RFC forbids it).
    #[error("RADIUS attribute {typ} value of {len} octets does not fit")]
    ValueLength {
        /// The attribute type.
        typ: AttributeType,
        /// The value length given.
        len: usize,
    },
    /// The encoded packet would exceed 4096 octets.
    #[error("RADIUS packet of {0} octets exceeds 4096")]
    TooLong(usize),
    /// A User-Password longer than 128 octets (RFC 2865 §5.2), or a hidden value whose length is
    /// not a multiple of 16.
    #[error("User-Password of {0} octets: 1-128, hidden in multiples of 16")]
    PasswordLength(usize),
    /// More than one Message-Authenticator, or one whose length is not 18 (RFC 3579 §3.2).
    #[error("malformed Message-Authenticator")]
    MessageAuthenticator,
}

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub struct $name:ident(pub u8) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr => $text:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u8);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// The registry name, if this value is one this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }
    };
}

open_enum! {
    /// The packet Code (RFC 2865 §3; IANA "RADIUS Packet Type Codes").
    pub struct Code(pub u8) {
        /// 1, RFC 2865 §4.1.
        ACCESS_REQUEST = 1 => "Access-Request",
        /// 2, RFC 2865 §4.2.
        ACCESS_ACCEPT = 2 => "Access-Accept",
        /// 3, RFC 2865 §4.3.
        ACCESS_REJECT = 3 => "Access-Reject",
        /// 4, RFC 2866.
        ACCOUNTING_REQUEST = 4 => "Accounting-Request",
        /// 5, RFC 2866.
        ACCOUNTING_RESPONSE = 5 => "Accounting-Response",
        /// 11, RFC 2865 §4.4.
        ACCESS_CHALLENGE = 11 => "Access-Challenge",
        /// 12, RFC 5997.
        STATUS_SERVER = 12 => "Status-Server",
        /// 13, reserved.
        STATUS_CLIENT = 13 => "Status-Client",
    }
}

open_enum! {
    /// The attribute Type (RFC 2865 §5; IANA "RADIUS Attribute Types").
    pub struct AttributeType(pub u8) {
        /// 1, RFC 2865 §5.1.
        USER_NAME = 1 => "User-Name",
        /// 2, RFC 2865 §5.2 (hidden with the shared secret).
        USER_PASSWORD = 2 => "User-Password",
        /// 3, RFC 2865 §5.3: CHAP ident ‖ 16-octet response.
        CHAP_PASSWORD = 3 => "CHAP-Password",
        /// 4, RFC 2865 §5.4.
        NAS_IP_ADDRESS = 4 => "NAS-IP-Address",
        /// 5, RFC 2865 §5.5.
        NAS_PORT = 5 => "NAS-Port",
        /// 6, RFC 2865 §5.6.
        SERVICE_TYPE = 6 => "Service-Type",
        /// 7, RFC 2865 §5.7.
        FRAMED_PROTOCOL = 7 => "Framed-Protocol",
        /// 8, RFC 2865 §5.8.
        FRAMED_IP_ADDRESS = 8 => "Framed-IP-Address",
        /// 14, RFC 2865 §5.14.
        LOGIN_IP_HOST = 14 => "Login-IP-Host",
        /// 15, RFC 2865 §5.15.
        LOGIN_SERVICE = 15 => "Login-Service",
        /// 18, RFC 2865 §5.18.
        REPLY_MESSAGE = 18 => "Reply-Message",
        /// 24, RFC 2865 §5.24.
        STATE = 24 => "State",
        /// 25, RFC 2865 §5.25.
        CLASS = 25 => "Class",
        /// 26, RFC 2865 §5.26.
        VENDOR_SPECIFIC = 26 => "Vendor-Specific",
        /// 27, RFC 2865 §5.27.
        SESSION_TIMEOUT = 27 => "Session-Timeout",
        /// 30, RFC 2865 §5.30.
        CALLED_STATION_ID = 30 => "Called-Station-Id",
        /// 31, RFC 2865 §5.31.
        CALLING_STATION_ID = 31 => "Calling-Station-Id",
        /// 32, RFC 2865 §5.32.
        NAS_IDENTIFIER = 32 => "NAS-Identifier",
        /// 33, RFC 2865 §5.33.
        PROXY_STATE = 33 => "Proxy-State",
        /// 60, RFC 2865 §5.40.
        CHAP_CHALLENGE = 60 => "CHAP-Challenge",
        /// 61, RFC 2865 §5.41.
        NAS_PORT_TYPE = 61 => "NAS-Port-Type",
        /// 79, RFC 3579 §3.1.
        EAP_MESSAGE = 79 => "EAP-Message",
        /// 80, RFC 2869 §5.14, RFC 3579 §3.2.
        MESSAGE_AUTHENTICATOR = 80 => "Message-Authenticator",
        /// 87, RFC 2869 §5.17.
        NAS_PORT_ID = 87 => "NAS-Port-Id",
        /// 95, RFC 3162 §2.1.
        NAS_IPV6_ADDRESS = 95 => "NAS-IPv6-Address",
    }
}

/// One attribute of a [`Packet`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The Type octet.
    pub typ: AttributeType,
    /// The Value (Length − 2 octets).
    pub value: &'a [u8],
    /// Offset of the Type octet in the packet (the value starts 2 octets later).
    pub offset: usize,
}

/// Iterator over the attributes of a [`Packet`]. On a packet that passed
/// [`Packet::check_len`] it yields every attribute; on an unchecked one it stops at the first
/// malformed attribute.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        let header = self.data.get(self.pos..self.pos + 2)?;
        let len = usize::from(header[1]);
        if len < 2 {
            return None;
        }
        let value = self.data.get(self.pos + 2..self.pos + len)?;
        let attr = Attribute {
            typ: AttributeType(header[0]),
            value,
            offset: self.pos,
        };
        self.pos += len;
        Some(attr)
    }
}

/// A view of a RADIUS packet in a buffer (RFC 2865 §3):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Code      |  Identifier   |            Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// |                         Authenticator                         |
/// |                                                               |
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Attributes (Type, Length, Value) ...
/// +-+-+-+-+-+-+-+-+-+-+-+-+-
/// ```
///
/// Octets past Length are padding and ignored (§3). Use [`Packet::new_checked`] on received
/// data: after it no accessor panics and [`Packet::attributes`] sees the whole attribute list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without any check (for emitting into a buffer of
    /// [`PacketRepr::buffer_len`] octets).
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer and checks it with [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the header is present, that Length is within 20..=4096 and no longer than the
    /// buffer, and that the attributes tile the space up to Length exactly (RFC 2865 §3, §5).
    pub fn check_len(&self) -> Result<(), WireError> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                got: data.len(),
                need: HEADER_LEN,
            });
        }
        let length = usize::from(self.length());
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) {
            return Err(WireError::BadLength(length));
        }
        if length > data.len() {
            return Err(WireError::Truncated {
                got: data.len(),
                need: length,
            });
        }
        let mut pos = field::ATTRIBUTES;
        while pos < length {
            if pos + 2 > length {
                return Err(WireError::BadAttribute { offset: pos });
            }
            let len = usize::from(data[pos + 1]);
            if len < 2 || pos + len > length {
                return Err(WireError::BadAttribute { offset: pos });
            }
            pos += len;
        }
        Ok(())
    }

    /// The Code octet.
    pub fn code(&self) -> Code {
        Code(self.buffer.as_ref()[field::CODE])
    }

    /// The Identifier octet.
    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENTIFIER]
    }

    /// The Length field.
    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The Authenticator field (Request or Response Authenticator).
    pub fn authenticator(&self) -> [u8; AUTHENTICATOR_LEN] {
        let mut a = [0; AUTHENTICATOR_LEN];
        a.copy_from_slice(&self.buffer.as_ref()[field::AUTHENTICATOR]);
        a
    }

    /// The packet up to Length (without padding). On an unchecked view whose Length exceeds the
    /// buffer, the whole buffer.
    pub fn as_bytes(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let len = usize::from(self.length()).min(data.len());
        &data[..len]
    }

    /// The attributes, in packet order.
    pub fn attributes(&self) -> Attributes<'_> {
        let bytes = self.as_bytes();
        Attributes {
            data: bytes,
            pos: field::ATTRIBUTES.min(bytes.len()),
        }
    }

    /// The value of the first attribute of type `typ`.
    pub fn attribute(&self, typ: AttributeType) -> Option<&[u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Code octet.
    pub fn set_code(&mut self, code: Code) {
        self.buffer.as_mut()[field::CODE] = code.0;
    }

    /// Sets the Identifier octet.
    pub fn set_identifier(&mut self, id: u8) {
        self.buffer.as_mut()[field::IDENTIFIER] = id;
    }

    /// Sets the Length field.
    pub fn set_length(&mut self, length: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    }

    /// Sets the Authenticator field.
    pub fn set_authenticator(&mut self, authenticator: &[u8; AUTHENTICATOR_LEN]) {
        self.buffer.as_mut()[field::AUTHENTICATOR].copy_from_slice(authenticator);
    }

    /// The attribute area (after the header), for emitting.
    fn attributes_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::ATTRIBUTES..]
    }
}

/// One attribute, owned.
#[derive(Clone, PartialEq, Eq)]
pub struct AttributeRepr {
    /// The Type octet.
    pub typ: AttributeType,
    /// The Value, at most 253 octets.
    pub value: Vec<u8>,
}

impl AttributeRepr {
    /// An attribute.
    pub fn new(typ: AttributeType, value: impl Into<Vec<u8>>) -> Self {
        Self {
            typ,
            value: value.into(),
        }
    }

    /// Octets on the wire (Type, Length, Value).
    pub fn buffer_len(&self) -> usize {
        2 + self.value.len()
    }
}

impl fmt::Debug for AttributeRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hidden and secret-derived values are not printed: only their length.
        match self.typ {
            AttributeType::USER_PASSWORD
            | AttributeType::CHAP_PASSWORD
            | AttributeType::MESSAGE_AUTHENTICATOR => {
                write!(f, "{:?}(<{} octets>)", self.typ, self.value.len())
            }
            _ => write!(f, "{:?}({})", self.typ, crate::HexOrText(&self.value)),
        }
    }
}

/// A whole packet, owned: parsed from a [`Packet`] or emitted into one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketRepr {
    /// The Code.
    pub code: Code,
    /// The Identifier.
    pub identifier: u8,
    /// The Authenticator field as it is on the wire.
    pub authenticator: [u8; AUTHENTICATOR_LEN],
    /// The attributes, in order.
    pub attributes: Vec<AttributeRepr>,
}

impl PacketRepr {
    /// Reads a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, WireError> {
        packet.check_len()?;
        Ok(Self {
            code: packet.code(),
            identifier: packet.identifier(),
            authenticator: packet.authenticator(),
            attributes: packet
                .attributes()
                .map(|a| AttributeRepr::new(a.typ, a.value))
                .collect(),
        })
    }

    /// Octets on the wire.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self
                .attributes
                .iter()
                .map(AttributeRepr::buffer_len)
                .sum::<usize>()
    }

    /// Checks the lengths: every value at most 253 octets, the packet at most 4096.
    pub fn check(&self) -> Result<(), WireError> {
        for a in &self.attributes {
            if a.value.len() > MAX_VALUE_LEN {
                return Err(WireError::ValueLength {
                    typ: a.typ,
                    len: a.value.len(),
                });
            }
        }
        let len = self.buffer_len();
        if len > MAX_PACKET_LEN {
            return Err(WireError::TooLong(len));
        }
        Ok(())
    }

    /// Writes the packet, Length included, into a buffer of at least
    /// [`PacketRepr::buffer_len`] octets, after [`PacketRepr::check`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
    ) -> Result<(), WireError> {
        self.check()?;
        let len = self.buffer_len();
        let have = packet.buffer.as_ref().len();
        if have < len {
            return Err(WireError::Truncated {
                got: have,
                need: len,
            });
        }
        packet.set_code(self.code);
        packet.set_identifier(self.identifier);
        // check() bounds len by 4096.
        packet.set_length(u16::try_from(len).map_err(|_| WireError::TooLong(len))?);
        packet.set_authenticator(&self.authenticator);
        let out = packet.attributes_mut();
        let mut pos = 0;
        for a in &self.attributes {
            out[pos] = a.typ.0;
            // check() bounds each value by 253, so Length fits an octet.
            out[pos + 1] = (a.value.len() + 2) as u8;
            out[pos + 2..pos + 2 + a.value.len()].copy_from_slice(&a.value);
            pos += a.buffer_len();
        }
        Ok(())
    }

    /// [`PacketRepr::emit`] into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, WireError> {
        self.check()?;
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut buf[..]))?;
        Ok(buf)
    }

    /// The value of the first attribute of type `typ`.
    pub fn attribute(&self, typ: AttributeType) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        PacketRepr {
            code: Code::ACCESS_ACCEPT,
            identifier: 7,
            authenticator: [0xaa; 16],
            attributes: vec![
                AttributeRepr::new(AttributeType::REPLY_MESSAGE, b"hi".to_vec()),
                AttributeRepr::new(AttributeType::CLASS, vec![]),
                AttributeRepr::new(AttributeType(200), vec![1, 2, 3]),
            ],
        }
        .to_vec()
        .unwrap()
    }

    #[test]
    fn round_trip_keeps_unknown_types() {
        let bytes = sample();
        assert_eq!(bytes.len(), 20 + 4 + 2 + 5);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.code(), Code::ACCESS_ACCEPT);
        assert_eq!(p.identifier(), 7);
        let repr = PacketRepr::parse(&p).unwrap();
        assert_eq!(repr.attributes[2].typ, AttributeType(200));
        assert_eq!(repr.to_vec().unwrap(), bytes);
        assert_eq!(format!("{:?}", AttributeType(200)), "AttributeType(200)");
        assert_eq!(format!("{:?}", Code::ACCESS_CHALLENGE), "Access-Challenge");
        assert_eq!(Code(99).to_string(), "99");
    }

    #[test]
    fn padding_past_length_is_ignored() {
        let mut bytes = sample();
        let len = bytes.len();
        bytes.extend_from_slice(&[0xff; 7]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.as_bytes().len(), len);
        assert_eq!(p.attributes().count(), 3);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for n in 0..bytes.len() {
            assert!(Packet::new_checked(&bytes[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn bad_lengths() {
        let mut bytes = sample();
        bytes[3] = 19;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::BadLength(19)
        );
        let mut bytes = sample();
        bytes[2] = 0x10;
        bytes[3] = 0x01;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::BadLength(4097)
        );
        // An attribute of Length 1.
        let mut bytes = sample();
        bytes[21] = 1;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::BadAttribute { offset: 20 }
        );
        // The last attribute runs past Length.
        let mut bytes = sample();
        let last = bytes.len() - 5;
        bytes[last + 1] = 6;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            WireError::BadAttribute { offset: last }
        );
        // Length one octet into the last attribute: a lone Type octet.
        let mut bytes = sample();
        bytes[3] = (HEADER_LEN + 4 + 2 + 1) as u8;
        assert!(Packet::new_checked(&bytes[..]).is_err());
    }

    #[test]
    fn encoder_limits() {
        let mut r = PacketRepr {
            code: Code::ACCESS_REQUEST,
            identifier: 0,
            authenticator: [0; 16],
            attributes: vec![AttributeRepr::new(
                AttributeType::USER_NAME,
                vec![b'a'; 253],
            )],
        };
        assert_eq!(r.to_vec().unwrap().len(), 20 + 255);
        r.attributes[0].value.push(b'a');
        assert_eq!(
            r.to_vec().unwrap_err(),
            WireError::ValueLength {
                typ: AttributeType::USER_NAME,
                len: 254
            }
        );
        r.attributes = vec![AttributeRepr::new(AttributeType::CLASS, vec![0; 253]); 17];
        assert_eq!(r.to_vec().unwrap_err(), WireError::TooLong(20 + 17 * 255));
        let mut small = [0u8; 10];
        r.attributes.clear();
        assert!(r.emit(&mut Packet::new_unchecked(&mut small[..])).is_err());
    }

    #[test]
    fn secret_attributes_are_not_debug_printed() {
        let a = AttributeRepr::new(AttributeType::USER_PASSWORD, b"hunter2-hidden".to_vec());
        let s = format!("{a:?}");
        assert!(!s.contains("hunter2"), "{s}");
        let a = AttributeRepr::new(AttributeType::USER_NAME, b"mn".to_vec());
        assert_eq!(format!("{a:?}"), "User-Name(\"mn\")");
    }
}
