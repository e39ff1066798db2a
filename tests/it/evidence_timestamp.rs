//! `respond evidence timestamp RUN_DIR --tsa URL` against a real time-stamping authority:
//! OpenSSL's `openssl ts -reply` behind a tiny HTTP server started by the test, with a root CA
//! and a TSA certificate that the test generates with `openssl`. Nothing here mocks the token
//! parser: the token is OpenSSL's, and OpenSSL's own `ts -verify` cross-checks what respond
//! stored. Skipped, with a printed notice, when `openssl` is not installed.
//!
//! Pinned: an unreachable authority writes nothing (the bundle still verifies and its report
//! still says there is no timestamp); a granted token is stored under `timestamps/1/`, sealed,
//! named by the reports and checked by `evidence verify`; a token whose signature, imprint or
//! nonce is wrong is refused; an ECDSA authority verifies too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use respond::report::timestamp::token::{self, TokenError};

use crate::support::drill::bundle as drill_bundle;
use crate::support::respond::{verify, Ran, Respond};

/// `openssl`, when installed.
fn openssl(what: &str) -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("notice: openssl not installed; skipping {what}");
    }
    found
}

fn run_openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A root CA and a time-stamping authority under it, in `dir`: `ca.pem`, `tsa.pem`,
/// `tsa.key`, and `ts.cnf` for `openssl ts -reply`. `key` is `rsa` or `ec`.
fn make_tsa(dir: &Path, key: &str, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let newkey: &[&str] = match key {
        "rsa" => &["-newkey", "rsa:2048"],
        _ => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(newkey);
    ca.extend([
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=respond test root",
    ]);
    run_openssl(dir, &ca);
    let subj = format!("/CN={name}/O=respond tests");
    let mut csr = vec!["req"];
    csr.extend_from_slice(newkey);
    csr.extend([
        "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", &subj,
    ]);
    run_openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "extendedKeyUsage = critical, timeStamping\nsubjectKeyIdentifier = hash\n",
    )
    .unwrap();
    run_openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "7",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "tsa.pem",
        ],
    );
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    std::fs::write(
        dir.join("ts.cnf"),
        format!(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = {}\nserial = $dir/serial\n\
             signer_cert = $dir/tsa.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n\
             default_policy = 1.2.3.4.1\ndigests = sha256\naccuracy = secs:1\n\
             ess_cert_id_alg = sha256\n",
            dir.display()
        ),
    )
    .unwrap();
}

/// `openssl ts -reply` for the request `query` (DER), as the authority in `dir` answers it.
fn reply(dir: &Path, query: &[u8], n: usize) -> Vec<u8> {
    let q = dir.join(format!("q{n}.tsq"));
    let r = dir.join(format!("r{n}.tsr"));
    std::fs::write(&q, query).unwrap();
    let o = Command::new("openssl")
        .args(["ts", "-reply", "-config"])
        .arg(dir.join("ts.cnf"))
        .arg("-queryfile")
        .arg(&q)
        .arg("-out")
        .arg(&r)
        .output()
        .expect("run openssl ts -reply");
    assert!(
        o.status.success(),
        "openssl ts -reply: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(&r).unwrap()
}

/// The authority in `dir` behind HTTP on loopback: every POST body goes to `openssl ts
/// -reply`, its answer back as `application/timestamp-reply`. Returns the URL and the number
/// of requests served so far.
fn serve(dir: PathBuf) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsr", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            let answer = reply(&dir, &body, n);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&answer);
        }
    });
    (url, served)
}

fn timestamp(dir: &Path, url: &str) -> Ran {
    Respond::new()
        .args(["evidence", "timestamp"])
        .arg(dir)
        .args(["--tsa", url])
        .run()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

#[test]
fn a_local_tsa_stamps_the_sealed_manifest_and_verify_checks_it_offline() {
    if !openssl("the RFC 3161 timestamp test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tsa = tmp.path().join("tsa");
    make_tsa(&tsa, "rsa", "respond test TSA");
    let bundle = drill_bundle(&tmp.path().join("out"));

    // No authority reachable: nothing is written, the bundle still verifies.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/tsr", closed.local_addr().unwrap());
    drop(closed);
    let sums = std::fs::read(bundle.join("SHA256SUMS")).unwrap();
    let r = timestamp(&bundle, &dead);
    assert_ne!(r.code, Some(0), "{}", r.stdout);
    assert!(r.stderr.contains("cannot be reached"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    assert_eq!(std::fs::read(bundle.join("SHA256SUMS")).unwrap(), sums);
    assert!(!bundle.join("timestamps").exists());
    let html = std::fs::read_to_string(bundle.join("report.html")).unwrap();
    assert!(
        html.contains("None yet"),
        "the report says there is no timestamp"
    );
    assert_eq!(verify(&bundle).code, Some(0));

    // A real authority.
    let (url, served) = serve(tsa.clone());
    // Another writer holds the run: refused before anything is asked or written.
    let lock = respond::rundir::RunLock::acquire(&bundle).unwrap();
    let r = timestamp(&bundle, &url);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("is working on this run"), "{}", r.stderr);
    assert_eq!(served.load(Ordering::SeqCst), 0);
    drop(lock);

    let manifest = std::fs::read(bundle.join("manifest.json")).unwrap();
    let r = timestamp(&bundle, &url);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert!(r.stdout.contains("CN=respond test TSA"), "{}", r.stdout);
    let stamped = bundle.join("timestamps/1");
    assert_eq!(
        std::fs::read(stamped.join("manifest.json")).unwrap(),
        manifest,
        "the stamped manifest is the one that was sealed"
    );
    let digest = sha256_hex(&manifest);

    // OpenSSL itself accepts the stored answer for that manifest, chained to the test root.
    let o = Command::new("openssl")
        .args(["ts", "-verify", "-digest", &digest, "-in"])
        .arg(stamped.join("response.tsr"))
        .arg("-CAfile")
        .arg(tsa.join("ca.pem"))
        .arg("-untrusted")
        .arg(tsa.join("tsa.pem"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl ts -verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    // Sealed, and checked offline by `evidence verify`.
    let sums = std::fs::read_to_string(bundle.join("SHA256SUMS")).unwrap();
    for f in ["response.tsr", "manifest.json", "tsa.json"] {
        assert!(sums.contains(&format!("timestamps/1/{f}")), "{sums}");
    }
    let v = verify(&bundle);
    assert_eq!(v.code, Some(0), "{}\n{}", v.stdout, v.stderr);
    assert!(
        v.stdout.contains("1 trusted timestamp(s) verify"),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains("timestamp timestamps/1/response.tsr: signed by CN=respond test TSA"),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains(&digest), "{}", v.stdout);

    // The reports name the authority and the time.
    let html = std::fs::read_to_string(bundle.join("report.html")).unwrap();
    // (Handlebars writes `=` as `&#x3D;`.)
    assert!(
        html.contains("respond test TSA"),
        "report.html names the TSA"
    );
    let gen_time = v
        .stdout
        .split(" at ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("verify names the time");
    assert!(html.contains(gen_time), "report.html states {gen_time}");
    assert!(!html.contains("None yet"));
    let ticket = std::fs::read_to_string(bundle.join("support_ticket.md")).unwrap();
    assert!(ticket.contains("timestamps/1/response.tsr"), "{ticket}");
    let journal = std::fs::read_to_string(bundle.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"event\":\"timestamp\""));

    // The token is really checked: another hash, a flipped signature byte, another nonce.
    let answer = std::fs::read(stamped.join("response.tsr")).unwrap();
    let hash = hex::decode(&digest).unwrap();
    assert!(token::verify_response(&answer, &hash, None).is_ok());
    let mut other = hash.clone();
    other[0] ^= 1;
    assert!(matches!(
        token::verify_response(&answer, &other, None),
        Err(TokenError::ImprintMismatch { .. })
    ));
    let mut forged = answer.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(matches!(
        token::verify_response(&forged, &hash, None),
        Err(TokenError::BadSignature)
    ));
    assert!(matches!(
        token::verify_response(&answer, &hash, Some(&[9, 9, 9])),
        Err(TokenError::NonceMismatch { .. })
    ));

    // A token changed in the bundle fails verification, naming it.
    std::fs::write(stamped.join("response.tsr"), &forged).unwrap();
    let v = verify(&bundle);
    assert_eq!(v.code, Some(3), "{}", v.stdout);
    assert!(
        v.stdout.contains(
            "timestamp timestamps/1/response.tsr: the authority's signature does not verify"
        ),
        "{}",
        v.stdout
    );

    // A copy analyzed from that bundle leaves out the timestamps that no longer hold: they
    // vouch for the source as it was, not for the copy. The copy verifies.
    let copies = tmp.path().join("copies");
    let out = Respond::new()
        .args(["--json", "analyze"])
        .arg(&bundle)
        .arg("--out")
        .arg(&copies)
        .run()
        .success()
        .json();
    let copy = PathBuf::from(out["dir"].as_str().unwrap());
    assert!(!copy.join("timestamps").exists());
    let v = verify(&copy);
    assert_eq!(v.code, Some(0), "{}", v.stdout);
    let journal = std::fs::read_to_string(copy.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("\"timestamps_left_out\":true"),
        "{journal}"
    );
}

#[test]
fn an_ecdsa_authority_verifies_and_a_tampered_time_does_not() {
    if !openssl("the ECDSA timestamp test") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    make_tsa(tmp.path(), "ec", "respond test EC TSA");
    let hash = [0x5au8; 32];
    let nonce = [0x42, 1, 2, 3, 4, 5, 6, 7];
    let answer = reply(tmp.path(), &token::request(&hash, &nonce), 1);
    let v = token::verify_response(&answer, &hash, Some(&nonce)).unwrap();
    assert!(v.signer.contains("CN=respond test EC TSA"), "{}", v.signer);
    assert!(v.signature.starts_with("ECDSA P-256"), "{}", v.signature);
    assert!(v.time_stamping_usage);
    assert_eq!(v.policy, "1.2.3.4.1");
    // The time is inside the signed content: changing one digit breaks the binding.
    let at = answer
        .windows(2)
        .position(|w| w == [0x18, 0x0f])
        .expect("a GeneralizedTime in the token");
    let mut tampered = answer.clone();
    tampered[at + 2 + 3] ^= 1; // a digit of the year
    assert!(matches!(
        token::verify_response(&tampered, &hash, Some(&nonce)),
        Err(TokenError::AttributeMismatch(_))
    ));
}
