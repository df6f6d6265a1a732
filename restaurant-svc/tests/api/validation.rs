//! Every request is checked: bad input gets INVALID_ARGUMENT (or NOT_FOUND
//! for an unknown id) with a message that names the problem, never a panic
//! or INTERNAL.

use dishpatch::proto::restaurant::v1::{self as pb, restaurant_service_client::RestaurantServiceClient};
use test_support::{Backend, TestStore, assert_refused};
use tonic::{Code, transport::Channel};

const UNKNOWN_RESTAURANT: &str = "rst_00000000000000000000000000000000";
const UNKNOWN_ITEM: &str = "itm_00000000000000000000000000000000";

fn restaurant(name: &str, cuisine: &str, address: &str, rating: Option<f64>) -> pb::CreateRestaurantRequest {
    pb::CreateRestaurantRequest {
        name: name.into(),
        cuisine: cuisine.into(),
        address: address.into(),
        rating,
    }
}

fn price(restaurant_id: &str, items: &[(&str, i32)]) -> pb::PriceItemsRequest {
    pb::PriceItemsRequest {
        restaurant_id: restaurant_id.into(),
        items: items
            .iter()
            .map(|&(id, quantity)| pb::ItemQuantity {
                menu_item_id: id.into(),
                quantity,
            })
            .collect(),
    }
}

async fn client() -> (
    test_support::RunningService,
    RestaurantServiceClient<Channel>,
    TestStore,
) {
    let store = TestStore::new(Backend::Sqlite).await;
    let (service, client) = super::spawn(&store, true).await;
    (service, client, store)
}

#[tokio::test]
async fn refuses_bad_restaurants() {
    let (_service, mut c, _store) = client().await;
    let long = "x".repeat(101);
    let cases = [
        (restaurant("", "thai", "1 Road", None), "name is required"),
        (restaurant("   ", "thai", "1 Road", None), "name is required"),
        (
            restaurant(&long, "thai", "1 Road", None),
            "name must be at most 100 characters",
        ),
        (
            restaurant("Two\nLines", "thai", "1 Road", None),
            "name must be a single line",
        ),
        (restaurant("Thai Me", "", "1 Road", None), "cuisine is required"),
        (restaurant("Thai Me", "thai", "", None), "address is required"),
        (
            restaurant("Thai Me", "thai", "1 Road", Some(5.5)),
            "rating must be between 0.0 and 5.0",
        ),
        (
            restaurant("Thai Me", "thai", "1 Road", Some(-1.0)),
            "rating must be between 0.0 and 5.0",
        ),
        (
            restaurant("Thai Me", "thai", "1 Road", Some(f64::NAN)),
            "rating must be between 0.0 and 5.0",
        ),
    ];
    for (request, fragment) in cases {
        assert_refused(
            c.create_restaurant(request).await,
            Code::InvalidArgument,
            fragment,
        );
    }
}

#[tokio::test]
async fn refuses_malformed_and_unknown_ids() {
    let (_service, mut c, _store) = client().await;
    for (id, code, fragment) in [
        ("", Code::InvalidArgument, "id is required"),
        ("42", Code::InvalidArgument, "is malformed"),
        (
            "itm_00000000000000000000000000000000",
            Code::InvalidArgument,
            "is malformed",
        ),
        ("rst_' OR 1=1 --", Code::InvalidArgument, "is malformed"),
        (UNKNOWN_RESTAURANT, Code::NotFound, "not found"),
    ] {
        let request = pb::GetRestaurantRequest { id: id.into() };
        assert_refused(c.get_restaurant(request).await, code, fragment);
    }
    let request = pb::GetMenuRequest {
        restaurant_id: UNKNOWN_RESTAURANT.into(),
    };
    assert_refused(c.get_menu(request).await, Code::NotFound, UNKNOWN_RESTAURANT);
}

#[tokio::test]
async fn refuses_bad_list_requests() {
    let (_service, mut c, _store) = client().await;
    let cases = [
        (
            pb::ListRestaurantsRequest {
                page_size: 101,
                ..Default::default()
            },
            "page_size must be between 1 and 100",
        ),
        (
            pb::ListRestaurantsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListRestaurantsRequest {
                page_token: "next".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListRestaurantsRequest {
                query: "q".repeat(101),
                ..Default::default()
            },
            "query must be at most 100",
        ),
    ];
    for (request, fragment) in cases {
        assert_refused(c.list_restaurants(request).await, Code::InvalidArgument, fragment);
    }
}

#[tokio::test]
async fn refuses_bad_menu_items() {
    let (_service, mut c, _store) = client().await;
    let seeded = c
        .list_restaurants(pb::ListRestaurantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let restaurant_id = seeded.restaurants[0].id.clone();
    let item = |name: &str, description: &str, price_cents| pb::AddMenuItemRequest {
        restaurant_id: restaurant_id.clone(),
        name: name.into(),
        description: description.into(),
        price_cents,
        available: None,
    };
    let cases = [
        (item("", "", 100), Code::InvalidArgument, "name is required"),
        (
            item("Soup", "", -1),
            Code::InvalidArgument,
            "price_cents must be between 0 and 1000000",
        ),
        (
            item("Soup", "", 1_000_001),
            Code::InvalidArgument,
            "price_cents must be between 0 and 1000000",
        ),
        (
            item("Soup", &"d".repeat(501), 100),
            Code::InvalidArgument,
            "description must be at most 500",
        ),
        (
            pb::AddMenuItemRequest {
                restaurant_id: UNKNOWN_RESTAURANT.into(),
                ..item("Soup", "", 100)
            },
            Code::NotFound,
            "not found",
        ),
    ];
    for (request, code, fragment) in cases {
        assert_refused(c.add_menu_item(request).await, code, fragment);
    }

    let menu = c
        .get_menu(pb::GetMenuRequest {
            restaurant_id: restaurant_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let update = |menu_item_id: &str| pb::UpdateMenuItemRequest {
        restaurant_id: restaurant_id.clone(),
        menu_item_id: menu_item_id.into(),
        ..Default::default()
    };
    assert_refused(
        c.update_menu_item(update(&menu.items[0].id)).await,
        Code::InvalidArgument,
        "nothing to update",
    );
    let unknown = pb::UpdateMenuItemRequest {
        available: Some(false),
        ..update(UNKNOWN_ITEM)
    };
    assert_refused(c.update_menu_item(unknown).await, Code::NotFound, UNKNOWN_ITEM);
    let renamed_to_taken = pb::UpdateMenuItemRequest {
        name: Some(menu.items[1].name.clone()),
        ..update(&menu.items[0].id)
    };
    assert_refused(
        c.update_menu_item(renamed_to_taken).await,
        Code::AlreadyExists,
        "already has a menu item",
    );
}

#[tokio::test]
async fn refuses_bad_price_requests() {
    let (_service, mut c, _store) = client().await;
    let seeded = c
        .list_restaurants(pb::ListRestaurantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let restaurant_id = seeded.restaurants[0].id.as_str();
    let menu = c
        .get_menu(pb::GetMenuRequest {
            restaurant_id: restaurant_id.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let item = menu.items[0].id.as_str();
    let too_many: Vec<String> = (0..51).map(|_| dishpatch::ids::MENU_ITEM.generate()).collect();
    let too_many: Vec<(&str, i32)> = too_many.iter().map(|id| (id.as_str(), 1)).collect();
    let cases = [
        (
            price(restaurant_id, &[]),
            Code::InvalidArgument,
            "at least one menu item",
        ),
        (
            price(restaurant_id, &too_many),
            Code::InvalidArgument,
            "at most 50 menu items",
        ),
        (
            price(restaurant_id, &[(item, 0)]),
            Code::InvalidArgument,
            "items[0].quantity must be between 1 and 99",
        ),
        (
            price(restaurant_id, &[(item, 100)]),
            Code::InvalidArgument,
            "items[0].quantity must be between 1 and 99",
        ),
        (
            price(restaurant_id, &[(item, 1), (item, 2)]),
            Code::InvalidArgument,
            "listed twice",
        ),
        (
            price(restaurant_id, &[("soup", 1)]),
            Code::InvalidArgument,
            "items[0].menu_item_id \"soup\" is malformed",
        ),
        (
            price("", &[(item, 1)]),
            Code::InvalidArgument,
            "restaurant_id is required",
        ),
        (
            price(UNKNOWN_RESTAURANT, &[(item, 1)]),
            Code::NotFound,
            "restaurant",
        ),
        (
            price(restaurant_id, &[(UNKNOWN_ITEM, 1)]),
            Code::NotFound,
            "is not on the menu",
        ),
    ];
    for (request, code, fragment) in cases {
        assert_refused(c.price_items(request).await, code, fragment);
    }
}

/// Bytes sent as they are: a caller speaking gRPC with a message that is
/// not the method's.
#[derive(Debug, Clone, Default)]
struct RawBytes;

impl tonic::codec::Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl tonic::codec::Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        buf.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, buf: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

#[tokio::test]
async fn an_undecodable_message_is_invalid_argument() {
    let (service, _client, _store) = client().await;
    let channel = tonic::transport::Endpoint::from_shared(service.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    // A field header of wire type 7, which protobuf does not have.
    let garbage = vec![0x0f, 0xff, 0xff, 0xff];
    let path = "/dishpatch.restaurant.v1.RestaurantService/GetRestaurant"
        .parse()
        .unwrap();
    let refused = grpc
        .unary(tonic::Request::new(garbage), path, RawBytes)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("decode"), "{refused:?}");
}
