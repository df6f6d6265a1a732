//! Over mutual TLS, restaurant-svc answers only its own callers: the edge
//! and order-svc, with certificates from the deployment's CA.

use dishpatch::proto::restaurant::v1::{
    ListRestaurantsRequest, restaurant_service_client::RestaurantServiceClient,
};
use test_support::{
    Backend, RunningService, TestStore,
    services::restaurant_config,
    tls::{TestCerts, channel},
};
use tonic::{
    Code,
    transport::{Certificate, ClientTlsConfig, Endpoint},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A deployment's certificates, and restaurant-svc serving with its own
/// (and its store, which must outlive it).
async fn serve() -> (TestCerts, RunningService, TestStore) {
    let (certs, store) = (TestCerts::new(), TestStore::new(Backend::Sqlite).await);
    let config = restaurant_svc::Config {
        tls: certs.serve_args("restaurant-svc"),
        ..restaurant_config(store.url())
    };
    let service = test_support::start(restaurant_svc::build(config).await.expect("builds"));
    (certs, service, store)
}

/// Lists restaurants over a connection made with `tls`.
async fn list(service: &RunningService, tls: ClientTlsConfig) -> Result<usize, tonic::Status> {
    let listed = RestaurantServiceClient::new(channel(service.addr(), tls))
        .list_restaurants(ListRestaurantsRequest::default())
        .await?;
    Ok(listed.into_inner().restaurants.len())
}

/// Asserts that a call failed in the TLS handshake, for `why` (the name of
/// rustls's error or alert).
#[track_caller]
fn assert_handshake_failed(refused: &tonic::Status, why: &str) {
    let error = format!("{refused:?}");
    assert!(
        error.contains(why),
        "should fail the handshake with {why}: {error}"
    );
}

#[tokio::test]
async fn only_its_callers_are_answered() {
    let (certs, service, _store) = serve().await;

    for caller in ["edge", "order-svc"] {
        let listed = list(&service, certs.tls(caller).client("restaurant-svc")).await;
        assert!(listed.expect("its callers are answered") > 0, "{caller}");
    }

    // notify-svc's certificate is the CA's, but notify-svc is no caller:
    // it may ask after health, and nothing else.
    let stranger = certs.tls("notify-svc").client("restaurant-svc");
    let refused = list(&service, stranger.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("answers only edge and order-svc")
            && refused.message().contains("names notify-svc"),
        "{refused:?}"
    );
    let health = HealthClient::new(channel(service.addr(), stranger))
        .check(HealthCheckRequest::default())
        .await
        .expect("any certificate from the CA may ask after health");
    assert_eq!(health.into_inner().status, 1, "SERVING");
}

#[tokio::test]
async fn callers_without_a_certificate_from_the_ca_are_refused() {
    let (certs, service, _store) = serve().await;
    let ca = std::fs::read(certs.files("edge").ca).unwrap();

    // Plaintext, as every caller was before.
    let channel = Endpoint::from_shared(service.url()).unwrap().connect_lazy();
    let refused = RestaurantServiceClient::new(channel)
        .list_restaurants(ListRestaurantsRequest::default())
        .await
        .unwrap_err();
    // The server hangs up on the first bytes, which are not a handshake.
    assert!(
        matches!(refused.code(), Code::Unavailable | Code::Unknown)
            && refused.message().contains("transport error"),
        "{refused:?}"
    );

    // TLS that trusts the service, but shows no certificate of its own.
    let anonymous = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca))
        .domain_name("restaurant-svc");
    let refused = list(&service, anonymous).await.unwrap_err();
    assert_handshake_failed(&refused, "CertificateRequired");

    // An "edge" certificate from another CA.
    let elsewhere = TestCerts::new().tls("edge");
    let forged = elsewhere
        .client("restaurant-svc")
        .ca_certificate(Certificate::from_pem(&ca));
    let refused = list(&service, forged).await.unwrap_err();
    assert_handshake_failed(&refused, "received fatal alert");
}

#[tokio::test]
async fn a_caller_accepts_only_the_service_it_meant_to_call() {
    let (certs, service, _store) = serve().await;
    // The edge, thinking this address is order-svc's.
    let mistaken = certs.tls("edge").client("order-svc");
    let refused = list(&service, mistaken).await.unwrap_err();
    assert_handshake_failed(&refused, "NotValidForName");
}

#[tokio::test]
async fn grpcurl_works_with_a_certificate_and_not_without() {
    if test_support::grpcurl::skipped() {
        return;
    }
    let (certs, service, _store) = serve().await;
    let edge = certs.files("edge");
    let (cert, key, ca) = (
        edge.cert.display().to_string(),
        edge.key.display().to_string(),
        edge.ca.display().to_string(),
    );
    let tls = [
        "-cacert",
        &ca,
        "-cert",
        &cert,
        "-key",
        &key,
        "-servername",
        "restaurant-svc",
    ];
    let listed = test_support::grpcurl::run(&tls, service.addr(), &["list"]).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("dishpatch.restaurant.v1.RestaurantService"));
    let call = test_support::grpcurl::run(
        &tls,
        service.addr(),
        &["dishpatch.restaurant.v1.RestaurantService/ListRestaurants"],
    )
    .await;
    assert!(call.status.success(), "{}", String::from_utf8_lossy(&call.stderr));

    // Refused at the handshake: grpcurl would try again until its connect
    // timeout, 10 s unless told.
    let refused = ["-connect-timeout", "1"];
    let plaintext = test_support::grpcurl::run(
        &[&refused[..], &["-plaintext"]].concat(),
        service.addr(),
        &["list"],
    )
    .await;
    assert!(!plaintext.status.success(), "plaintext grpcurl is refused");
    let anonymous = [&refused[..], &["-cacert", &ca, "-servername", "restaurant-svc"]].concat();
    let anonymous = test_support::grpcurl::run(&anonymous, service.addr(), &["list"]).await;
    assert!(
        !anonymous.status.success(),
        "grpcurl without a certificate is refused"
    );
}

#[tokio::test]
async fn beyond_loopback_it_serves_plaintext_only_when_told() {
    let store = TestStore::new(Backend::Sqlite).await;
    let everywhere = restaurant_svc::Config {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..restaurant_config(store.url())
    };
    let refused = restaurant_svc::build(everywhere.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("beyond loopback, in plaintext") && refused.contains("--insecure-plaintext"),
        "{refused}"
    );

    let mut told = everywhere.clone();
    told.tls.insecure_plaintext = true;
    let service = test_support::start(restaurant_svc::build(told).await.expect("told it may"));
    service.stop().await;

    let certs = TestCerts::new();
    let over_tls = restaurant_svc::Config {
        tls: certs.serve_args("restaurant-svc"),
        ..everywhere
    };
    let service = test_support::start(restaurant_svc::build(over_tls).await.expect("with a certificate"));
    service.stop().await;
}
