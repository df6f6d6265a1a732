//! Who may do what, through the real edge in front of the real services:
//! every route for every kind of caller (nobody, a customer, another
//! customer, staff of the restaurant, staff of another, an admin), tokens
//! that must be refused and why, development sign-in, and keys that rotate
//! while the edge runs.

use super::Fleet;
use edge::auth::{Claims, Principal, Role, dev::DevKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use test_support::eventually;

/// The callers of the matrix.
struct Callers {
    ana: String,
    bob: String,
    /// Staff of the first restaurant.
    kitchen: String,
    /// Staff of the second.
    elsewhere: String,
    admin: String,
}

impl Callers {
    fn new(fleet: &Fleet, restaurant: &str, other: &str) -> Self {
        let token = |sub: &str, role, restaurants: &[&str]| {
            let restaurants = restaurants.iter().map(|id| (*id).to_owned()).collect();
            fleet.token(&Principal::new(sub.to_owned(), role, restaurants).unwrap())
        };
        Self {
            ana: fleet.customer_token("ana"),
            bob: fleet.customer_token("bob"),
            kitchen: token("kim", Role::Restaurant, &[restaurant]),
            elsewhere: token("eli", Role::Restaurant, &[other]),
            admin: fleet.admin_token(),
        }
    }
}

/// Sends a request as the holder of `token` (nobody for `None`): its
/// status and JSON body.
async fn send(
    fleet: &Fleet,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, fleet.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the edge answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Two seeded restaurants, and two available items of the first.
async fn two_restaurants(fleet: &Fleet) -> (String, String, Vec<Value>) {
    let (restaurant, items) = fleet.menu().await;
    let listed = fleet.get_json("/api/restaurants?limit=100").await;
    let other = listed["restaurants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .find(|id| *id != restaurant)
        .unwrap();
    (restaurant, other, items)
}

fn order_of(restaurant: &str, items: &[Value], customer: Option<&str>) -> Value {
    let mut order = json!({
        "restaurantId": restaurant,
        "items": [{"menuItemId": items[0]["id"], "quantity": 1}],
    });
    if let Some(customer) = customer {
        order["customer"] = json!(customer);
    }
    order
}

/// Who asks (for the failure message), their token, the method, path and
/// body, and the status and error code expected.
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    Method,
    String,
    Option<Value>,
    u16,
    &'a str,
);

#[tokio::test]
async fn every_route_answers_each_caller_as_the_rules_say() {
    let fleet = Fleet::start().await;
    let (restaurant, other, items) = two_restaurants(&fleet).await;
    let who = Callers::new(&fleet, &restaurant, &other);
    let (ana, bob, kitchen, elsewhere, admin) = (
        Some(who.ana.as_str()),
        Some(who.bob.as_str()),
        Some(who.kitchen.as_str()),
        Some(who.elsewhere.as_str()),
        Some(who.admin.as_str()),
    );

    // Ana orders as herself; her name is taken from her token.
    let (status, placed) = send(
        &fleet,
        ana,
        Method::POST,
        "/api/orders",
        Some(order_of(&restaurant, &items, None)),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(placed["customer"], "ana");
    let order = format!("/api/orders/{}", placed["id"].as_str().unwrap());
    let (_, to_cancel) = send(
        &fleet,
        ana,
        Method::POST,
        "/api/orders",
        Some(order_of(&restaurant, &items, Some("ana"))),
    )
    .await;
    let to_cancel = format!("/api/orders/{}/status", to_cancel["id"].as_str().unwrap());

    let new_restaurant = json!({"name": "Casa Pepe", "cuisine": "spanish", "address": "3 Plaza Mayor"});
    let new_item = |name: &str| json!({"name": name, "priceCents": 1850});
    let items_of = format!("/api/restaurants/{restaurant}/menu/items");
    let accept = json!({"status": "accepted"});
    let cancel = json!({"status": "cancelled"});
    let status_of = format!("{order}/status");
    let (get, post, patch) = (Method::GET, Method::POST, Method::PATCH);
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        // Browsing needs nobody.
        ("nobody", None, get.clone(), "/api/restaurants".into(), None, 200, ""),
        ("nobody", None, get.clone(), format!("/api/restaurants/{restaurant}/menu"), None, 200, ""),
        ("ana", ana, get.clone(), format!("/api/restaurants/{restaurant}"), None, 200, ""),
        // Restaurants: admins create them; staff change their own menus.
        ("nobody", None, post.clone(), "/api/restaurants".into(), Some(new_restaurant.clone()), 401, "unauthenticated"),
        ("ana", ana, post.clone(), "/api/restaurants".into(), Some(new_restaurant.clone()), 403, "permission_denied"),
        ("kitchen", kitchen, post.clone(), "/api/restaurants".into(), Some(new_restaurant.clone()), 403, "permission_denied"),
        ("admin", admin, post.clone(), "/api/restaurants".into(), Some(new_restaurant), 201, ""),
        ("nobody", None, post.clone(), items_of.clone(), Some(new_item("Paella 1")), 401, "unauthenticated"),
        ("ana", ana, post.clone(), items_of.clone(), Some(new_item("Paella 2")), 403, "permission_denied"),
        ("elsewhere", elsewhere, post.clone(), items_of.clone(), Some(new_item("Paella 3")), 403, "permission_denied"),
        ("kitchen", kitchen, post.clone(), items_of.clone(), Some(new_item("Paella 4")), 201, ""),
        ("admin", admin, post.clone(), items_of, Some(new_item("Paella 5")), 201, ""),
        // Placing orders: customers as themselves, admins for someone.
        ("nobody", None, post.clone(), "/api/orders".into(), Some(order_of(&restaurant, &items, None)), 401, "unauthenticated"),
        ("ana as bob", ana, post.clone(), "/api/orders".into(), Some(order_of(&restaurant, &items, Some("bob"))), 403, "permission_denied"),
        ("kitchen", kitchen, post.clone(), "/api/orders".into(), Some(order_of(&restaurant, &items, None)), 403, "permission_denied"),
        ("admin for nobody", admin, post.clone(), "/api/orders".into(), Some(order_of(&restaurant, &items, None)), 400, "invalid_argument"),
        ("admin for bob", admin, post.clone(), "/api/orders".into(), Some(order_of(&restaurant, &items, Some("bob"))), 201, ""),
        // Reading an order: its customer, its kitchen, admins; to anyone
        // else it does not exist.
        ("nobody", None, get.clone(), order.clone(), None, 401, "unauthenticated"),
        ("ana", ana, get.clone(), order.clone(), None, 200, ""),
        ("bob", bob, get.clone(), order.clone(), None, 404, "not_found"),
        ("kitchen", kitchen, get.clone(), order.clone(), None, 200, ""),
        ("elsewhere", elsewhere, get.clone(), order.clone(), None, 404, "not_found"),
        ("admin", admin, get.clone(), order.clone(), None, 200, ""),
        // Moving it: the kitchen (and admins); its customer only cancels.
        ("nobody", None, patch.clone(), status_of.clone(), Some(accept.clone()), 401, "unauthenticated"),
        ("bob", bob, patch.clone(), status_of.clone(), Some(cancel.clone()), 404, "not_found"),
        ("elsewhere", elsewhere, patch.clone(), status_of.clone(), Some(accept.clone()), 404, "not_found"),
        ("ana", ana, patch.clone(), status_of.clone(), Some(accept.clone()), 403, "permission_denied"),
        ("kitchen", kitchen, patch.clone(), status_of, Some(accept), 200, ""),
        ("ana", ana, patch.clone(), to_cancel, Some(cancel), 200, ""),
        // Listing orders: one's own, one's restaurant's, or any.
        ("nobody", None, get.clone(), "/api/orders".into(), None, 401, "unauthenticated"),
        ("ana", ana, get.clone(), "/api/orders?customer=bob".into(), None, 403, "permission_denied"),
        ("elsewhere", elsewhere, get.clone(), format!("/api/orders?restaurantId={restaurant}"), None, 403, "permission_denied"),
        ("admin", admin, get.clone(), "/api/orders?customer=bob".into(), None, 200, ""),
        // Notifications: one's own, one's restaurant's, or any.
        ("nobody", None, get.clone(), "/api/notifications".into(), None, 401, "unauthenticated"),
        ("ana", ana, get.clone(), "/api/notifications?recipient=bob".into(), None, 403, "permission_denied"),
        ("kitchen", kitchen, get.clone(), "/api/notifications?recipient=ana".into(), None, 403, "permission_denied"),
        ("kitchen", kitchen, get.clone(), format!("/api/notifications?recipient=restaurant:{other}"), None, 403, "permission_denied"),
        ("admin", admin, get, "/api/notifications?recipient=bob".into(), None, 200, ""),
    ];
    for (caller, token, method, path, body, expected, code) in cases {
        let what = format!("{caller}: {method} {path}");
        let (status, answer) = send(&fleet, token, method, &path, body).await;
        assert_eq!(status.as_u16(), expected, "{what}: {answer}");
        if !code.is_empty() {
            assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        }
    }

    // What a list shows is the caller's own, whatever it asks for.
    let (_, mine) = send(&fleet, ana, Method::GET, "/api/orders", None).await;
    let customers: Vec<&Value> = mine["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["customer"])
        .collect();
    assert!(
        customers.len() >= 2 && customers.iter().all(|c| *c == "ana"),
        "{mine}"
    );
    let (_, kitchens) = send(&fleet, kitchen, Method::GET, "/api/orders", None).await;
    let orders = kitchens["orders"].as_array().unwrap();
    assert!(
        orders.len() >= 3 && orders.iter().all(|o| o["restaurantId"] == restaurant.as_str()),
        "{kitchens}"
    );
    let recipient = format!("restaurant:{restaurant}");
    eventually("the kitchen's notifications", Duration::from_secs(10), || async {
        let (_, listed) = send(&fleet, kitchen, Method::GET, "/api/notifications", None).await;
        let notifications = listed["notifications"].as_array()?.clone();
        (!notifications.is_empty()).then_some(())?;
        assert!(
            notifications.iter().all(|n| n["recipient"] == recipient.as_str()),
            "{listed}"
        );
        Some(())
    })
    .await;
    let (_, anas) = send(&fleet, ana, Method::GET, "/api/notifications", None).await;
    let notifications = anas["notifications"].as_array().unwrap();
    assert!(notifications.iter().all(|n| n["recipient"] == "ana"), "{anas}");
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn bad_tokens_are_refused_saying_why() {
    let fleet = Fleet::start().await;
    let now = unix_now();
    let claims = |edit: &dyn Fn(&mut Claims)| {
        let mut claims = Claims {
            sub: "ana".into(),
            role: Role::Customer,
            restaurants: vec![],
            iss: edge::auth::dev::ISSUER.into(),
            aud: edge::auth::dev::AUDIENCE.into(),
            iat: now,
            nbf: now,
            exp: now + 600,
        };
        edit(&mut claims);
        fleet.signing_key().sign_claims(&claims)
    };
    let good = claims(&|_| {});
    let (header, payload, signature) = {
        let parts: Vec<&str> = good.split('.').collect();
        (parts[0].to_owned(), parts[1].to_owned(), parts[2].to_owned())
    };
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // Ana's signature over Bob's name.
    let forged_claims = String::from_utf8(b64.decode(&payload).unwrap())
        .unwrap()
        .replace("\"ana\"", "\"bob\"");
    let forged = format!("{header}.{}.{signature}", b64.encode(forged_claims));
    let unsigned = format!("{}.{payload}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#));
    let hmac = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::from_slice::<Value>(&b64.decode(&payload).unwrap()).unwrap(),
        &jsonwebtoken::EncodingKey::from_secret(b"guessable").unwrap(),
    )
    .unwrap();
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = DevKey::load_or_create(stranger_dir.path()).unwrap();
    let strangers = stranger.sign(
        &Principal::new("ana".into(), Role::Customer, vec![]).unwrap(),
        edge::auth::dev::ISSUER,
        edge::auth::dev::AUDIENCE,
        Duration::from_secs(600),
    );

    for (what, authorization, fragment) in [
        (
            "expired",
            format!("Bearer {}", claims(&|c| c.exp = now - 120)),
            "expired",
        ),
        (
            "not yet valid",
            format!("Bearer {}", claims(&|c| c.nbf = now + 600)),
            "not valid yet",
        ),
        (
            "another issuer",
            format!("Bearer {}", claims(&|c| c.iss = "evil".into())),
            "issuer",
        ),
        (
            "another audience",
            format!("Bearer {}", claims(&|c| c.aud = "other-app".into())),
            "audience",
        ),
        (
            "a customer named like a restaurant",
            format!("Bearer {}", claims(&|c| c.sub = "restaurant:x".into())),
            "sub",
        ),
        (
            "staff of no restaurant",
            format!("Bearer {}", claims(&|c| c.role = Role::Restaurant)),
            "restaurants",
        ),
        ("forged", format!("Bearer {forged}"), "signature"),
        ("unsigned", format!("Bearer {unsigned}"), "none"),
        ("HMAC", format!("Bearer {hmac}"), "algorithm"),
        ("a stranger's key", format!("Bearer {strangers}"), "does not know"),
        ("garbage", "Bearer not.a.jwt".to_owned(), "malformed"),
        (
            "another scheme",
            format!("Basic {}", b64.encode("ana:secret")),
            "Authorization: Bearer",
        ),
        ("no token", "Bearer ".to_owned(), "Authorization: Bearer"),
    ] {
        // Even a read that needs no token: a bad one is never ignored.
        for path in ["/api/restaurants", "/api/orders"] {
            let response = reqwest::Client::new()
                .get(fleet.url(path))
                .header("authorization", &authorization)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{what}: {path}");
            assert_eq!(
                response.headers()["www-authenticate"],
                r#"Bearer realm="dishpatch", error="invalid_token""#,
                "{what}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "invalid_token", "{what}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(fragment),
                "{what}: {message:?} should say {fragment:?}"
            );
        }
    }

    // Clocks that differ a little are forgiven.
    let (status, _) = send(
        &fleet,
        Some(&claims(&|c| c.exp = now - 5)),
        Method::GET,
        "/api/orders",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let response = reqwest::Client::new()
        .get(fleet.url("/api/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="dishpatch""#
    );
}

#[tokio::test]
async fn development_sign_in_issues_tokens_that_work() {
    let fleet = Fleet::start().await;
    let (restaurant, _, items) = two_restaurants(&fleet).await;
    let sign_in = |body: Value| send(&fleet, None, Method::POST, "/api/dev/sign-in", Some(body));

    let (status, signed_in) = sign_in(json!({"sub": "Ana María", "role": "customer"})).await;
    assert_eq!(status, 200, "{signed_in}");
    assert_eq!(signed_in["tokenType"], "Bearer");
    assert_eq!(signed_in["expiresIn"], 3600);
    assert_eq!(
        (&signed_in["sub"], &signed_in["role"]),
        (&json!("Ana María"), &json!("customer"))
    );
    let token = signed_in["token"].as_str().unwrap();
    let (status, placed) = send(
        &fleet,
        Some(token),
        Method::POST,
        "/api/orders",
        Some(order_of(&restaurant, &items, None)),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &placed["customer"]),
        (201, &json!("Ana María")),
        "{placed}"
    );

    let (status, staff) =
        sign_in(json!({"sub": "kim", "role": "restaurant", "restaurants": [restaurant]})).await;
    assert_eq!(status, 200, "{staff}");
    let (status, _) = send(
        &fleet,
        staff["token"].as_str(),
        Method::PATCH,
        &format!("/api/orders/{}/status", placed["id"].as_str().unwrap()),
        Some(json!({"status": "accepted"})),
    )
    .await;
    assert_eq!(status, 200);

    for (body, status, fragment) in [
        (
            json!({"sub": "kim", "role": "restaurant"}),
            400,
            "must name the restaurants",
        ),
        (
            json!({"sub": "ana", "role": "customer", "restaurants": [restaurant]}),
            400,
            "works for no restaurant",
        ),
        (
            json!({"sub": "kim", "role": "restaurant", "restaurants": ["rst_00000000000000000000000000000000"]}),
            404,
            "not found",
        ),
        (json!({"sub": "root", "role": "superuser"}), 400, "role"),
        (json!({"sub": " ", "role": "admin"}), 400, "sub"),
    ] {
        let (got, answer) = sign_in(body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(fragment),
            "{body}: {message:?} should say {fragment:?}"
        );
    }
}

#[tokio::test]
async fn keys_rotate_while_the_edge_runs() {
    let fleet = Fleet::start().await;
    let old = fleet.admin_token();
    let (status, _) = send(&fleet, Some(&old), Method::GET, "/api/orders", None).await;
    assert_eq!(status, 200);

    // The stack's key is replaced by a new one in the JWKS file the edge
    // reads: tokens of the old key stop working, the new key's start.
    let new_dir = tempfile::tempdir().unwrap();
    let new_key = DevKey::load_or_create(new_dir.path()).unwrap();
    let jwks = fleet.auth_dir().join(edge::auth::dev::JWKS_FILE);
    std::fs::write(&jwks, serde_json::to_vec(&new_key.jwks()).unwrap()).unwrap();
    let admin = Principal::new("root".into(), Role::Admin, vec![]).unwrap();
    let new = new_key.sign(
        &admin,
        edge::auth::dev::ISSUER,
        edge::auth::dev::AUDIENCE,
        Duration::from_secs(600),
    );
    eventually(
        "the edge to read the new keys",
        Duration::from_secs(10),
        || async {
            let (old_status, _) = send(&fleet, Some(&old), Method::GET, "/api/orders", None).await;
            let (new_status, _) = send(&fleet, Some(&new), Method::GET, "/api/orders", None).await;
            (old_status == 401 && new_status == 200).then_some(())
        },
    )
    .await;

    // A file that changes into something unusable leaves the keys be: a
    // token the edge has not seen yet (so not remembered) still verifies.
    std::fs::write(&jwks, "{\"keys\": [").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let other = Principal::new("root-2".into(), Role::Admin, vec![]).unwrap();
    let unseen = new_key.sign(
        &other,
        edge::auth::dev::ISSUER,
        edge::auth::dev::AUDIENCE,
        Duration::from_secs(600),
    );
    let (status, _) = send(&fleet, Some(&unseen), Method::GET, "/api/orders", None).await;
    assert_eq!(status, 200);

    // And the edge still watches the file: the old key, put back, works.
    std::fs::write(&jwks, serde_json::to_vec(&fleet.signing_key().jwks()).unwrap()).unwrap();
    eventually(
        "the edge to read the old key again",
        Duration::from_secs(10),
        || async {
            let (status, _) = send(&fleet, Some(&old), Method::GET, "/api/orders", None).await;
            (status == 200).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn an_edge_refuses_to_start_with_keys_it_could_not_use() {
    let (trusted, stranger) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    DevKey::load_or_create(trusted.path()).unwrap();
    DevKey::load_or_create(stranger.path()).unwrap();
    let jwks = trusted.path().join(edge::auth::dev::JWKS_FILE);
    let start = |extra: &[&std::ffi::OsStr]| {
        use clap::Parser;
        let mut args: Vec<&std::ffi::OsStr> = ["edge", "--listen", "127.0.0.1:0", "--jwt-jwks"]
            .iter()
            .map(std::ffi::OsStr::new)
            .collect();
        args.push(jwks.as_os_str());
        args.extend_from_slice(extra);
        edge::build(edge::Config::parse_from(args))
    };
    let issued = ["--jwt-issuer", "dishpatch-local", "--jwt-audience", "dishpatch"].map(std::ffi::OsStr::new);

    // Keys without the issuer and audience their tokens must name.
    let refused = start(&[]).await.unwrap_err().to_string();
    assert!(
        refused.contains("--jwt-issuer and --jwt-audience are required"),
        "{refused}"
    );
    // A sign-in key whose tokens the edge would refuse.
    let strangers_key = stranger.path().join(edge::auth::dev::KEY_FILE);
    let mut args = issued.to_vec();
    args.extend([
        std::ffi::OsStr::new("--dev-sign-in-key"),
        strangers_key.as_os_str(),
    ]);
    let refused = start(&args).await.unwrap_err().to_string();
    assert!(refused.contains("is not among the token keys"), "{refused}");
    // The trusted one is fine.
    let trusted_key = trusted.path().join(edge::auth::dev::KEY_FILE);
    let mut args = issued.to_vec();
    args.extend([std::ffi::OsStr::new("--dev-sign-in-key"), trusted_key.as_os_str()]);
    assert!(start(&args).await.is_ok());
}
