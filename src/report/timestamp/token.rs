//! RFC 3161 time-stamp requests and tokens: the request is built here ([`request`]), the
//! authority's answer parsed and its token verified offline ([`verify_response`],
//! [`verify_token`]) without a certificate store:
//!
//! - the answer's status is granted (0) or granted with modifications (1);
//! - the token is CMS SignedData (RFC 5652) whose content is a TSTInfo, and the TSTInfo's
//!   message imprint is the expected SHA-256 (and its nonce the request's, when given);
//! - the signed attributes hold the content type id-ct-TSTInfo and the digest of the TSTInfo;
//! - the signature over the signed attributes verifies with the public key of the signer's
//!   certificate, found in the token by issuer and serial number (or subject key identifier).
//!
//! Whether that certificate belongs to the authority it names is for the reader to check
//! against the authority's published certificate (its subject and SHA-256 fingerprint are
//! returned), or with `openssl ts -verify -CAfile`. Signatures: RSA PKCS #1 v1.5 (2048 to
//! 8192 bits) and ECDSA on P-256 and P-384, with SHA-256, SHA-384 or SHA-512, through `ring`
//! (already in the build for TLS). Anything else is refused by name.

use chrono::{DateTime, Utc};
use ring::{digest, signature};
use serde::{Deserialize, Serialize};

use super::der::{self, tag, DerError, Element, Reader};

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const SHA512: &str = "2.16.840.1.101.3.4.2.3";
const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const ATTR_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const ATTR_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const RSA: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const EKU: &str = "2.5.29.37";
const SKI: &str = "2.5.29.14";
const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";

/// Why a time-stamp answer or token is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed time-stamp data: {0}")]
    Der(#[from] DerError),
    #[error("the time-stamping authority refused the request (status {status}{text})")]
    Refused { status: u64, text: String },
    #[error("the answer holds no time-stamp token")]
    NoToken,
    #[error("not a time-stamp token: {0}")]
    NotAToken(String),
    #[error("unsupported in a time-stamp token: {0}")]
    Unsupported(String),
    #[error("the token stamps another hash: {found} (expected {expected})")]
    ImprintMismatch { expected: String, found: String },
    #[error(
        "the token's nonce {found} is not the request's {expected}: an answer to another request"
    )]
    NonceMismatch { expected: String, found: String },
    #[error("the token does not hold the certificate that signed it")]
    NoSignerCertificate,
    #[error("the signed attributes do not match the token's content: {0}")]
    AttributeMismatch(String),
    #[error("the authority's signature does not verify with the certificate in the token")]
    BadSignature,
}

/// What a verified token states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The time the authority vouches for (`genTime`).
    pub gen_time: DateTime<Utc>,
    /// Serial number (hex) and policy (dotted OID) of the token.
    pub serial: String,
    pub policy: String,
    /// The stamped hash (hex) and its algorithm (`sha256`).
    pub imprint: String,
    pub imprint_algorithm: String,
    /// The nonce (hex), when the token has one.
    pub nonce: Option<String>,
    /// The signer certificate's subject and issuer (`CN=…, O=…`) and SHA-256 fingerprint.
    pub signer: String,
    pub issuer: String,
    pub signer_sha256: String,
    /// The certificate allows time stamping (extended key usage id-kp-timeStamping).
    pub time_stamping_usage: bool,
    /// How it was signed (`RSA PKCS#1 v1.5 with SHA-256`).
    pub signature: String,
}

/// A DER `TimeStampReq` for `sha256` (certificate requested, the given nonce).
pub fn request(sha256: &[u8; 32], nonce: &[u8]) -> Vec<u8> {
    let algorithm = der::sequence(&[&der::oid(SHA256), &der::encode(tag::NULL, &[])]);
    let imprint = der::sequence(&[&algorithm, &der::encode(tag::OCTET_STRING, sha256)]);
    der::sequence(&[
        &der::encode(tag::INTEGER, &[1]),
        &imprint,
        &der::unsigned_integer(nonce),
        &der::encode(tag::BOOLEAN, &[0xff]),
    ])
}

/// The token of a `TimeStampResp`, when its status grants it.
pub fn token_of(response: &[u8]) -> Result<&[u8], TokenError> {
    let mut top = Reader::new(response);
    let mut resp = top.sequence("TimeStampResp")?;
    let mut status = resp.sequence("PKIStatusInfo")?;
    let code = status.expect(tag::INTEGER, "status")?.content;
    let code = code.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    if code > 1 {
        let mut text = String::new();
        if let Some(strings) = status.optional(tag::SEQUENCE)? {
            let mut r = Reader::new(strings.content);
            while !r.is_empty() {
                let s = r.any()?;
                text.push_str(": ");
                text.push_str(&String::from_utf8_lossy(s.content));
            }
        }
        return Err(TokenError::Refused { status: code, text });
    }
    match resp.optional(tag::SEQUENCE)? {
        Some(token) => Ok(token.raw),
        None => Err(TokenError::NoToken),
    }
}

/// Verifies the token of `response` for the hash `imprint` (and `nonce`, when given).
pub fn verify_response(
    response: &[u8],
    imprint: &[u8],
    nonce: Option<&[u8]>,
) -> Result<Verified, TokenError> {
    let v = verify_token(token_of(response)?, imprint)?;
    if let Some(n) = nonce {
        let expected = der::integer_hex(n);
        match &v.nonce {
            Some(found) if *found == expected => {}
            found => {
                return Err(TokenError::NonceMismatch {
                    expected,
                    found: found.clone().unwrap_or_else(|| "none".into()),
                })
            }
        }
    }
    Ok(v)
}

fn digest_of(oid: &str) -> Result<(&'static digest::Algorithm, &'static str), TokenError> {
    match oid {
        SHA256 => Ok((&digest::SHA256, "sha256")),
        SHA384 => Ok((&digest::SHA384, "sha384")),
        SHA512 => Ok((&digest::SHA512, "sha512")),
        other => Err(TokenError::Unsupported(format!(
            "digest algorithm {other} (SHA-256, SHA-384 and SHA-512 are)"
        ))),
    }
}

/// Verifies a `TimeStampToken` (CMS ContentInfo) for the hash `imprint`.
pub fn verify_token(token: &[u8], imprint: &[u8]) -> Result<Verified, TokenError> {
    let mut top = Reader::new(token);
    let mut content_info = top.sequence("ContentInfo")?;
    let content_type = der::read_oid(&mut content_info, "contentType")?;
    if content_type != SIGNED_DATA {
        return Err(TokenError::NotAToken(format!(
            "content type {content_type}, not SignedData"
        )));
    }
    let explicit = content_info.expect(tag::context(0), "content")?;
    let mut signed_data = Reader::new(explicit.content).sequence("SignedData")?;
    signed_data.expect(tag::INTEGER, "version")?;
    signed_data.expect(tag::SET, "digestAlgorithms")?;
    let mut encap = signed_data.sequence("encapContentInfo")?;
    let e_type = der::read_oid(&mut encap, "eContentType")?;
    if e_type != TST_INFO {
        return Err(TokenError::NotAToken(format!(
            "content {e_type}, not a TSTInfo"
        )));
    }
    let e_explicit = encap.expect(tag::context(0), "eContent")?;
    let tst_der = Reader::new(e_explicit.content)
        .expect(tag::OCTET_STRING, "eContent")?
        .content;
    let certificates = signed_data.optional(tag::context(0))?;
    signed_data.optional(tag::context(1))?;
    let signer_infos = signed_data.expect(tag::SET, "signerInfos")?;

    // The TSTInfo.
    let mut tst = Reader::new(tst_der).sequence("TSTInfo")?;
    tst.expect(tag::INTEGER, "TSTInfo version")?;
    let policy = der::read_oid(&mut tst, "policy")?;
    let mut mi = tst.sequence("messageImprint")?;
    let imprint_oid = der::read_algorithm(&mut mi, "hashAlgorithm")?;
    let hashed = mi.expect(tag::OCTET_STRING, "hashedMessage")?.content;
    let (_, imprint_algorithm) = digest_of(&imprint_oid)?;
    if hashed != imprint {
        return Err(TokenError::ImprintMismatch {
            expected: hex::encode(imprint),
            found: hex::encode(hashed),
        });
    }
    let serial = der::integer_hex(tst.expect(tag::INTEGER, "serialNumber")?.content);
    let gen_time = der::generalized_time(tst.expect(tag::GENERALIZED_TIME, "genTime")?.content)?;
    tst.optional(tag::SEQUENCE)?; // accuracy
    tst.optional(tag::BOOLEAN)?; // ordering
    let nonce = tst
        .optional(tag::INTEGER)?
        .map(|n| der::integer_hex(n.content));

    // The one signer.
    let mut infos = Reader::new(signer_infos.content);
    let mut si = infos.sequence("SignerInfo")?;
    si.expect(tag::INTEGER, "SignerInfo version")?;
    let sid = si.any()?;
    let digest_oid = der::read_algorithm(&mut si, "digestAlgorithm")?;
    let (digest_alg, digest_name) = digest_of(&digest_oid)?;
    let signed_attrs = si
        .optional(tag::context(0))?
        .ok_or_else(|| TokenError::Unsupported("a SignerInfo without signed attributes".into()))?;
    let sig_oid = der::read_algorithm(&mut si, "signatureAlgorithm")?;
    let sig = si.expect(tag::OCTET_STRING, "signature")?.content;

    // The signed attributes bind the content: its type and digest.
    check_attributes(signed_attrs, digest_alg, tst_der)?;

    let cert = find_signer(certificates, sid)?;
    let key = public_key(&cert)?;
    let (verifier, signature_name): (&dyn signature::VerificationAlgorithm, String) =
        verification_algorithm(&key.kind, &sig_oid, digest_name)?;
    // The signature is over the DER of the attributes as a SET (their [0] tag replaced).
    let mut message = signed_attrs.raw.to_vec();
    message[0] = tag::SET;
    signature::UnparsedPublicKey::new(verifier, key.bytes)
        .verify(&message, sig)
        .map_err(|_| TokenError::BadSignature)?;
    Ok(Verified {
        gen_time,
        serial,
        policy,
        imprint: hex::encode(hashed),
        imprint_algorithm: imprint_algorithm.into(),
        nonce,
        signer: cert.subject,
        issuer: cert.issuer,
        signer_sha256: hex::encode(digest::digest(&digest::SHA256, cert.raw)),
        time_stamping_usage: cert.time_stamping,
        signature: signature_name,
    })
}

fn check_attributes(
    attrs: Element<'_>,
    digest_alg: &'static digest::Algorithm,
    content: &[u8],
) -> Result<(), TokenError> {
    let (mut content_type, mut message_digest) = (None, None);
    let mut r = Reader::new(attrs.content);
    while !r.is_empty() {
        let mut attr = r.sequence("Attribute")?;
        let oid = der::read_oid(&mut attr, "attrType")?;
        let values = attr.expect(tag::SET, "attrValues")?;
        let mut v = Reader::new(values.content);
        match oid.as_str() {
            ATTR_CONTENT_TYPE => content_type = Some(der::read_oid(&mut v, "content-type")?),
            ATTR_MESSAGE_DIGEST => {
                message_digest = Some(v.expect(tag::OCTET_STRING, "message-digest")?.content)
            }
            _ => {}
        }
    }
    match content_type {
        Some(t) if t == TST_INFO => {}
        Some(t) => {
            return Err(TokenError::AttributeMismatch(format!(
                "content-type {t} is not id-ct-TSTInfo"
            )))
        }
        None => {
            return Err(TokenError::AttributeMismatch(
                "no content-type attribute".into(),
            ))
        }
    }
    let computed = digest::digest(digest_alg, content);
    match message_digest {
        Some(d) if d == computed.as_ref() => Ok(()),
        Some(_) => Err(TokenError::AttributeMismatch(
            "message-digest is not the digest of the TSTInfo".into(),
        )),
        None => Err(TokenError::AttributeMismatch(
            "no message-digest attribute".into(),
        )),
    }
}

/// The parts of a certificate the verification reads.
struct Cert<'a> {
    raw: &'a [u8],
    serial: &'a [u8],
    issuer_raw: &'a [u8],
    issuer: String,
    subject: String,
    spki_algorithm: String,
    spki_parameter: Option<String>,
    spki_key: &'a [u8],
    ski: Option<&'a [u8]>,
    time_stamping: bool,
}

fn parse_cert(raw: &[u8]) -> Result<Cert<'_>, TokenError> {
    let mut c = Reader::new(raw).sequence("Certificate")?;
    let mut tbs = c.sequence("tbsCertificate")?;
    tbs.optional(tag::context(0))?; // version
    let serial = tbs.expect(tag::INTEGER, "serialNumber")?.content;
    tbs.expect(tag::SEQUENCE, "signature")?;
    let issuer = tbs.expect(tag::SEQUENCE, "issuer")?;
    tbs.expect(tag::SEQUENCE, "validity")?;
    let subject = tbs.expect(tag::SEQUENCE, "subject")?;
    let mut spki = tbs.sequence("subjectPublicKeyInfo")?;
    let mut alg = spki.sequence("algorithm")?;
    let spki_algorithm = der::read_oid(&mut alg, "algorithm")?;
    let spki_parameter = match alg.optional(tag::OID)? {
        Some(p) => Some(der::oid_string(p.content)?),
        None => None,
    };
    let bits = spki.expect(tag::BIT_STRING, "subjectPublicKey")?.content;
    let spki_key = match bits.split_first() {
        Some((0, key)) => key,
        _ => {
            return Err(TokenError::Unsupported(
                "a public key with unused bits".into(),
            ))
        }
    };
    let (mut ski, mut time_stamping) = (None, false);
    tbs.optional(0x81)?;
    tbs.optional(0x82)?;
    if let Some(ext) = tbs.optional(tag::context(3))? {
        let mut list = Reader::new(ext.content).sequence("extensions")?;
        while !list.is_empty() {
            let mut e = list.sequence("Extension")?;
            let id = der::read_oid(&mut e, "extnID")?;
            e.optional(tag::BOOLEAN)?;
            let value = e.expect(tag::OCTET_STRING, "extnValue")?.content;
            match id.as_str() {
                SKI => ski = Some(Reader::new(value).expect(tag::OCTET_STRING, "SKI")?.content),
                EKU => {
                    let mut usages = Reader::new(value).sequence("extKeyUsage")?;
                    while !usages.is_empty() {
                        if der::read_oid(&mut usages, "KeyPurposeId")? == TIME_STAMPING {
                            time_stamping = true;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Cert {
        raw,
        serial,
        issuer_raw: issuer.raw,
        issuer: name_text(issuer.content),
        subject: name_text(subject.content),
        spki_algorithm,
        spki_parameter,
        spki_key,
        ski,
        time_stamping,
    })
}

/// A distinguished name as `CN=…, O=…` (attributes in their order; unknown types by OID).
fn name_text(rdns: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut r = Reader::new(rdns);
    while let Ok(set) = r.expect(tag::SET, "RDN") {
        let mut atvs = Reader::new(set.content);
        while let Ok(mut atv) = atvs.sequence("AttributeTypeAndValue") {
            let Ok(oid) = der::read_oid(&mut atv, "type") else {
                continue;
            };
            let Ok(value) = atv.any() else { continue };
            let key = match oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "1.2.840.113549.1.9.1" => "emailAddress",
                other => other,
            }
            .to_string();
            let text = match value.tag {
                tag::UTF8_STRING | tag::PRINTABLE_STRING | tag::IA5_STRING | 0x14 => {
                    String::from_utf8_lossy(value.content).into_owned()
                }
                _ => format!("#{}", hex::encode(value.raw)),
            };
            parts.push(format!("{key}={text}"));
        }
    }
    parts.join(", ")
}

/// The certificate of the token that the signer identifier names.
fn find_signer<'a>(
    certificates: Option<Element<'a>>,
    sid: Element<'a>,
) -> Result<Cert<'a>, TokenError> {
    let certs = certificates.ok_or(TokenError::NoSignerCertificate)?;
    let mut r = Reader::new(certs.content);
    while !r.is_empty() {
        let el = r.any()?;
        if el.tag != tag::SEQUENCE {
            continue; // another certificate format
        }
        let cert = parse_cert(el.raw)?;
        let matches = match sid.tag {
            tag::SEQUENCE => {
                let mut s = Reader::new(sid.content);
                let issuer = s.expect(tag::SEQUENCE, "issuer")?;
                let serial = s.expect(tag::INTEGER, "serialNumber")?;
                issuer.raw == cert.issuer_raw && serial.content == cert.serial
            }
            0x80 => cert.ski == Some(sid.content),
            other => {
                return Err(TokenError::Unsupported(format!(
                    "signer identifier with tag {other:#04x}"
                )))
            }
        };
        if matches {
            return Ok(cert);
        }
    }
    Err(TokenError::NoSignerCertificate)
}

enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

struct PublicKey<'a> {
    kind: KeyKind,
    bytes: &'a [u8],
}

fn public_key<'a>(cert: &Cert<'a>) -> Result<PublicKey<'a>, TokenError> {
    let kind = match (cert.spki_algorithm.as_str(), cert.spki_parameter.as_deref()) {
        (RSA, _) => KeyKind::Rsa,
        (EC_PUBLIC_KEY, Some(P256)) => KeyKind::EcP256,
        (EC_PUBLIC_KEY, Some(P384)) => KeyKind::EcP384,
        (alg, param) => {
            return Err(TokenError::Unsupported(format!(
                "public key algorithm {alg}{} (RSA, ECDSA P-256 and P-384 are)",
                param.map(|p| format!(" / {p}")).unwrap_or_default()
            )))
        }
    };
    Ok(PublicKey {
        kind,
        bytes: cert.spki_key,
    })
}

fn verification_algorithm(
    key: &KeyKind,
    sig_oid: &str,
    digest_name: &str,
) -> Result<(&'static dyn signature::VerificationAlgorithm, String), TokenError> {
    // The hash of the signature: named by the signature algorithm, else the digest algorithm.
    let hash = match sig_oid {
        "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => "sha256",
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => "sha384",
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => "sha512",
        RSA | EC_PUBLIC_KEY => digest_name,
        other => {
            return Err(TokenError::Unsupported(format!(
                "signature algorithm {other}"
            )))
        }
    };
    let rsa_sig = matches!(
        sig_oid,
        RSA | "1.2.840.113549.1.1.11" | "1.2.840.113549.1.1.12" | "1.2.840.113549.1.1.13"
    );
    let alg: &'static dyn signature::VerificationAlgorithm = match (key, rsa_sig, hash) {
        (KeyKind::Rsa, true, "sha256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        (KeyKind::Rsa, true, "sha384") => &signature::RSA_PKCS1_2048_8192_SHA384,
        (KeyKind::Rsa, true, "sha512") => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeyKind::EcP256, false, "sha256") => &signature::ECDSA_P256_SHA256_ASN1,
        (KeyKind::EcP256, false, "sha384") => &signature::ECDSA_P256_SHA384_ASN1,
        (KeyKind::EcP384, false, "sha256") => &signature::ECDSA_P384_SHA256_ASN1,
        (KeyKind::EcP384, false, "sha384") => &signature::ECDSA_P384_SHA384_ASN1,
        _ => {
            return Err(TokenError::Unsupported(format!(
                "signature {sig_oid} with {hash} for this key"
            )))
        }
    };
    let name = match key {
        KeyKind::Rsa => format!("RSA PKCS#1 v1.5 with {}", hash.to_uppercase()),
        KeyKind::EcP256 => format!("ECDSA P-256 with {}", hash.to_uppercase()),
        KeyKind::EcP384 => format!("ECDSA P-384 with {}", hash.to_uppercase()),
    };
    Ok((alg, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_the_der_openssl_writes() {
        let hash = [0xabu8; 32];
        let req = request(&hash, &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]);
        // SEQUENCE { INTEGER 1, SEQUENCE { SEQUENCE { OID sha256, NULL }, OCTET STRING },
        // INTEGER nonce, BOOLEAN TRUE }
        let mut expected = vec![
            0x30, 0x43, 0x02, 0x01, 0x01, 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09,
        ];
        expected.extend([0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]);
        expected.extend([0x05, 0x00, 0x04, 0x20]);
        expected.extend([0xab; 32]);
        expected.extend([0x02, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x01, 0x01, 0xff]);
        assert_eq!(req, expected);
    }

    #[test]
    fn a_refusal_names_its_status() {
        // TimeStampResp { PKIStatusInfo { status 2 (rejection), statusString "bad alg" } }
        let resp = der::sequence(&[&der::sequence(&[
            &der::encode(tag::INTEGER, &[2]),
            &der::sequence(&[&der::encode(tag::UTF8_STRING, b"bad alg")]),
        ])]);
        let e = token_of(&resp).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the time-stamping authority refused the request (status 2: bad alg)"
        );
        let granted_empty = der::sequence(&[&der::sequence(&[&der::encode(tag::INTEGER, &[0])])]);
        assert!(matches!(token_of(&granted_empty), Err(TokenError::NoToken)));
        assert!(verify_token(b"\x30\x03\x02\x01\x01", &[0; 32]).is_err());
    }
}
