//! Restaurants and menus: create, read, list, update, price; on SQLite and
//! PostgreSQL.

use dishpatch::proto::restaurant::v1::{self as pb, restaurant_service_client::RestaurantServiceClient};
use test_support::{Backend, TestStore};
use tonic::{Code, transport::Channel};

async fn create(client: &mut RestaurantServiceClient<Channel>, name: &str, cuisine: &str) -> pb::Restaurant {
    client
        .create_restaurant(pb::CreateRestaurantRequest {
            name: name.into(),
            cuisine: cuisine.into(),
            address: "1 Test Street".into(),
            rating: Some(4.5),
        })
        .await
        .expect("creates")
        .into_inner()
}

async fn add_item(
    client: &mut RestaurantServiceClient<Channel>,
    restaurant_id: &str,
    name: &str,
    price_cents: i64,
) -> pb::MenuItem {
    client
        .add_menu_item(pb::AddMenuItemRequest {
            restaurant_id: restaurant_id.into(),
            name: name.into(),
            description: format!("{name}, freshly made"),
            price_cents,
            available: None,
        })
        .await
        .expect("adds")
        .into_inner()
}

/// Applies `changes` to `item` (its ids filled in): the item as updated.
async fn update_item(
    client: &mut RestaurantServiceClient<Channel>,
    item: &pb::MenuItem,
    changes: pb::UpdateMenuItemRequest,
) -> pb::MenuItem {
    client
        .update_menu_item(pb::UpdateMenuItemRequest {
            restaurant_id: item.restaurant_id.clone(),
            menu_item_id: item.id.clone(),
            ..changes
        })
        .await
        .expect("updates")
        .into_inner()
}

async fn creates_reads_and_lists_restaurants(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_service, mut client) = super::spawn(&store, false).await;

    let created = create(&mut client, "  Casa Pepe ", "Spanish").await;
    assert_eq!(created.name, "Casa Pepe", "names are trimmed");
    assert!(created.id.starts_with("rst_"));
    assert!(created.created_at.is_some());

    let fetched = client
        .get_restaurant(pb::GetRestaurantRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, created);

    create(&mut client, "Sushi Zen", "japanese").await;
    create(&mut client, "Casa Luna", "spanish").await;

    let spanish = client
        .list_restaurants(pb::ListRestaurantsRequest {
            cuisine: "SPANISH".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = spanish.restaurants.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["Casa Pepe", "Casa Luna"],
        "cuisine matches case-insensitively"
    );

    let search = client
        .list_restaurants(pb::ListRestaurantsRequest {
            query: "casa".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(search.restaurants.len(), 2, "text search is case-insensitive");

    let wildcard = client
        .list_restaurants(pb::ListRestaurantsRequest {
            query: "%".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        wildcard.restaurants.is_empty(),
        "LIKE wildcards in a query match literally"
    );
}

async fn pages_through_restaurants(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_service, mut client) = super::spawn(&store, false).await;
    for n in 0..7 {
        create(&mut client, &format!("Diner {n}"), "american").await;
    }

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_restaurants(pb::ListRestaurantsRequest {
                page_size: 3,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.restaurants.len() <= 3);
        seen.extend(page.restaurants.into_iter().map(|r| r.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let expected: Vec<String> = (0..7).map(|n| format!("Diner {n}")).collect();
    assert_eq!(seen, expected, "every restaurant once, in creation order");
}

async fn keeps_a_menu_and_prices_from_it(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_service, mut client) = super::spawn(&store, false).await;
    let restaurant = create(&mut client, "Noodle Bar", "chinese").await;
    let soup = add_item(&mut client, &restaurant.id, "Wonton Soup", 850).await;
    let buns = add_item(&mut client, &restaurant.id, "Pork Buns", 600).await;
    assert!(soup.available, "new items are available unless said otherwise");

    let duplicate = client
        .add_menu_item(pb::AddMenuItemRequest {
            restaurant_id: restaurant.id.clone(),
            name: "Wonton Soup".into(),
            price_cents: 900,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists, "{duplicate:?}");

    let menu = client
        .get_menu(pb::GetMenuRequest {
            restaurant_id: restaurant.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(menu.items, [soup.clone(), buns.clone()]);

    let priced = client
        .price_items(pb::PriceItemsRequest {
            restaurant_id: restaurant.id.clone(),
            items: vec![
                pb::ItemQuantity {
                    menu_item_id: buns.id.clone(),
                    quantity: 3,
                },
                pb::ItemQuantity {
                    menu_item_id: soup.id.clone(),
                    quantity: 1,
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(priced.restaurant_name, "Noodle Bar");
    assert_eq!(priced.items[0].line_total_cents, 1800);
    assert_eq!(priced.items[1].name, "Wonton Soup");
    assert_eq!(priced.total_cents, 2650);

    let repriced = update_item(
        &mut client,
        &soup,
        pb::UpdateMenuItemRequest {
            price_cents: Some(950),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (repriced.price_cents, repriced.name.as_str()),
        (950, "Wonton Soup"),
        "only the price changed"
    );

    let off_sale = update_item(
        &mut client,
        &soup,
        pb::UpdateMenuItemRequest {
            available: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert!(!off_sale.available);

    let refused = client
        .price_items(pb::PriceItemsRequest {
            restaurant_id: restaurant.id.clone(),
            items: vec![pb::ItemQuantity {
                menu_item_id: soup.id.clone(),
                quantity: 1,
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("Wonton Soup"), "{}", refused.message());

    let other = create(&mut client, "Elsewhere", "thai").await;
    let foreign = client
        .price_items(pb::PriceItemsRequest {
            restaurant_id: other.id.clone(),
            items: vec![pb::ItemQuantity {
                menu_item_id: buns.id.clone(),
                quantity: 1,
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(
        foreign.code(),
        Code::NotFound,
        "another restaurant's item is not on this menu"
    );
}

async fn restarting_keeps_every_restaurant(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (service, mut client) = super::spawn(&store, false).await;
    let restaurant = create(&mut client, "Persistent Pizza", "italian").await;
    let item = add_item(&mut client, &restaurant.id, "Slice", 300).await;
    service.stop().await;

    let (_service, mut client) = super::spawn(&store, false).await;
    let menu = client
        .get_menu(pb::GetMenuRequest {
            restaurant_id: restaurant.id.clone(),
        })
        .await
        .expect("the restaurant survived the restart")
        .into_inner();
    assert_eq!(menu.items, [item]);
}

/// Every write through one replica is in the very next read through the
/// other: each replica answers reads from memory, and must catch up first.
async fn replicas_see_each_others_writes_at_once(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_a, mut a) = super::spawn(&store, false).await;
    let (_b, mut b) = super::spawn(&store, false).await;
    for n in 0..5 {
        let (writer, reader) = if n % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let cuisine = format!("cuisine {n}");
        let created = create(writer, &format!("Replica Cafe {n}"), &cuisine).await;
        let read = reader
            .get_restaurant(pb::GetRestaurantRequest {
                id: created.id.clone(),
            })
            .await
            .expect("the other replica sees the restaurant")
            .into_inner();
        assert_eq!(read, created);
        let listed = reader
            .list_restaurants(pb::ListRestaurantsRequest {
                cuisine: cuisine.to_uppercase(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            listed.restaurants,
            std::slice::from_ref(&created),
            "listed by its cuisine"
        );

        let item = add_item(writer, &created.id, "Toast", 300).await;
        let menu = |client: &mut RestaurantServiceClient<Channel>| {
            let mut client = client.clone();
            let restaurant_id = created.id.clone();
            async move {
                client
                    .get_menu(pb::GetMenuRequest { restaurant_id })
                    .await
                    .unwrap()
                    .into_inner()
                    .items
            }
        };
        assert_eq!(
            menu(reader).await,
            std::slice::from_ref(&item),
            "the other replica sees the item"
        );

        let repriced = update_item(
            writer,
            &item,
            pb::UpdateMenuItemRequest {
                price_cents: Some(450),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            menu(reader).await,
            [repriced],
            "the other replica sees the new price"
        );
        let price = pb::PriceItemsRequest {
            restaurant_id: created.id.clone(),
            items: vec![pb::ItemQuantity {
                menu_item_id: item.id.clone(),
                quantity: 2,
            }],
        };
        let priced = reader.price_items(price.clone()).await.unwrap().into_inner();
        assert_eq!(priced.total_cents, 900, "priced at the new price");

        update_item(
            writer,
            &item,
            pb::UpdateMenuItemRequest {
                available: Some(false),
                ..Default::default()
            },
        )
        .await;
        let refused = reader.price_items(price).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::FailedPrecondition,
            "the other replica no longer sells it: {refused:?}"
        );
    }
}

/// A row written by a writer that knows nothing of the catalog's version
/// (a replica of an older build, during a rolling upgrade) is in the next
/// read all the same: the store's triggers stamp it.
async fn a_write_that_knows_nothing_of_versions_is_seen(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_service, mut client) = super::spawn(&store, false).await;
    let restaurant = create(&mut client, "Old Build Diner", "diner").await;
    let item = add_item(&mut client, &restaurant.id, "Pie", 400).await;
    sqlx::any::install_default_drivers();
    let old_build = sqlx::AnyPool::connect(store.url()).await.unwrap();
    let id = dishpatch::ids::RESTAURANT.generate();
    sqlx::query(
        "INSERT INTO restaurants (id, name, cuisine, address, rating, created_at)
         VALUES ($1, 'Older Still', 'diner', '2 Old Road', 4.0, 0)",
    )
    .bind(&id)
    .execute(&old_build)
    .await
    .unwrap();
    sqlx::query("UPDATE menu_items SET price_cents = 450 WHERE id = $1")
        .bind(&item.id)
        .execute(&old_build)
        .await
        .unwrap();
    old_build.close().await;

    let found = client
        .get_restaurant(pb::GetRestaurantRequest { id: id.clone() })
        .await
        .expect("the row another build inserted is found")
        .into_inner();
    assert_eq!(found.name, "Older Still");
    let menu = client
        .get_menu(pb::GetMenuRequest {
            restaurant_id: restaurant.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(menu.items[0].price_cents, 450, "the price another build set");
}

test_support::on_each_backend!(
    creates_reads_and_lists_restaurants,
    pages_through_restaurants,
    keeps_a_menu_and_prices_from_it,
    restarting_keeps_every_restaurant,
    replicas_see_each_others_writes_at_once,
    a_write_that_knows_nothing_of_versions_is_seen,
);
