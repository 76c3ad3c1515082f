//! Authentication APIs on the sweep's PLAINTEXT listener: SASL is refused there, and
//! SCRAM credentials are set, described and deleted.

use bytes::Bytes;
use gregor_protocol::kp::messages::*;

use super::common::Client;
use super::support::{check, s, Sweep};

const ILLEGAL_SASL_STATE: i16 = 34;
const RESOURCE_NOT_FOUND: i16 = 91;

pub(crate) async fn sasl_handshake(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
        |v, r| {
            assert_eq!(
                r.error_code, ILLEGAL_SASL_STATE,
                "v{v}: not a SASL listener"
            );
            assert!(r.mechanisms.is_empty(), "v{v}");
        },
    )
    .await
}

pub(crate) async fn sasl_authenticate(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0a\0b")),
        |v, r| {
            assert_eq!(r.error_code, ILLEGAL_SASL_STATE, "v{v}");
            assert!(r.auth_bytes.is_empty(), "v{v}");
        },
    )
    .await
}

pub(crate) async fn alter_user_scram_credentials(
    c: &mut Client,
    _cx: &Sweep<'_>,
    range: (i16, i16),
) {
    // Sets a credential, then deletes it (the describe check runs before this one).
    check(
        c,
        range,
        |v| {
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                    .with_name(s(&format!("sweep-{v}")))
                    .with_mechanism(1)
                    .with_iterations(4096)
                    .with_salt(Bytes::from_static(b"salt"))
                    .with_salted_password(Bytes::from_static(&[7; 32])),
            ])
        },
        |v, r| {
            assert_eq!(r.results.len(), 1, "v{v}");
            assert_eq!(
                r.results[0].error_code, 0,
                "v{v}: {:?}",
                r.results[0].error_message
            );
        },
    )
    .await;
    let described = c
        .call(
            &DescribeUserScramCredentialsRequest::default().with_users(None),
            0,
        )
        .await;
    let users: Vec<String> = described
        .results
        .iter()
        .map(|r| r.user.to_string())
        .collect();
    assert_eq!(users, [format!("sweep-{}", range.0)]);
    assert_eq!(described.results[0].credential_infos[0].iterations, 4096);
    check(
        c,
        range,
        |v| {
            AlterUserScramCredentialsRequest::default().with_deletions(vec![
                alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                    .with_name(s(&format!("sweep-{v}")))
                    .with_mechanism(1),
            ])
        },
        |v, r| assert_eq!(r.results[0].error_code, 0, "v{v}"),
    )
    .await;
}

pub(crate) async fn describe_user_scram_credentials(
    c: &mut Client,
    _cx: &Sweep<'_>,
    range: (i16, i16),
) {
    check(
        c,
        range,
        |_| {
            DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                describe_user_scram_credentials_request::UserName::default().with_name(s("nobody")),
            ]))
        },
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            assert_eq!(r.results[0].error_code, RESOURCE_NOT_FOUND, "v{v}");
        },
    )
    .await
}
