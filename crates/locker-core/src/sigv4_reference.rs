//! SigV4 query presigning written out from the specification, for the tests only.
//!
//! locker-core signs with rusty-s3, which signs for the service `s3` with `UNSIGNED-PAYLOAD`
//! and nothing else. The AWS SigV4 test suite signs for the service `service` with the hash of
//! the (empty) body, so its vectors cannot go through rusty-s3. This signer takes both as
//! parameters: it reproduces the suite's query-signing cases exactly (below), and the tests in
//! `s3.rs` check that rusty-s3 signs what this signer signs for S3. S3's own rules are kept:
//! the path is percent-encoded once and never normalized (an S3 key may contain `//` or `.`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::hash::to_hex;

/// Who signs, where and when. `date` is `YYYYMMDDTHHMMSSZ`.
pub(crate) struct Signer<'a> {
    pub access_key: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub date: &'a str,
    pub expires: u64,
}

/// A request as written: path and query not yet encoded, headers as sent (names in any case,
/// repeated names allowed, values untrimmed), `host` separately.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload: &'a str,
}

pub(crate) struct Signed {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
}

/// RFC 3986 encoding as SigV4 wants it: everything but `A-Za-z0-9-._~` (and `/` in paths) as
/// `%XX` with upper-case hex.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

impl Signer<'_> {
    pub(crate) fn presign(&self, r: &Request<'_>) -> Signed {
        // Canonical headers: lower-case names, values trimmed with inner runs of whitespace
        // (line folds too) made one space, repeated names joined by commas in order, sorted.
        let mut headers: Vec<(String, String)> = vec![("host".into(), r.host.into())];
        for (name, value) in r.headers {
            let name = name.to_ascii_lowercase();
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            match headers.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => {
                    v.push(',');
                    v.push_str(&value);
                }
                None => headers.push((name, value)),
            }
        }
        headers.sort();
        let signed_headers = headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let date8 = &self.date[..8];
        let scope = format!("{date8}/{}/{}/aws4_request", self.region, self.service);
        let credential = format!("{}/{scope}", self.access_key);
        let expires = self.expires.to_string();
        let mut query: Vec<(String, String)> = r
            .query
            .iter()
            .copied()
            .chain([
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                ("X-Amz-Credential", credential.as_str()),
                ("X-Amz-Date", self.date),
                ("X-Amz-Expires", expires.as_str()),
                ("X-Amz-SignedHeaders", signed_headers.as_str()),
            ])
            .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
            .collect();
        query.sort();
        let query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let canonical_request = format!(
            "{}\n{}\n{query}\n{canonical_headers}\n{signed_headers}\n{}",
            r.method,
            uri_encode(r.path, true),
            r.payload
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            self.date,
            to_hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let key = [self.region, self.service, "aws4_request"].iter().fold(
            hmac(format!("AWS4{}", self.secret).as_bytes(), date8),
            |k, part| hmac(&k, part),
        );
        let signature = to_hex(&hmac(&key, &string_to_sign));
        Signed {
            canonical_request,
            string_to_sign,
            signature,
        }
    }
}

pub(crate) const EMPTY_BODY: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub(crate) const UNRESERVED: &str =
    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The context every case of the AWS SigV4 test suite is signed in.
pub(crate) fn suite_signer() -> Signer<'static> {
    Signer {
        access_key: "AKIDEXAMPLE",
        secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region: "us-east-1",
        service: "service",
        date: "20150830T123600Z",
        expires: 3600,
    }
}

pub(crate) struct Case {
    pub name: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub query: &'static [(&'static str, &'static str)],
    pub headers: &'static [(&'static str, &'static str)],
    /// `query-signature.txt` of the case.
    pub signature: &'static str,
}

/// The query-signing cases of the AWS SigV4 test suite (as kept in awslabs/aws-c-auth,
/// tests/aws-signing-test-suite/v4) that apply to S3. Left out: the `*-normalized` path
/// cases (S3 never normalizes a path; their `*-unnormalized` twins are here), the session
/// token cases (locker signs with long-lived keys only) and the form-body cases (a
/// presigned S3 URL never signs the body).
pub(crate) const CASES: &[Case] = &[
    Case {
        name: "get-vanilla",
        method: "GET",
        path: "/",
        query: &[],
        headers: &[],
        signature: "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
    },
    Case {
        name: "get-vanilla-query",
        method: "GET",
        path: "/",
        query: &[],
        headers: &[],
        signature: "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
    },
    Case {
        name: "get-vanilla-empty-query-key",
        method: "GET",
        path: "/",
        query: &[("Param1", "value1")],
        headers: &[],
        signature: "49096700cbbaa5753443850f40df10f904fc2fdb544dc9512203cc77c471a9de",
    },
    Case {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path: "/",
        query: &[("Param2", "value2"), ("Param1", "value1")],
        headers: &[],
        signature: "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5",
    },
    Case {
        name: "get-vanilla-query-order-encoded",
        method: "GET",
        path: "/",
        query: &[
            ("Param-3", "Value3"),
            ("Param", "Value2"),
            ("\u{1234}", "Value1"),
        ],
        headers: &[],
        signature: "c5f1848ceec943ac2ca68ee720460c23aaae30a2300586597ada94c4a65e4787",
    },
    Case {
        name: "get-vanilla-query-unreserved",
        method: "GET",
        path: "/",
        query: &[(UNRESERVED, UNRESERVED)],
        headers: &[],
        signature: "8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf",
    },
    Case {
        name: "get-vanilla-utf8-query",
        method: "GET",
        path: "/",
        query: &[("\u{1234}", "bar")],
        headers: &[],
        signature: "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600",
    },
    Case {
        name: "get-unreserved",
        method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        query: &[],
        headers: &[],
        signature: "95968482db1b9e0fadef6efc1bd24689f77c77d9ef56919c96a28cc92e0d6005",
    },
    Case {
        name: "get-utf8",
        method: "GET",
        path: "/\u{1234}",
        query: &[],
        headers: &[],
        signature: "10eae3f14a260bd3911cc6d008d3c576d143b05b62f09782a7a4b37f52178e44",
    },
    Case {
        name: "get-space-unnormalized",
        method: "GET",
        path: "/example space/",
        query: &[],
        headers: &[],
        signature: "7a1f416954786484c9824d93c1f26ef64acb9b1b6c9154d08c9f07d0e394abf6",
    },
    Case {
        name: "get-slash-unnormalized",
        method: "GET",
        path: "//",
        query: &[],
        headers: &[],
        signature: "b2a9542809db687769200f56a844a03f2bd0291d6eb90232d5101c6a579446cd",
    },
    Case {
        name: "get-slashes-unnormalized",
        method: "GET",
        path: "//example//",
        query: &[],
        headers: &[],
        signature: "822a5a9ba28072c5ab2bb4a6307d0c88276d40e49fec6b724c03fb4d4ba60fc2",
    },
    Case {
        name: "get-slash-dot-slash-unnormalized",
        method: "GET",
        path: "/./",
        query: &[],
        headers: &[],
        signature: "a9b13e8f3484d9505bf1a6f347219f8f35b0fe8f128ceea597efc146a3dfe90c",
    },
    Case {
        name: "get-slash-pointless-dot-unnormalized",
        method: "GET",
        path: "/./example",
        query: &[],
        headers: &[],
        signature: "72b11f16d9530b18204bfb71f2d6ab085894c0ed8d352730a6e76234c58b5e10",
    },
    Case {
        name: "get-relative-unnormalized",
        method: "GET",
        path: "/example/..",
        query: &[],
        headers: &[],
        signature: "cbcb213b928a077e43275df47b500f1dfaa864ab3f5a18f6b95f4ff0938167ee",
    },
    Case {
        name: "get-relative-relative-unnormalized",
        method: "GET",
        path: "/example1/example2/../..",
        query: &[],
        headers: &[],
        signature: "b45db0bfd1cf15003493b733e33aa208dd981bd0e63037a6ed953f71d2118a16",
    },
    Case {
        name: "get-header-key-duplicate",
        method: "GET",
        path: "/",
        query: &[],
        headers: &[
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
        ],
        signature: "3349ee0b81b4b589da0ff28a395c3591e04de515651dd74f298fa992d1507a97",
    },
    Case {
        name: "get-header-value-multiline",
        method: "GET",
        path: "/",
        query: &[],
        headers: &[("My-Header1", "value1\n  value2\n     value3")],
        signature: "e6f5def831211aca02987a44b96826706278c7bc078112ae0263659c5b2f2d56",
    },
    Case {
        name: "get-header-value-order",
        method: "GET",
        path: "/",
        query: &[],
        headers: &[
            ("My-Header1", "value4"),
            ("My-Header1", "value1"),
            ("My-Header1", "value3"),
            ("My-Header1", "value2"),
        ],
        signature: "313720e71ca6202fdcfa9b20f88de01a4eb0638a83c833b1c184359a4eda864e",
    },
    Case {
        name: "get-header-value-trim",
        method: "GET",
        path: "/",
        query: &[],
        headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        signature: "e7bb0fd515e125e1aec2ecc4c0c17484fb06f6846b927c35e46005dd3df3acd4",
    },
    Case {
        name: "post-vanilla",
        method: "POST",
        path: "/",
        query: &[],
        headers: &[],
        signature: "2ce6e6d2e0cf2f9d1b55fafec88cd20574c31dc2e7631979f71ba2310083e95b",
    },
    Case {
        name: "post-vanilla-query",
        method: "POST",
        path: "/",
        query: &[("Param1", "value1")],
        headers: &[],
        signature: "a9ef26247f293bffe40eeff86a0480ba8c14d31503b2e0c3399e3a16bf1a3682",
    },
    Case {
        name: "post-vanilla-empty-query-value",
        method: "POST",
        path: "/",
        query: &[("Param1", "value1")],
        headers: &[],
        signature: "a9ef26247f293bffe40eeff86a0480ba8c14d31503b2e0c3399e3a16bf1a3682",
    },
    Case {
        name: "post-header-key-case",
        method: "POST",
        path: "/",
        query: &[],
        headers: &[],
        signature: "2ce6e6d2e0cf2f9d1b55fafec88cd20574c31dc2e7631979f71ba2310083e95b",
    },
    Case {
        name: "post-header-key-sort",
        method: "POST",
        path: "/",
        query: &[],
        headers: &[("My-Header1", "value1")],
        signature: "c09d07e0d55871f10f2a6d350d994acf6825a3cae70673d7def55616e6119dd7",
    },
    Case {
        name: "post-header-value-case",
        method: "POST",
        path: "/",
        query: &[],
        headers: &[("My-Header1", "VALUE1")],
        signature: "0698bc9e4f7f9139065ba2909c0e99da257e8e2a42492a097bcd46d792391fed",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(case: &Case) -> Signed {
        suite_signer().presign(&Request {
            method: case.method,
            host: "example.amazonaws.com",
            path: case.path,
            query: case.query,
            headers: case.headers,
            payload: EMPTY_BODY,
        })
    }

    #[test]
    fn reproduces_the_aws_sigv4_test_suite_query_cases() {
        for case in CASES {
            assert_eq!(sign(case).signature, case.signature, "{}", case.name);
        }
    }

    /// One case's intermediate steps too, as published (`query-canonical-request.txt` and
    /// `query-string-to-sign.txt` of get-header-value-trim).
    #[test]
    fn canonical_request_and_string_to_sign_of_a_suite_case() {
        let case = CASES
            .iter()
            .find(|c| c.name == "get-header-value-trim")
            .unwrap();
        let signed = sign(case);
        assert_eq!(
            signed.canonical_request,
            "GET\n/\nX-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request\
             &X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600\
             &X-Amz-SignedHeaders=host%3Bmy-header1%3Bmy-header2\n\
             host:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n\n\
             host;my-header1;my-header2\n{EMPTY_BODY}"
                .replace("{EMPTY_BODY}", EMPTY_BODY)
        );
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             84c9e353b6161b689210977f93b93e6a7182f9ecb2ceae8af8c3d86b080a88ae"
        );
    }

    /// A wrong secret, service or payload hash gives another signature: the cases above pin
    /// every input, not only some.
    #[test]
    fn every_input_is_signed() {
        let case = &CASES[0];
        let base = sign(case).signature;
        let other = |signer: Signer<'_>, payload: &str| {
            signer
                .presign(&Request {
                    method: case.method,
                    host: "example.amazonaws.com",
                    path: case.path,
                    query: case.query,
                    headers: case.headers,
                    payload,
                })
                .signature
        };
        assert_ne!(
            other(
                Signer {
                    service: "s3",
                    ..suite_signer()
                },
                EMPTY_BODY
            ),
            base
        );
        assert_ne!(
            other(
                Signer {
                    secret: "x",
                    ..suite_signer()
                },
                EMPTY_BODY
            ),
            base
        );
        assert_ne!(other(suite_signer(), "UNSIGNED-PAYLOAD"), base);
        assert_ne!(
            other(
                Signer {
                    expires: 3601,
                    ..suite_signer()
                },
                EMPTY_BODY
            ),
            base
        );
    }
}
